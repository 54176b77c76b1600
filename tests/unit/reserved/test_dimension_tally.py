"""Per-topic-filter counters of a session (Detect's TOPIC_FILTER dimensions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.reserved.defender import BYTE_SIZE, RECEIVED, SENT, DimensionTally

DIMS = {SENT: [("t", ("telemetry/#",))], BYTE_SIZE: [("t", ("telemetry/#",))],
        RECEIVED: [("cmd", ("cmd/+", "ota/#"))]}


def test_counts_in_and_not_in_then_drains() -> None:
    tally = DimensionTally(DIMS)
    tally.sent("telemetry/a", 10)
    tally.sent("telemetry/a/b", 20)
    tally.sent("status", 5)
    tally.received("cmd/x", 1)
    tally.received("cmd/x/y", 1)
    assert tally.drain() == {
        (SENT, "t"): [2, 30], (SENT, "t|NOT_IN"): [1, 5],
        (BYTE_SIZE, "t"): [2, 30], (BYTE_SIZE, "t|NOT_IN"): [1, 5],
        (RECEIVED, "cmd"): [1, 1], (RECEIVED, "cmd|NOT_IN"): [1, 1]}
    assert tally.drain() == {}


def test_metrics_without_dimensions_count_nothing() -> None:
    tally = DimensionTally({RECEIVED: [("cmd", ("cmd/+",))]})
    tally.sent("cmd/x", 3)
    assert tally.drain() == {}


@given(st.lists(st.tuples(st.sampled_from(["telemetry/a", "telemetry", "x/telemetry",
                                           "cmd/1", "ota/a/b", "z"]),
                          st.integers(0, 1000))))
def test_every_message_lands_in_exactly_one_side(messages: list[tuple[str, int]]) -> None:
    tally = DimensionTally(DIMS)
    for topic, size in messages:
        tally.sent(topic, size)
        tally.received(topic, size)
    counts = tally.drain()
    for metric, name in ((SENT, "t"), (BYTE_SIZE, "t"), (RECEIVED, "cmd")):
        inside = counts.get((metric, name), [0, 0])
        outside = counts.get((metric, f"{name}|NOT_IN"), [0, 0])
        assert inside[0] + outside[0] == len(messages)
        assert inside[1] + outside[1] == sum(size for _, size in messages)
