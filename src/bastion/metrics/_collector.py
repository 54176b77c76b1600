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

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bastion import __version__
from bastion.broker import Broker
from bastion.defender.audit import AuditService
from bastion.defender.detect import DetectService
from bastion.rules import RulesProcess
from bastion.store import Store

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
    audit: AuditService | None = None
    store: Store | None = None


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
            yield from _detect(sources.detect)
        if sources.audit is not None:
            yield _audit(sources.audit)
        if sources.api_calls is not None:
            yield _api(sources.api_calls)
        if sources.store is not None:
            yield from _store(sources.store)


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
    traffic = directory.traffic
    messages = CounterMetricFamily(
        "bastion_mqtt_messages", "PUBLISH packets by direction (in: from clients; out: "
        "deliveries to subscribers) and QoS.", labels=["direction", "qos"])
    for qos in (0, 1, 2):
        messages.add_metric(["in", str(qos)], stats.messages_in_by_qos[qos])
        messages.add_metric(["out", str(qos)], traffic.messages_out[qos])
    yield messages
    payload = CounterMetricFamily("bastion_mqtt_payload_bytes",
                                  "Payload bytes of PUBLISH packets, by direction.",
                                  labels=["direction"])
    payload.add_metric(["in"], stats.bytes_in)
    payload.add_metric(["out"], traffic.bytes_out)
    yield payload
    queued = inflight = 0
    for session in directory.sessions.values():
        queued += len(session.queue or ()) + session.spilled
        inflight += len(session.inflight)
    yield GaugeMetricFamily("bastion_mqtt_queued_messages",
                            "QoS 1/2 deliveries waiting in sessions' queues now (in memory "
                            "and stored), behind the in-flight windows.", value=queued)
    yield GaugeMetricFamily("bastion_mqtt_inflight_messages",
                            "QoS 1/2 deliveries sent and not yet acknowledged now.",
                            value=inflight)
    yield GaugeMetricFamily("bastion_mqtt_queued_bytes",
                            "Payload bytes the sessions' queues hold in memory now.",
                            value=directory.budget.used)
    handshakes = CounterMetricFamily("bastion_tls_handshake_failures",
                                     "TLS handshakes on the MQTT listeners that failed, by "
                                     "reason.", labels=["reason"])
    for reason, count in sorted(stats.tls_handshake_failures.items()):
        handshakes.add_metric([reason], count)
    yield handshakes
    yield CounterMetricFamily("bastion_mqtt_authorization_denied",
                              "iot:Connect, Publish, Subscribe or Receive requests denied.",
                              value=stats.authorization_denied)
    yield CounterMetricFamily("bastion_mqtt_protocol_errors",
                              "Connections closed for a client's protocol violation.",
                              value=stats.protocol_errors)
    dropped = CounterMetricFamily("bastion_mqtt_messages_dropped",
                                  "Deliveries dropped, by reason.", labels=["reason"])
    dropped.add_metric(["queue_full"], stats.queue_full_drops)
    dropped.add_metric(["qos0_not_written"], traffic.qos0_dropped)
    dropped.add_metric(["expired_or_too_large"], traffic.discarded)
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


def _detect(detect: DetectService) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "bastion_detect_active_violations",
        "Device Defender Detect violations in alarm now (counted by the node that "
        "evaluates; 0 on the others of a cluster).", value=len(detect.active))
    stats = detect.stats
    yield SummaryMetricFamily(
        "bastion_detect_evaluation_seconds", "Time spent evaluating batches of Detect "
        "datapoints (device reports, cloud-side samples).",
        count_value=stats.batches, sum_value=stats.evaluation_seconds)
    yield CounterMetricFamily("bastion_detect_datapoints", "Detect datapoints evaluated.",
                              value=stats.datapoints)
    events = CounterMetricFamily("bastion_detect_violation_events",
                                 "Detect violation events, by type.", labels=["type"])
    for kind in ("in-alarm", "alarm-cleared", "alarm-invalidated"):
        events.add_metric([kind], stats.events.get(kind, 0))
    yield events


def _audit(audit: AuditService) -> CounterMetricFamily:
    family = CounterMetricFamily("bastion_audit_runs", "Device Defender audits finished, "
                                 "by task type and status.", labels=["type", "status"])
    for (kind, status), count in sorted(audit.runs().items()):
        family.add_metric([kind, status], count)
    return family


def _store(store: Store) -> Iterator[Metric]:
    latency = SummaryMetricFamily("bastion_store_transaction_seconds",
                                  "Store transactions (read, write) and the time they took.",
                                  labels=["kind"])
    failed = CounterMetricFamily("bastion_store_transactions_failed",
                                 "Store transactions rolled back, by kind.", labels=["kind"])
    for kind, (count, seconds, failures) in sorted(store.times.snapshot().items()):
        latency.add_metric([kind], count_value=count, sum_value=seconds)
        failed.add_metric([kind], failures)
    yield latency
    yield failed


def _api(calls: ApiCalls) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "bastion_api_requests", "API requests answered, by service, operation, outcome "
        "(allowed, denied, error) and HTTP status.",
        labels=["service", "operation", "outcome", "code"])
    for (service, operation, outcome, status), count in sorted(dict(calls).items()):
        family.add_metric([service or "unknown", operation or "unknown", outcome,
                           str(status)], count)
    return family
