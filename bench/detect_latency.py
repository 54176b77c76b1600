"""Detect: the delay from a datapoint to its violation, and what traffic counting costs
the broker's message path.

1. **Delay to violation** (SQLite store, like ``bastion serve``), over ``--things``
   things, each with one violating datapoint:

   * *device report*: a report is evaluated on arrival (one ``ingest`` per report, as
     :class:`~bastion.reserved.defender.DefenderMetricsTopics` does for a lone report).
     The delay is the wall time from handing the report's datapoints to the service to
     the violation being visible in ``ListActiveViolations``' source
     (:meth:`DetectService.list_active_violations`), per report; a burst is also fed as
     coalesced batches (``--batch`` datapoints) and the delay measured per batch.
   * *cloud-side sample*: the counters are sampled at the evaluation tick, so the delay
     is the wait for the next tick (up to one interval, uniformly 0…interval for a
     datapoint at a random instant) plus the wall time of the tick's ``ingest`` of the
     whole fleet's sample, measured here until all the fleet's violations are visible.

2. **Message path with and without counting**: ``--messages`` QoS 0 PUBLISHes go through
   ``Broker._on_publish`` (the path of a PUBLISH packet from a connection: the sent
   counters via ``Session.count_sent``, authorization, routing) to one subscriber whose
   ``Session.deliver`` counts the received message, with fake connections that swallow
   what they are given. Then again on a broker and sessions whose methods are the same
   source with the counting lines removed (bench-only copies, compiled from the broker's
   own source), and once with a TOPIC_FILTER tally on both sessions. Prints msgs/s and
   the ratio.

Asserts nothing.

    .venv/bin/python bench/detect_latency.py [--things 20000] [--messages 300000]
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bastion.account import Account
from bastion.broker import Broker, Message, Principal, Session, SubscriptionOptions
from bastion.broker import _broker as broker_module
from bastion.broker import _session as session_module
from bastion.defender.detect import Datapoint, DetectService, MetricValue, StoreRecords
from bastion.mqtt import Publish
from bastion.reserved.defender import RECEIVED, SENT, DimensionTally

ACCOUNT = Account("us-east-1", "123456789012")
PREFIX = "arn:aws:iot:us-east-1:123456789012:"
INTERVAL = 300.0


# -- 1. delay from a datapoint to its violation ---------------------------------------------


def detect_service() -> DetectService:
    from bastion.store import Store

    path = Path(tempfile.mkdtemp()) / "detect.db"
    service = DetectService(membership=lambda thing: (True, frozenset()), account=ACCOUNT,
                            records=StoreRecords(Store.open(f"sqlite:///{path}")))
    service.create_security_profile("fleet", now=0, behaviors=[
        {"name": "msgs", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 500}}},
        {"name": "ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22, 443]}}},
    ])
    service.attach("fleet", PREFIX + "all/things")
    return service


def percentiles(label: str, delays: list[float]) -> None:
    ms = sorted(d * 1000 for d in delays)
    q = statistics.quantiles(ms, n=100) if len(ms) > 1 else [ms[0]] * 99
    print(f"  {label}: n={len(ms):,} median {q[49]:.2f} ms, p90 {q[89]:.2f} ms, "
          f"p99 {q[98]:.2f} ms, max {ms[-1]:.2f} ms")


def report(thing: str, at: float) -> list[Datapoint]:
    return [Datapoint(thing, "aws:listening-tcp-ports", MetricValue(ports=(22, 443, 8080)), at),
            Datapoint(thing, "aws:num-listening-tcp-ports", MetricValue(count=3), at)]


def visible(service: DetectService, thing: str) -> bool:
    return bool(service.list_active_violations(thing_name=thing))


def report_delays(things: int, batch: int) -> None:
    print(f"device report -> violation ({things:,} things, SQLite):")
    service = detect_service()
    delays = []
    for i in range(things):
        thing = f"thing-{i}"
        started = time.perf_counter()
        service.ingest(report(thing, INTERVAL), INTERVAL)
        if not visible(service, thing):
            print(f"  no violation for {thing}")
        delays.append(time.perf_counter() - started)
    percentiles("one report at a time", delays)
    service = detect_service()
    delays = []
    per_report = len(report("x", 0))
    reports_per_batch = max(1, batch // per_report)
    for first in range(0, things, reports_per_batch):
        names = [f"thing-{i}" for i in range(first, min(things, first + reports_per_batch))]
        points = [p for name in names for p in report(name, INTERVAL)]
        started = time.perf_counter()
        service.ingest(points, INTERVAL)
        if not visible(service, names[-1]):
            print(f"  no violation for {names[-1]}")
        delays.extend([time.perf_counter() - started] * len(names))
    percentiles(f"burst in batches of {reports_per_batch:,} reports (delay of each report's "
                "batch, not counting its wait for the batch before)", delays)


def sample_delay(things: int) -> None:
    print(f"cloud-side sample -> violation ({things:,} things, SQLite, 6 metrics per thing):")
    service = detect_service()
    points = []
    for i in range(things):
        for metric in ("aws:num-messages-sent", "aws:num-messages-received",
                       "aws:num-authorization-failures", "aws:num-connection-attempts",
                       "aws:num-disconnects", "aws:message-byte-size"):
            points.append(Datapoint(f"thing-{i}", metric, MetricValue(count=900), INTERVAL))
    started = time.perf_counter()
    events = service.ingest(points, INTERVAL)
    visible_all = len(service.list_active_violations()) == things
    took = time.perf_counter() - started
    print(f"  tick evaluating {len(points):,} datapoints: all {len(events):,} violations "
          f"visible{'' if visible_all else ' (NOT all)'} {took * 1000:.0f} ms after the "
          f"sample; plus the wait for the tick: 0…{INTERVAL:.0f} s (mean "
          f"{INTERVAL / 2:.0f} s) at the default interval, so mean ≈ "
          f"{INTERVAL / 2 + took:.1f} s, worst ≈ {INTERVAL + took:.1f} s")


# -- 2. the message path with and without counting -----------------------------------------


def _uncounted(cls: type, name: str, drop: tuple[str, ...], module: Any, expect: int) -> Any:
    """``cls.name`` recompiled from its source without the lines that count traffic
    (``expect`` lines in all, an ``if …:`` with its one-line body)."""
    source = textwrap.dedent(inspect.getsource(getattr(cls, name)))
    lines = source.splitlines()
    kept, removed, skip_next = [], 0, False
    for line in lines:
        stripped = line.strip()
        if skip_next:
            skip_next, removed = False, removed + 1
            continue
        if stripped.startswith(drop):
            removed += 1
            skip_next = stripped.endswith(":")  # "if …topic_tally is not None:" + its body
            continue
        kept.append(line)
    if removed != expect:
        raise RuntimeError(f"{cls.__name__}.{name} changed: removed {removed} lines; "
                           "update the bench")
    namespace: dict[str, Any] = {}
    code = compile("\n".join(kept), f"<uncounted {name}>", "exec")
    exec(code, vars(module), namespace)  # noqa: S102 - a bench-only copy of our own source
    return namespace[name]


class UncountedBroker(Broker):
    _on_publish = _uncounted(Broker, "_on_publish", ("session.count_sent(",),
                             broker_module, 1)


class UncountedSession(Session):
    __slots__ = ()  # the layout of Session, so that a session can be switched to it
    deliver = _uncounted(Session, "deliver",
                         ("self.messages_received +=", "if self.topic_tally is not None:"),
                         session_module, 3)


class Everything:
    def check(self, action: object, resource: str) -> bool:
        return True


class SwallowingConnection:
    """Just enough of an MQTTConnection: QoS 0 deliveries are encoded and dropped."""

    closed = False
    paused = False
    unflushed = 0
    protocol_version = 4
    client_receive_maximum = 65535
    transport = None

    def __init__(self) -> None:
        self.delivered = 0

    def write_qos0(self, message: Message, retain: bool, subscription_ids: tuple[int, ...]
                   ) -> bool:
        message.encode_for(self.protocol_version, 0, retain, None, subscription_ids,
                           time.monotonic)
        self.delivered += 1
        return True


def route(broker_cls: type[Broker], session_cls: type[Session], messages: int,
          tally: bool) -> float:
    broker = broker_cls()
    principal = Principal("", b"", "127.0.0.1", 1)
    sessions = []
    for client_id in ("publisher", "subscriber"):
        session, _ = broker.directory.open(client_id, principal, clean_start=True)
        session.__class__ = session_cls
        conn: Any = SwallowingConnection()
        session.attach(conn, principal, Everything(), None, 0)
        if tally:
            session.topic_tally = DimensionTally({SENT: [("t", ("telemetry/+/temp",))],
                                                  RECEIVED: [("t", ("telemetry/#",))]})
        sessions.append((session, conn))
    (publisher, pconn), (subscriber, sconn) = sessions
    broker.directory.subscribe(subscriber, "telemetry/#", SubscriptionOptions(qos=0))
    packets = [Publish(f"telemetry/{i % 100}/temp", b"x" * 64) for i in range(1000)]
    on_publish = broker._on_publish
    started = time.perf_counter()
    for i in range(messages):
        on_publish(pconn, publisher, packets[i % 1000])
    took = time.perf_counter() - started
    if sconn.delivered != messages:
        print(f"  only {sconn.delivered:,} of {messages:,} delivered")
    return messages / took


def message_path(messages: int, rounds: int) -> None:
    print(f"broker message path ({messages:,} QoS 0 PUBLISH packets, 1 subscriber, "
          f"best of {rounds}):")
    variants = {
        "counting off": (UncountedBroker, UncountedSession, False),
        "counting on": (Broker, Session, False),
        "counting on + TOPIC_FILTER tally": (Broker, Session, True),
    }
    best = {name: 0.0 for name in variants}
    for _ in range(rounds):  # interleaved, so drift hits every variant alike
        for name, (b, s, tally) in variants.items():
            best[name] = max(best[name], route(b, s, messages, tally))
    off = best["counting off"]
    for name, rate in best.items():
        print(f"  {name}: {rate:,.0f} msgs/s ({rate / off:.3f} of counting off)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--things", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report_delays(args.things, args.batch)
    sample_delay(args.things)
    message_path(args.messages, args.rounds)


if __name__ == "__main__":
    main()
