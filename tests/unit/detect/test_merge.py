"""One interval's cloud-side samples from several nodes merged into one per thing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.defender.detect import Datapoint, MetricValue, merge_samples

AT = 1_800_000_300.0


def dp(thing: str, metric: str, value: MetricValue, dimension: str | None = None,
       at: float = 1_800_000_299.0) -> Datapoint:
    return Datapoint(thing, metric, value, at, dimension)


def by_key(points: list[Datapoint]) -> dict[tuple[str, str, str | None], MetricValue]:
    return {(p.thing_name, p.metric, p.dimension): p.value for p in points}


def test_a_device_seen_on_two_nodes_is_one_set_of_datapoints() -> None:
    node_1 = [dp("d", "aws:num-messages-sent", MetricValue(count=3)),
              dp("d", "aws:message-byte-size", MetricValue(count=100)),
              dp("d", "aws:num-disconnects", MetricValue(count=1)),
              dp("d", "aws:source-ip-address", MetricValue(cidrs=("10.0.0.1",)))]
    node_2 = [dp("d", "aws:num-messages-sent", MetricValue(count=1)),
              dp("d", "aws:message-byte-size", MetricValue(count=20)),
              dp("d", "aws:num-connection-attempts", MetricValue(count=1)),
              dp("d", "aws:source-ip-address", MetricValue(cidrs=("10.0.0.2",)))]
    merged = merge_samples([node_1, node_2], AT)
    assert by_key(merged) == {
        ("d", "aws:num-messages-sent", None): MetricValue(count=4),
        ("d", "aws:message-byte-size", None): MetricValue(count=80),  # (3*100 + 20) / 4
        ("d", "aws:num-disconnects", None): MetricValue(count=1),
        ("d", "aws:num-connection-attempts", None): MetricValue(count=1),
        ("d", "aws:source-ip-address", None): MetricValue(cidrs=("10.0.0.1", "10.0.0.2")),
    }
    assert {p.timestamp for p in merged} == {AT}


def test_disconnect_duration_only_while_no_node_saw_the_device() -> None:
    left_node_1 = [dp("d", "aws:disconnect-duration", MetricValue(count=7)),
                   dp("e", "aws:disconnect-duration", MetricValue(count=9))]
    back_on_node_2 = [dp("d", "aws:num-messages-sent", MetricValue(count=0)),
                      dp("e", "aws:disconnect-duration", MetricValue(count=2))]
    merged = by_key(merge_samples([left_node_1, back_on_node_2], AT))
    assert ("d", "aws:disconnect-duration", None) not in merged
    assert merged[("e", "aws:disconnect-duration", None)] == MetricValue(count=2)


def test_dimensions_merge_apart() -> None:
    merged = by_key(merge_samples([
        [dp("d", "aws:num-authorization-failures", MetricValue(count=1), "dim"),
         dp("d", "aws:num-authorization-failures", MetricValue(count=2), "dim|NOT_IN")],
        [dp("d", "aws:num-authorization-failures", MetricValue(count=4), "dim")]], AT))
    assert merged == {("d", "aws:num-authorization-failures", "dim"): MetricValue(count=5),
                      ("d", "aws:num-authorization-failures", "dim|NOT_IN"):
                          MetricValue(count=2)}


COUNTED = st.sampled_from(["aws:num-messages-sent", "aws:num-messages-received",
                           "aws:num-authorization-failures", "aws:num-disconnects"])
SAMPLE = st.lists(st.builds(lambda thing, metric, n: dp(thing, metric, MetricValue(count=n)),
                            st.sampled_from(["a", "b", "c"]), COUNTED,
                            st.integers(0, 10_000)), max_size=12)


@given(st.lists(SAMPLE, max_size=4))
def test_counts_add_up_and_each_key_appears_once(samples: list[list[Datapoint]]) -> None:
    merged = merge_samples(samples, AT)
    keys = [(p.thing_name, p.metric, p.dimension) for p in merged]
    assert len(keys) == len(set(keys))
    expected: dict[tuple[str, str, str | None], int] = {}
    for sample in samples:
        for p in sample:
            key = (p.thing_name, p.metric, p.dimension)
            expected[key] = expected.get(key, 0) + (p.value.count or 0)
    assert {k: v.count for k, v in by_key(merged).items()} == expected


@given(SAMPLE)
def test_one_node_alone_is_its_own_sample(sample: list[Datapoint]) -> None:
    unique = {(p.thing_name, p.metric, p.dimension): p for p in sample}
    if len(unique) != len(sample):
        return  # a node's sample has one datapoint per key
    assert by_key(merge_samples([sample], AT)) == by_key(sample)
