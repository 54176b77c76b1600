"""Device Defender on the broker: device metrics reports and cloud-side counters.

Theory of operation
-------------------
:class:`DefenderMetricsTopics` answers ``$aws/things/<thing>/defender/metrics/json|cbor``.
The broker has already authorized the PUBLISH with the client's policies. The report is
decoded and validated here (on the loop: it is small), refused at once when the thing
reported too soon after its last accepted report, then handed to the detect service in a
worker thread (evaluation may change the registry: mitigation). The device gets
``…/accepted`` or ``…/rejected`` in the report's encoding, echoing ``reportId``.

The period check allows ``tolerance`` (10 %) of ``min_period``: an agent reporting every
period with ordinary jitter is never refused. A report that is still too early is
refused with ``Throttled`` and the epoch millisecond from which the next one is accepted
(``retry after <ms>``). Its network counters are not lost: an agent's ``network_stats``
are deltas since its previous report, accepted or not, so the refused report's deltas
are kept (per report id) and added to the thing's next accepted report. That keeps the
windowed sums (``durationSeconds``) equal to what the device sent while the period still
bounds how often a thing is evaluated. A report resent with a refused report's id is
that report again: its held deltas are dropped rather than counted twice. Everything
else a report carries (ports, connections, custom metrics) is a snapshot, which the next
report supersedes.
Accepted reports are queued and ingested by one drain task at a time: reports that
arrive while a batch is being evaluated are coalesced into the next one (up to
``max_batch`` datapoints), so a burst of reports costs one store transaction per batch,
not one per report, and a lone report is still evaluated as soon as it arrives.

:class:`CloudMetricSampler` measures the cloud-side metrics without touching the message
path: the broker's sessions keep plain counters (messages and bytes sent, messages
received, authorization failures), and :meth:`CloudMetricSampler.sample` reads them once
per interval and keeps the difference from the previous reading. Connection attempts,
disconnects and disconnect times come from the broker's bus events, counted as they
happen. A session that closes between two samples has its counters read at the
disconnect, so nothing is lost. Datapoints are keyed by thing name, or by client id for a
client without a thing.

``aws:source-ip-address`` is emitted every interval for every thing that was connected or
tried to connect: the addresses of its live connections at the sample plus those of the
connections (accepted or refused) made during the interval. A thing whose last
connection went away (not one that was only refused) gets the empty set (normal for both
CIDR operators, as in AWS) in that interval and at the next samples while it stays away,
:data:`AWAY_POINTS` in all, so an alarm raised by an address that is gone clears after
``consecutiveDatapointsToClear`` (at most 10) intervals instead of waiting for
``invalidate_after``; after that an absent thing costs nothing more.

TOPIC_FILTER dimensions of ``aws:num-messages-sent``, ``aws:num-messages-received`` and
``aws:message-byte-size`` need the topic of every message, so they are counted on the
message path — but only for sessions a profile with such a dimension targets: at each
connection and each sample the sampler asks the detect service which dimensions apply to
the session's thing and gives the session a :class:`DimensionTally` (or none). A session
without one pays one ``is None`` test per message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import cbor2

from bastion.broker import (
    AuthorizationDenied,
    Broker,
    ClientConnected,
    ClientDisconnected,
    ConnectRefused,
    Message,
    Session,
)
from bastion.clock import Clock, SystemClock
from bastion.defender.detect import (
    Datapoint,
    DetectService,
    DeviceReport,
    MetricValue,
    ReportRejected,
    ViolationEvent,
    decode_payload,
    dimension_key,
    parse_report,
    report_id_of,
)
from bastion.events import EventBus
from bastion.lifecycle import Component
from bastion.mqtt import topic_matches
from bastion.registry import (
    ThingDeleted,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
    ThingUpdated,
)

log = logging.getLogger("bastion.reserved.defender")

_PREFIX: Final = "$aws/things/"
_MIDDLE: Final = "/defender/metrics/"
DELTA_METRICS: Final = frozenset({"aws:all-bytes-in", "aws:all-bytes-out",
                                  "aws:all-packets-in", "aws:all-packets-out"})
"""Device metrics a report carries as deltas since the device's previous report."""
MAX_HELD_REPORTS: Final = 32
"""Refused reports whose deltas are held per thing by report id; older ones are folded
together (a resend of one of those would then be counted twice)."""


def parse_metrics_topic(topic: str) -> tuple[str, str, str] | None:
    """``(thing, encoding, suffix)`` of a metrics topic (suffix ``""``, ``accepted`` or
    ``rejected``); ``None`` for any other topic."""
    if not topic.startswith(_PREFIX) or _MIDDLE not in topic:
        return None
    thing, _, rest = topic[len(_PREFIX):].partition(_MIDDLE)
    encoding, _, suffix = rest.partition("/")
    if not thing or "/" in thing or encoding not in ("json", "cbor") or suffix not in (
            "", "accepted", "rejected"):
        return None
    return thing, encoding, suffix


def thing_of(session: Session) -> tuple[str, bool]:
    """(thing name or client id, registered?) of a session."""
    name = getattr(session.permissions, "thing_name", None)
    return (name, True) if name else (session.client_id, False)


class DefenderMetricsTopics:
    """A :class:`~bastion.broker.ReservedTopicHandler` for device metrics reports.

    :param clock: when reports arrive (its epoch seconds).
    :param min_period: a thing's reports closer together than this, less
        ``tolerance``, are rejected.
    :param tolerance: the share of ``min_period`` a report may come early (jitter).
    :param max_batch: the most datapoints of queued reports ingested in one batch.

    :attr:`submit`, when set (a cluster), takes the accepted reports' datapoints instead of
    this node's detect service: ``submit(datapoints, now)``, on the broker's loop.
    """

    def __init__(self, broker: Broker, detect: DetectService, *, min_period: float,
                 clock: Clock | None = None, max_batch: int = 20_000,
                 tolerance: float = 0.1) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not 0 <= tolerance < 1:
            raise ValueError("tolerance must be in [0, 1)")
        self._broker = broker
        self._detect = detect
        self.min_period = min_period
        self.tolerance = tolerance
        self._held: dict[str, dict[int | None, dict[str, int]]] = {}
        """thing → report id → the deltas of its refused reports (see the module)."""
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.max_batch = max_batch
        self._last: dict[str, float] = {}
        self._pending: list[tuple[list[Datapoint], float]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.submit: Callable[[list[Datapoint], float], None] | None = None

    def handles(self, topic: str) -> bool:
        return parse_metrics_topic(topic) is not None

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        parsed = parse_metrics_topic(message.topic)
        if parsed is None:
            return False
        thing, encoding, suffix = parsed
        if suffix:
            return True  # devices do not publish replies
        base = message.topic
        now = self._clock.time()
        document: object = None
        try:
            if len(thing.encode()) > 128 or any(ord(c) < 32 for c in thing):
                raise ReportRejected("InvalidPayload", "Invalid thing name")
            document = decode_payload(message.payload, encoding)
            report = parse_report(document, self._detect.custom_types())
            last = self._last.get(thing)
            earliest = None if last is None else last + self.min_period * (1 - self.tolerance)
            if earliest is not None and now < earliest:
                self._hold(thing, report)
                raise ReportRejected(
                    "Throttled",
                    f"Reports must not be sent more often than every "
                    f"{self.min_period:g} seconds; retry after "
                    f"{math.ceil(earliest * 1000)} (epoch ms)")
        except ReportRejected as rejected:
            self._reply(base + "/rejected", encoding, {
                "thingName": thing, "reportId": report_id_of(document),
                "status": "REJECTED",
                "statusDetails": {"ErrorCode": rejected.mqtt_code,
                                  "ErrorMessage": rejected.message},
                "timestamp": int(now * 1000)})
            return True
        self._last[thing] = now
        # The registry decides whether the thing exists; a client without a thing
        # reporting under its own client id is unregistered.
        registered = not (thing == session.client_id
                          and getattr(session.permissions, "thing_name", None) is None)
        points = [Datapoint(thing, metric, value, now, None, registered)
                  for metric, value in self._with_held(thing, report)]
        if self.submit is not None:
            self.submit(points, now)
        else:
            self._pending.append((points, now))
            if self._drainer is None or self._drainer.done():
                self._drainer = broker.spawn(self._drain())
        self._reply(base + "/accepted", encoding, {
            "thingName": thing, "reportId": report.report_id, "status": "ACCEPTED",
            "timestamp": int(now * 1000)})
        return True

    def _hold(self, thing: str, report: DeviceReport) -> None:
        """Keep the deltas of a refused report for the thing's next accepted one."""
        deltas = {metric: value.count for metric, value in report.values
                  if metric in DELTA_METRICS and value.count}
        if not deltas:
            return
        held = self._held.setdefault(thing, {})
        if report.report_id not in held and len(held) >= MAX_HELD_REPORTS:
            oldest = next(k for k in held if k is not None)
            folded = held.setdefault(None, {})
            for metric, count in held.pop(oldest).items():
                folded[metric] = folded.get(metric, 0) + count
        held[report.report_id] = deltas  # a resend replaces, never adds

    def _with_held(self, thing: str, report: DeviceReport
                   ) -> list[tuple[str, MetricValue]]:
        """The accepted report's values with the held deltas of refused reports added
        (a held report with this report's id is this one resent: not added)."""
        held = self._held.pop(thing, None)
        if not held:
            return list(report.values)
        held.pop(report.report_id, None)
        extra: dict[str, int] = {}
        for deltas in held.values():
            for metric, count in deltas.items():
                extra[metric] = extra.get(metric, 0) + count
        values = []
        for metric, value in report.values:
            if metric in extra and value.count is not None:
                value = MetricValue(count=value.count + extra.pop(metric))
            values.append((metric, value))
        values.extend((metric, MetricValue(count=count)) for metric, count in extra.items())
        return values

    async def _drain(self) -> None:
        """Ingest the queued reports, a batch at a time, until none is left."""
        while self._pending:
            batch: list[Datapoint] = []
            now = 0.0
            taken = 0
            for points, at in self._pending:
                if batch and len(batch) + len(points) > self.max_batch:
                    break
                batch.extend(points)
                now = max(now, at)
                taken += 1
            del self._pending[:taken]
            try:
                await asyncio.to_thread(self._detect.ingest, batch, now)
            except Exception:
                log.exception("detect: evaluating %d metrics reports failed", taken)

    def _reply(self, topic: str, encoding: str, body: dict[str, object]) -> None:
        payload = cbor2.dumps(body) if encoding == "cbor" else json.dumps(body).encode()
        self._broker.publish(Message(topic, payload, 1, False))


@dataclass(slots=True)
class _Tally:
    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    authorization_failures: int = 0
    messages_dropped: int = 0
    connection_attempts: int = 0
    disconnects: int = 0
    source_ips: set[str] = field(default_factory=set)
    registered: bool = True
    dimension_failures: dict[str, int] = field(default_factory=dict)
    topic_dimensions: dict[str, list[str]] = field(default_factory=dict)
    """metric → dimension names counted per topic for this thing in the interval."""
    topic_counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)


AWAY_POINTS: Final = 10
"""Empty ``aws:source-ip-address`` datapoints a thing gets once its last connection is
gone: AWS's largest ``consecutiveDatapointsToClear``."""
SOURCE_IP: Final = "aws:source-ip-address"
AUTH_FAILURES: Final = "aws:num-authorization-failures"
SENT: Final = "aws:num-messages-sent"
RECEIVED: Final = "aws:num-messages-received"
BYTE_SIZE: Final = "aws:message-byte-size"
TOPIC_METRICS: Final = (SENT, RECEIVED, BYTE_SIZE)
TopicDimensions = Callable[[str, bool], dict[str, list[tuple[str, tuple[str, ...]]]]]
"""(thing, registered) → metric → (dimension name, topic filters) that apply to it."""


class DimensionTally:
    """A session's per-dimension counters (a :class:`~bastion.broker.TopicTally`).

    :param dimensions: metric → (dimension name, topic filters with ``${iot:ClientId}``
        already resolved), for the metrics of :data:`TOPIC_METRICS`.
    """

    def __init__(self, dimensions: dict[str, list[tuple[str, tuple[str, ...]]]]) -> None:
        self.dimensions = dimensions
        self._sent = [(n, f) for n, f in dimensions.get(SENT, ())]
        self._size = [(n, f) for n, f in dimensions.get(BYTE_SIZE, ())]
        self._received = [(n, f) for n, f in dimensions.get(RECEIVED, ())]
        self.counts: dict[tuple[str, str], list[int]] = {}
        """(metric, dimension key) → [messages, bytes] since the last :meth:`drain`."""

    def _add(self, metric: str, dims: list[tuple[str, tuple[str, ...]]], topic: str,
             size: int) -> None:
        for name, filters in dims:
            hit = any(_matches(f, topic) for f in filters)
            counts = self.counts.setdefault(
                (metric, dimension_key(name, "IN" if hit else "NOT_IN")), [0, 0])
            counts[0] += 1
            counts[1] += size

    def sent(self, topic: str, size: int) -> None:
        if self._sent:
            self._add(SENT, self._sent, topic, size)
        if self._size:
            self._add(BYTE_SIZE, self._size, topic, size)

    def received(self, topic: str, size: int) -> None:
        if self._received:
            self._add(RECEIVED, self._received, topic, size)

    def drain(self) -> dict[tuple[str, str], list[int]]:
        counts, self.counts = self.counts, {}
        return counts
Dimensions = Callable[[str], list[tuple[str, tuple[str, ...]]]]
"""metric → (dimension name, topic filters) of the dimensions behaviors use with it."""


class CloudMetricSampler:
    """Per-interval cloud-side metrics from session counters and bus events.

    :param dimensions: the TOPIC_FILTER dimensions in use; ``aws:num-authorization-failures``
        is also counted per dimension (from the denials' topics: the denial path, never
        the message path).
    """

    def __init__(self, broker: Broker, dimensions: Dimensions = lambda metric: [],
                 topic_dimensions: TopicDimensions = lambda thing, registered: {}) -> None:
        self._broker = broker
        self._dimensions = dimensions
        self._topic_dimensions = topic_dimensions
        self._seen: dict[int, tuple[int, int, int, int, int]] = {}
        self._tally: dict[str, _Tally] = defaultdict(_Tally)
        self._things_of_certificate: dict[str, tuple[str, bool]] = {}
        self.disconnected_since: dict[str, float] = {}
        self._away: dict[str, tuple[int, bool]] = {}
        """thing → (empty source-address datapoints still due, registered?)."""
        bus = broker.bus
        self._unsubscribe = [
            bus.subscribe(ClientConnected, self._connected),
            bus.subscribe(ClientDisconnected, self._disconnected),
            bus.subscribe(ConnectRefused, self._refused),
            bus.subscribe(AuthorizationDenied, self._denied),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def _connected(self, event: ClientConnected) -> None:
        session = self._broker.sessions.get(event.client_id)
        if session is None:
            return
        thing, registered = thing_of(session)
        self._things_of_certificate[event.certificate_id] = (thing, registered)
        tally = self._tally[thing]
        tally.registered = registered
        tally.connection_attempts += 1
        tally.source_ips.add(event.source_ip)
        self.disconnected_since.pop(thing, None)
        self._away.pop(thing, None)
        self._equip(session, thing, registered)

    def _refused(self, event: ConnectRefused) -> None:
        thing, registered = self._things_of_certificate.get(
            event.certificate_id, (event.client_id, False))
        if not thing:
            return
        tally = self._tally[thing]
        tally.registered = registered
        tally.connection_attempts += 1
        if event.source_ip:
            tally.source_ips.add(event.source_ip)

    def _disconnected(self, event: ClientDisconnected) -> None:
        session = self._broker.sessions.get(event.client_id)
        if session is None:
            return
        thing, registered = thing_of(session)
        self._collect(session, thing, registered)
        tally = self._tally[thing]
        tally.disconnects += 1
        self.disconnected_since[thing] = event.timestamp
        # The next connection is a new session object: forget this one's readings.
        self._seen.pop(id(session), None)

    def _denied(self, event: AuthorizationDenied) -> None:
        # Denials inside a session are counted by the session itself (here only per
        # dimension); only a refused iot:Connect has no session to count it.
        if event.action != "iot:Connect":
            dimensions = self._dimensions(AUTH_FAILURES)
            session = self._broker.sessions.get(event.client_id)
            if not dimensions or session is None:
                return
            thing, registered = thing_of(session)
            tally = self._tally[thing]
            tally.registered = registered
            for name, filters in dimensions:
                hit = any(_matches(f.replace("${iot:ClientId}", event.client_id),
                                   event.resource) for f in filters)
                key = dimension_key(name, "IN" if hit else "NOT_IN")
                tally.dimension_failures[key] = tally.dimension_failures.get(key, 0) + 1
            return
        thing, registered = self._things_of_certificate.get(
            event.certificate_id, (event.client_id, False))
        tally = self._tally[thing]
        tally.registered = registered
        tally.authorization_failures += 1

    def _equip(self, session: Session, thing: str, registered: bool) -> None:
        """Give ``session`` the per-topic counters its thing's profiles need (or none)."""
        wanted = self._topic_dimensions(thing, registered)
        if not wanted:
            session.tally_topics(None)
            return
        client = session.client_id
        resolved = {metric: [(name, tuple(f.replace("${iot:ClientId}", client)
                                          for f in filters)) for name, filters in dims]
                    for metric, dims in wanted.items()}
        current = session.topic_tally
        if isinstance(current, DimensionTally) and current.dimensions == resolved:
            return
        if isinstance(current, DimensionTally):
            self._collect_topics(current, thing)
        session.tally_topics(DimensionTally(resolved))

    def _collect_topics(self, tally: DimensionTally, thing: str) -> None:
        target = self._tally[thing]
        for metric, dims in tally.dimensions.items():
            names = target.topic_dimensions.setdefault(metric, [])
            names.extend(n for n, _ in dims if n not in names)
        for key, (messages, size) in tally.drain().items():
            counts = target.topic_counts.setdefault(key, [0, 0])
            counts[0] += messages
            counts[1] += size

    def _collect(self, session: Session, thing: str, registered: bool) -> None:
        if isinstance(session.topic_tally, DimensionTally):
            self._collect_topics(session.topic_tally, thing)
        now = (session.messages_sent, session.bytes_sent, session.messages_received,
               session.authorization_failures, session.dropped)
        before = self._seen.get(id(session), (0, 0, 0, 0, 0))
        self._seen[id(session)] = now
        tally = self._tally[thing]
        tally.registered = registered
        tally.messages_sent += now[0] - before[0]
        tally.bytes_sent += now[1] - before[1]
        tally.messages_received += now[2] - before[2]
        tally.authorization_failures += now[3] - before[3]
        tally.messages_dropped += now[4] - before[4]

    def sample(self, now: float) -> list[Datapoint]:
        """The datapoints of the interval that ends ``now``: one set per thing that was
        connected or active during the interval. Must run on the broker's loop."""
        live: set[int] = set()
        addresses: dict[str, set[str]] = defaultdict(set)
        for session in self._broker.sessions.values():
            # An offline session keeps its counters (what it dropped meanwhile counts at
            # its next interval online); only a session that is gone is forgotten.
            live.add(id(session))
            if session.connection is None:
                continue
            thing, registered = thing_of(session)
            self._collect(session, thing, registered)
            self._equip(session, thing, registered)
            if session.principal.source_ip:
                addresses[thing].add(session.principal.source_ip)
        for key in [k for k in self._seen if k not in live]:
            del self._seen[key]
        tallies, self._tally = self._tally, defaultdict(_Tally)
        dimensions = self._dimensions(AUTH_FAILURES)
        points: list[Datapoint] = []
        for thing, t in tallies.items():
            values = [
                ("aws:num-messages-sent", MetricValue(count=t.messages_sent)),
                ("aws:num-messages-received", MetricValue(count=t.messages_received)),
                ("aws:num-authorization-failures",
                 MetricValue(count=t.authorization_failures)),
                ("aws:num-connection-attempts", MetricValue(count=t.connection_attempts)),
                ("aws:num-disconnects", MetricValue(count=t.disconnects)),
                ("bastion:num-messages-dropped", MetricValue(count=t.messages_dropped)),
            ]
            if t.messages_sent:
                values.append(("aws:message-byte-size",
                               MetricValue(count=t.bytes_sent // t.messages_sent)))
            seen = t.source_ips | addresses.get(thing, set())
            values.append((SOURCE_IP, MetricValue(cidrs=tuple(sorted(seen)))))
            if thing in addresses:
                self._away.pop(thing, None)
            elif t.disconnects:  # its last connection went: the empty set clears alarms
                self._away[thing] = (AWAY_POINTS - 1, t.registered)
            points.extend(Datapoint(thing, metric, value, now, None, t.registered)
                          for metric, value in values)
            for name, _ in dimensions:
                for dim_key in (dimension_key(name), dimension_key(name, "NOT_IN")):
                    points.append(Datapoint(
                        thing, AUTH_FAILURES,
                        MetricValue(count=t.dimension_failures.get(dim_key, 0)), now,
                        dim_key, t.registered))
            for metric, names in t.topic_dimensions.items():
                for name in names:
                    for dim_key in (dimension_key(name), dimension_key(name, "NOT_IN")):
                        messages, size = t.topic_counts.get((metric, dim_key), (0, 0))
                        if metric == BYTE_SIZE:
                            if not messages:
                                continue
                            value = MetricValue(count=size // messages)
                        else:
                            value = MetricValue(count=messages)
                        points.append(Datapoint(thing, metric, value, now, dim_key,
                                                t.registered))
        for thing, since in self.disconnected_since.items():
            if thing in tallies:
                continue
            points.append(Datapoint(thing, "aws:disconnect-duration",
                                    MetricValue(count=int((now - since) // 60)), now))
        for thing, (due, registered) in list(self._away.items()):
            if thing in tallies:
                continue
            points.append(Datapoint(thing, SOURCE_IP, MetricValue(cidrs=()), now, None,
                                    registered))
            if due > 1:
                self._away[thing] = (due - 1, registered)
            else:
                del self._away[thing]
        return points


def _matches(topic_filter: str, topic: str) -> bool:
    try:
        return topic_matches(topic_filter, topic)
    except Exception:  # noqa: BLE001 - a filter that is not valid MQTT matches nothing
        return False


class DetectLoop(Component):
    """Detect's cloud side on one broker: the sampler, and one evaluation per interval
    (sample, evaluate, expire silent alarms). Membership changes from the bus re-target
    profiles; metrics export batches are published on the broker.

    :param interval: seconds between evaluations.
    :param clock: the evaluations' time (tests move it by hand and call :meth:`tick`).

    In a cluster the fleet paces the evaluations (:attr:`paced` is cleared): every node's
    sampler is read when the evaluating node asks, and only that node evaluates.
    """

    name = "detect"

    def __init__(self, broker: Broker, service: DetectService, bus: EventBus, *,
                 interval: float, clock: Clock | None = None) -> None:
        self._broker = broker
        self.service = service
        self._bus = bus
        self.interval = interval
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sampler: CloudMetricSampler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.paced = True
        """Whether :meth:`run` evaluates every ``interval`` (else the cluster does)."""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        service = self.service
        service.on_export = self._export
        await asyncio.to_thread(service.load)
        self.sampler = CloudMetricSampler(
            self._broker, service.dimensions_in_use,
            lambda thing, registered: service.topic_dimensions_for(thing, registered,
                                                                   TOPIC_METRICS))
        self._unsubscribe = [
            self._bus.subscribe(ThingGroupMembershipChanged, self._thing_moved),
            self._bus.subscribe(ThingDeleted, self._thing_moved),
            self._bus.subscribe(ThingUpdated, self._thing_moved),  # type, firmware: peers
            self._bus.subscribe(ThingGroupDeleted, self._group_deleted),
        ]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.paced:
                continue
            try:
                await self.tick()
            except Exception:
                log.exception("detect: evaluation failed")

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self.sampler is not None:
            self.sampler.close()
        try:
            await asyncio.to_thread(self.service.save_models)
        except Exception:
            log.exception("detect: saving the ML models failed")

    async def tick(self) -> list[ViolationEvent]:
        """Sample the cloud-side metrics, evaluate them, invalidate silent alarms (on the
        broker's loop); the violation events raised."""
        assert self.sampler is not None, "the detect loop is not started"
        now = self.clock.time()
        points = self.sampler.sample(now)
        events = await asyncio.to_thread(self.service.ingest, points, now)
        events += await asyncio.to_thread(self.service.expire, now)
        return events

    def _thing_moved(self, event: ThingGroupMembershipChanged | ThingDeleted | ThingUpdated
                     ) -> None:
        self.service.membership_changed(event.thing_name)

    def _group_deleted(self, event: ThingGroupDeleted) -> None:
        self.service.membership_changed()

    def _export(self, topic: str, document: dict[str, Any]) -> None:
        """Publish an exported metrics batch on the broker (any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        message = Message(topic, json.dumps(document).encode("utf-8"), 0, False)
        loop.call_soon_threadsafe(self._broker.publish, message)
