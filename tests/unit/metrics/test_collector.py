"""The collector reads the node's counters as they are at the scrape; the exposition
parses back with ``prometheus_client``'s own parser."""

from __future__ import annotations

from collections import Counter

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from bastion.broker import Broker
from bastion.metrics import FleetCollector, MetricSources


def _scrape(sources: MetricSources) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(sources))
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_broker_counters_are_read_at_each_scrape() -> None:
    broker = Broker()
    sources = MetricSources(broker)
    assert _scrape(sources)[("bastion_mqtt_messages_in_total", ())] == 0
    broker.stats.messages_in += 3
    broker.stats.queue_full_drops += 2
    samples = _scrape(sources)
    assert samples[("bastion_mqtt_messages_in_total", ())] == 3
    assert samples[("bastion_mqtt_messages_dropped_total", (("reason", "queue_full"),))] == 2


def test_what_a_node_does_not_run_is_absent() -> None:
    names = {name for name, _ in _scrape(MetricSources(Broker()))}
    assert not {name for name in names if name.startswith(("bastion_rule",
                                                            "bastion_detect",
                                                            "bastion_api",
                                                            "bastion_node"))}


def test_api_calls_by_label_and_the_node_in_a_cluster() -> None:
    calls: Counter[tuple[str, str, str, int]] = Counter()
    calls[("iot", "ListThings", "allowed", 200)] += 2
    calls[("", "", "denied", 403)] += 1  # unsigned: neither service nor operation known
    samples = _scrape(MetricSources(Broker(), api_calls=calls, node="n-1", cluster="c"))
    assert samples[("bastion_api_requests_total", (
        ("code", "200"), ("operation", "ListThings"), ("outcome", "allowed"),
        ("service", "iot")))] == 2
    assert samples[("bastion_api_requests_total", (
        ("code", "403"), ("operation", "unknown"), ("outcome", "denied"),
        ("service", "unknown")))] == 1
    assert samples[("bastion_node_info", (("cluster", "c"), ("node", "n-1")))] == 1
