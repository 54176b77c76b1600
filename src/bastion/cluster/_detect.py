"""Detect across nodes: every node counts its devices, one node evaluates them all.

Theory of operation
-------------------
A device is connected to one node at a time, but it may move. Its windows, alarm trackers
and open violations must not split between nodes, so one node of the fleet evaluates: the
holder of the ``detect`` lease (:class:`~._leader.LeaderLease`, bucket
``<name>_leader``). Every node, the evaluator too, measures and forwards:

* **Device reports.** The node the device reports to checks the report, throttles it and
  answers it as on one node, then publishes its datapoints on the JetStream stream
  ``<name>_detect`` (subject ``<name>.detect.points``) instead of evaluating them.
* **Cloud-side metrics.** Every ``interval`` the evaluator asks every node, on the core
  subject ``<name>.detect.tick``, for its sample of tick *k* at time *t*. Each node reads
  its counters (as one node does at its own interval) and publishes them on the stream,
  marked with *k*, even when it saw nothing. The evaluator waits until every node that has
  a heartbeat in ``<name>_nodes`` has answered, or ``GRACE`` seconds, merges the samples
  (:func:`~bastion.defender.detect.merge_samples`: a device that moved is counted once,
  with what it did on each node) and evaluates them at *t*. A sample that comes late
  counts in the next tick: counters are never reset without being read, so a lost tick
  delays counts but loses none.

The evaluator reads the stream through one durable consumer (``evaluator``) and
acknowledges a message once its datapoints are evaluated and written to PostgreSQL. The
stream keeps what is not acknowledged (work-queue retention), so when the evaluator dies
the next one gets it: JetStream hands it out again after ``ACK_WAIT`` seconds, or at once
when the evaluator stopped cleanly and gave it back.

A node that takes the lease forgets what it held and loads the open violations and their
alarm trackers from PostgreSQL, as a node does at start. The windows of
``durationSeconds`` behaviors start empty there. A node that loses the lease forgets its
evaluation state and stops pulling.

Everything an API call reads comes from PostgreSQL on every node: profiles (each node
reloads them when another announces a change on ``<name>.detect.changed``, and at every
tick; the evaluator before it evaluates the tick), active violations, violation events and
metric values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, Final

from ..clock import Clock
from ..config import ClusterConfig
from ..defender.detect import Datapoint, MetricValue, ViolationEvent, merge_samples
from ..lifecycle import Component
from ._leader import LeaderLease, leader_bucket
from ._status import Lease, nodes_bucket

if TYPE_CHECKING:
    from ..reserved.defender import DefenderMetricsTopics, DetectLoop

log = logging.getLogger("bastion.cluster")

ROLE: Final = "detect"
DURABLE: Final = "evaluator"
GRACE: Final = 2.0
"""Seconds the evaluator waits for the nodes' samples of a tick."""
ACK_WAIT: Final = 30.0
"""Seconds after which JetStream hands an unacknowledged message to the evaluator again."""
MAX_DELIVERIES: Final = 5
"""A message that failed this many evaluations is dropped (logged)."""
RETENTION: Final = 86400.0
"""Seconds the stream keeps datapoints no evaluator took (a fleet without a leader)."""


def encode_points(kind: str, node: str, tick: int, at: float,
                  points: list[Datapoint]) -> bytes:
    """One message of the stream: a report's or a sample's datapoints, as JSON."""
    return json.dumps({
        "kind": kind, "node": node, "tick": tick, "at": at,
        "points": [[p.thing_name, p.metric, p.value.to_json(), p.timestamp, p.dimension,
                    p.registered] for p in points]}).encode()


def decode_points(data: bytes) -> tuple[str, str, int, float, list[Datapoint]]:
    """``(kind, node, tick, at, datapoints)`` of :func:`encode_points`' message.

    :raises ValueError: not such a message.
    """
    try:
        raw = json.loads(data)
        kind, node, tick, at = raw["kind"], raw["node"], raw["tick"], raw["at"]
        if kind not in ("report", "sample", "sample-part") or not isinstance(node, str) \
                or type(tick) is not int or not isinstance(at, (int, float)):
            raise ValueError("bad header")
        points = []
        for thing, metric, value, timestamp, dimension, registered in raw["points"]:
            if not isinstance(thing, str) or not isinstance(metric, str) \
                    or not isinstance(timestamp, (int, float)) \
                    or not isinstance(dimension, (str, type(None))) \
                    or not isinstance(registered, bool):
                raise ValueError("bad datapoint")  # noqa: TRY004 - the sender's, on the wire
            points.append(Datapoint(thing, metric, MetricValue.from_json(value),
                                    float(timestamp), dimension, registered))
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any shape error is the sender's
        raise ValueError(f"not a detect message: {exc}") from None
    return kind, node, tick, float(at), points


SAMPLE_PART = 2_000
"""Datapoints per stream message of a node's sample (well under NATS's payload limit)."""


def sample_messages(node: str, tick: int, at: float, points: list[Datapoint]
                    ) -> list[bytes]:
    """A node's sample for ``tick`` as stream messages. A big node's sample would pass
    NATS's payload limit (1 MiB), so it goes in parts of ``SAMPLE_PART`` datapoints; the
    last one is of kind "sample", which tells the evaluator the node has answered, the
    others "sample-part"."""
    parts = [points[start:start + SAMPLE_PART]
             for start in range(0, len(points), SAMPLE_PART)] or [[]]
    return [encode_points("sample" if number == len(parts) else "sample-part", node, tick,
                          at, part) for number, part in enumerate(parts, 1)]


class FleetDetect(Component):
    """Detect across the fleet (see the module docstring): forwards this node's datapoints
    and, while this node holds the lease, evaluates everyone's.

    :param detect: this node's detect loop (its sampler and its service).
    :param reports: this node's device-report handler.
    :param interval: seconds between two ticks.
    """

    name = "cluster-detect"

    def __init__(self, detect: DetectLoop, reports: DefenderMetricsTopics,
                 config: ClusterConfig, *, interval: float, clock: Clock) -> None:
        self._detect = detect
        self._service = detect.service
        self._reports = reports
        self._config = config
        self.interval = interval
        self._clock = clock
        self.node = config.node
        prefix = config.name
        self._stream = f"{prefix}_detect"
        self._points = f"{prefix}.detect.points"
        self._ticks = f"{prefix}.detect.tick"
        self._changes = f"{prefix}.detect.changed"
        self._nc: Any = None
        self._js: Any = None
        self._nodes: Any = None
        self.lease: LeaderLease | None = None
        self._pull: Any = None
        self._consumer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._samples: list[tuple[str, int, list[Datapoint], Any]] = []
        self._arrived = asyncio.Event()
        self._ticking = asyncio.Lock()
        self.last_tick = 0
        """The highest tick this node has seen asked for."""

    @property
    def evaluating(self) -> bool:
        """Whether this node is the fleet's evaluator now."""
        return self.lease is not None and self.lease.held and self._consumer is not None

    async def start(self) -> None:
        import nats
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig

        self._loop = asyncio.get_running_loop()
        self._nc = await nats.connect(self._config.nats_url, name=f"bastion-{self.node}-detect",
                                      max_reconnect_attempts=-1, ping_interval=3,
                                      max_outstanding_pings=2)
        self._js = self._nc.jetstream()
        await self._js.add_stream(StreamConfig(
            name=self._stream, subjects=[self._points],
            retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE,
            max_age=RETENTION))
        self._nodes = await nodes_bucket(self._nc, self._config.name, Lease(self._config.lease))
        self.lease = LeaderLease(await leader_bucket(self._nc, self._config.name), ROLE,
                                 self.node, monotonic=self._clock.monotonic)
        await self._nc.subscribe(self._ticks, cb=self._tick_asked)
        await self._nc.subscribe(self._changes, cb=self._changed_elsewhere)
        service = self._service
        await asyncio.to_thread(service.reset)  # the evaluator's, once it holds the lease
        service.shared = True
        service.on_change = self._announce_change
        self._reports.submit = self._submit
        self._detect.paced = False

    async def run(self) -> None:
        assert self.lease is not None
        async with asyncio.TaskGroup() as group:
            group.create_task(self.lease.run(self._gained, self._lost))
            group.create_task(self._pace())

    async def stop(self) -> None:
        """Send what was counted since the last tick, give the lease and the unevaluated
        messages back, and leave."""
        self._reports.submit = None
        self._service.on_change = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._send_sample(self.last_tick, self._clock.time()), 2.0)
        await self._stop_evaluating()
        if self.lease is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.lease.close(), 2.0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 2.0)

    # -- every node: forwarding ---------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _submit(self, points: list[Datapoint], now: float) -> None:
        """A device report's datapoints (on the broker's loop)."""
        self._spawn(self._publish(encode_points("report", self.node, 0, now, points)))

    async def _publish(self, payload: bytes) -> None:
        try:
            await self._js.publish(self._points, payload, stream=self._stream, timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - NATS away: these datapoints are lost
            log.warning("detect: datapoints not forwarded to the evaluator: %s", exc)

    async def _send_sample(self, tick: int, at: float) -> None:
        sampler = self._detect.sampler
        if sampler is None:
            return
        for message in sample_messages(self.node, tick, at, sampler.sample(at)):
            await self._publish(message)

    async def _tick_asked(self, msg: Any) -> None:
        try:
            raw = json.loads(msg.data)
            tick, at = int(raw["tick"]), float(raw["at"])
        except (ValueError, KeyError, TypeError):
            log.warning("detect: ignored a malformed tick")
            return
        self.last_tick = max(self.last_tick, tick)
        await self._send_sample(tick, at)
        if not self.evaluating:  # the evaluator's own changes are in its memory already
            self._spawn(self._reload())

    async def _reload(self) -> None:
        try:
            await asyncio.to_thread(self._service.reload_definitions)
        except Exception:
            log.exception("detect: reloading the security profiles failed")

    def _announce_change(self) -> None:
        """A profile, metric, dimension or verification changed here (any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._nc is None:
            return
        loop.call_soon_threadsafe(self._spawn, self._nc.publish(self._changes,
                                                                self.node.encode()))

    async def _changed_elsewhere(self, msg: Any) -> None:
        if msg.data != self.node.encode():
            await self._reload()

    # -- the evaluator ------------------------------------------------------------------

    async def _pace(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.evaluating:
                continue
            try:
                await self.tick()
            except Exception:
                log.exception("detect: the fleet's evaluation failed")

    async def tick(self) -> list[ViolationEvent]:
        """Ask every node for its sample, merge and evaluate the samples, invalidate
        silent alarms; the violation events raised.

        :raises RuntimeError: this node is not the evaluator.
        """
        async with self._ticking:
            if not self.evaluating:
                raise RuntimeError("this node is not the fleet's detect evaluator")
            tick = self.last_tick = self.last_tick + 1
            at = self._clock.time()
            expected = await self._live_nodes()
            await self._nc.publish(self._ticks, json.dumps({"tick": tick, "at": at}).encode())
            deadline = self._clock.monotonic() + GRACE
            while True:
                self._arrived.clear()
                answered = {node for node, k, _, _ in self._samples if k == tick}
                left = deadline - self._clock.monotonic()
                if expected <= answered or left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)
            taken, self._samples = self._samples, []
            points = merge_samples([points for _, _, points, _ in taken], at)
            service = self._service
            try:
                # Profiles changed through another node count from this tick on, even
                # when their announcement is still on its way.
                await asyncio.to_thread(service.reload_definitions)
                events = await asyncio.to_thread(service.ingest, points, at)
                events += await asyncio.to_thread(service.expire, at)
            except BaseException:
                self._samples[:0] = taken  # counted at the next tick
                raise
            for *_, msg in taken:
                with contextlib.suppress(Exception):
                    await msg.ack()
            return events

    async def _live_nodes(self) -> set[str]:
        try:
            return set(await self._nodes.keys()) | {self.node}
        except Exception:  # noqa: BLE001 - no heartbeat yet
            return {self.node}

    async def _gained(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        service = self._service
        try:
            await asyncio.to_thread(service.reset)
            await asyncio.to_thread(service.load)
            self._pull = await self._js.pull_subscribe(
                self._points, durable=DURABLE, stream=self._stream,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT))
        except Exception:
            log.exception("detect: could not start evaluating; trying again")
            assert self.lease is not None
            await self.lease.release()
            return
        self._consumer = asyncio.get_running_loop().create_task(self._consume())
        log.info("detect: this node evaluates the fleet")

    async def _lost(self) -> None:
        await self._stop_evaluating()
        await asyncio.to_thread(self._service.reset)

    async def _stop_evaluating(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.cancel()
            with contextlib.suppress(BaseException):
                await consumer
        taken, self._samples = self._samples, []
        for *_, msg in taken:  # to the next evaluator at once
            with contextlib.suppress(Exception):
                await asyncio.wait_for(msg.nak(), 1.0)
        pull, self._pull = self._pull, None
        if pull is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pull.unsubscribe(), 1.0)

    async def _consume(self) -> None:
        """Pull the stream: samples wait for their tick, reports are evaluated at once."""
        import nats.errors

        while True:
            try:
                msgs = await self._pull.fetch(256, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: try again
                log.debug("detect: pulling datapoints failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            reports: list[tuple[list[Datapoint], float, Any]] = []
            for msg in msgs:
                try:
                    kind, node, tick, at, points = decode_points(msg.data)
                except ValueError as exc:
                    log.warning("detect: dropped a malformed message: %s", exc)
                    await msg.term()
                    continue
                if kind == "sample":
                    self._samples.append((node, tick, points, msg))
                    self._arrived.set()
                elif kind == "sample-part":  # more of that node's sample follows
                    self._samples.append(("", tick, points, msg))
                else:
                    reports.append((points, at, msg))
            if reports:
                await self._evaluate_reports(reports)

    async def _evaluate_reports(self, reports: list[tuple[list[Datapoint], float, Any]]
                                ) -> None:
        """One evaluation (one store transaction) for the batch; when it fails, one per
        report, so that one bad report (evaluated before by an evaluator that died before
        acknowledging it: its datapoints are stored already) does not hold back the rest."""
        batch = [point for points, _, _ in reports for point in points]
        at = max(at for _, at, _ in reports)
        try:
            await asyncio.to_thread(self._service.ingest, batch, at)
        except Exception:
            if len(reports) > 1:
                for report in reports:
                    await self._evaluate_reports([report])
                return
            log.exception("detect: evaluating a metrics report failed")
            msg = reports[0][2]
            with contextlib.suppress(Exception):
                if msg.metadata.num_delivered >= MAX_DELIVERIES:
                    await msg.term()
                else:
                    await msg.nak(delay=1.0)
            return
        for _, _, msg in reports:
            with contextlib.suppress(Exception):
                await msg.ack()
