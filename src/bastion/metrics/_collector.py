"""What ``GET /metrics`` reports: the node's own counters, read when scraped.

Theory of operation
-------------------
Nothing here counts. The broker, the rules engine, Detect and the API keep plain
integers (the hot path stays a ``+= 1``); :class:`FleetCollector` is a
``prometheus_client`` collector that reads them at each scrape, on the event loop where
they change, and turns them into metric families. A scrape touches no database and no
other node: each node of a cluster is its own scrape target, and
``bastion_node_info`` names the node (``sum by (…)`` across targets gives the fleet).

Counters restart from zero with the process (and the rules engine's with its child
process); Prometheus's ``rate()`` and ``increase()`` handle such resets. Every metric is
listed, one line each, in ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bastion import __version__
from bastion.broker import Broker
from bastion.defender.detect import DetectService
from bastion.rules import RulesProcess

ApiCalls = Mapping[tuple[str, str, str, int], int]
"""API calls answered, by ``(service, operation, outcome, HTTP status)``."""


@dataclass(frozen=True, slots=True)
class MetricSources:
    """Where the numbers come from; ``None`` for what this node does not run.

    :ivar node: this node's id in a cluster (``None`` on a single node).
    :ivar cluster: the cluster's name (``None`` on a single node).
    """

    broker: Broker
    rules: RulesProcess | None = None
    detect: DetectService | None = None
    api_calls: ApiCalls | None = None
    node: str | None = None
    cluster: str | None = None


class FleetCollector(Collector):
    """A ``prometheus_client`` collector over :class:`MetricSources` (see the module
    docstring). :meth:`collect` must run on the broker's event loop."""

    def __init__(self, sources: MetricSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        sources = self._sources
        yield _info("bastion_build", "Bastion's version.", version=__version__)
        if sources.node is not None:
            yield _info("bastion_node", "This node of a cluster: its id and the cluster's "
                        "name.", node=sources.node, cluster=sources.cluster or "")
        yield from _broker(sources.broker)
        if sources.rules is not None:
            yield from _rules(sources.rules)
        if sources.detect is not None:
            yield GaugeMetricFamily(
                "bastion_detect_active_violations",
                "Device Defender Detect violations in alarm now (counted by the node "
                "that evaluates; 0 on the others of a cluster).",
                value=len(sources.detect.active))
        if sources.api_calls is not None:
            yield _api(sources.api_calls)


def _info(name: str, documentation: str, **labels: str) -> GaugeMetricFamily:
    """A ``<name>_info`` gauge of 1 carrying ``labels`` (the usual info idiom)."""
    family = GaugeMetricFamily(f"{name}_info", documentation, labels=list(labels))
    family.add_metric(list(labels.values()), 1)
    return family


def _broker(broker: Broker) -> Iterator[Metric]:
    stats = broker.stats
    directory = broker.directory
    yield GaugeMetricFamily("bastion_mqtt_connections",
                            "MQTT connections open now (past CONNECT).",
                            value=len(broker.connections))
    yield GaugeMetricFamily("bastion_mqtt_sessions",
                            "MQTT sessions held now, connected or persistent.",
                            value=len(directory.sessions))
    yield GaugeMetricFamily("bastion_mqtt_retained_messages", "Retained messages held now.",
                            value=len(directory.retained))
    yield CounterMetricFamily("bastion_mqtt_connections_opened",
                              "MQTT connections accepted (CONNECT authorized).",
                              value=stats.connections)
    yield CounterMetricFamily("bastion_mqtt_messages_in",
                              "PUBLISH packets received from clients.",
                              value=stats.messages_in)
    yield CounterMetricFamily("bastion_mqtt_authorization_denied",
                              "iot:Connect, Publish, Subscribe or Receive requests denied.",
                              value=stats.authorization_denied)
    yield CounterMetricFamily("bastion_mqtt_protocol_errors",
                              "Connections closed for a client's protocol violation.",
                              value=stats.protocol_errors)
    dropped = CounterMetricFamily("bastion_mqtt_messages_dropped",
                                  "Deliveries dropped, by reason.", labels=["reason"])
    dropped.add_metric(["queue_full"], stats.queue_full_drops)
    yield dropped
    yield CounterMetricFamily("bastion_mqtt_retained_refused",
                              "Retained publishes not kept at the retained-message cap.",
                              value=stats.retained_refused)


def _rules(rules: RulesProcess) -> Iterator[Metric]:
    stats = rules.stats
    yield CounterMetricFamily("bastion_rules_messages_offered",
                              "Messages a rule's FROM filter matched, offered to the engine.",
                              value=stats.offered)
    yield CounterMetricFamily("bastion_rules_messages_evaluated",
                              "Messages the engine evaluated.", value=stats.evaluated)
    yield CounterMetricFamily("bastion_rules_messages_dropped",
                              "Messages dropped for the rules (the engine's queue full).",
                              value=stats.dropped)
    yield CounterMetricFamily("bastion_rules_evaluation_errors",
                              "Evaluations that failed.", value=stats.evaluation_errors)
    per_rule = {
        "matched": "Messages that satisfied the rule's WHERE clause.",
        "actions_succeeded": "The rule's actions that succeeded.",
        "actions_failed": "The rule's actions that failed after their retries.",
        "error_actions_succeeded": "The rule's error actions that succeeded.",
        "error_actions_failed": "The rule's error actions that failed.",
    }
    families = {field: CounterMetricFamily(f"bastion_rule_{field}", text, labels=["rule"])
                for field, text in per_rule.items()}
    for name, counters in sorted(stats.rules.items()):
        for field, family in families.items():
            family.add_metric([name], getattr(counters, field))
    yield from families.values()


def _api(calls: ApiCalls) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "bastion_api_requests", "API requests answered, by service, operation, outcome "
        "(allowed, denied, error) and HTTP status.",
        labels=["service", "operation", "outcome", "code"])
    for (service, operation, outcome, status), count in sorted(dict(calls).items()):
        family.add_metric([service or "unknown", operation or "unknown", outcome,
                           str(status)], count)
    return family
