"""Worker processes and how the parent steers and measures them.

Theory of operation
-------------------
The parent process never touches a socket. A :class:`WorkerGroup` spawns worker
processes (``multiprocessing`` spawn context), each running one event loop (uvloop when
installed) with many MQTT connections, and steers them through shared memory:

1. Every worker connects its clients (TLS handshake, CONNECT/CONNACK, SUBSCRIBE/SUBACK)
   and reports ``ready`` on the group's report queue.
2. :func:`measure` sets the group's ``go`` event; workers start their traffic.
3. Workers keep running counts in a shared array; :func:`measure` reads the array (plus
   /proc CPU and memory figures) once after a warm-up and once at the end of the measured
   window. Rates are differences over that window only.
4. The parent raises each worker's own ``stop`` flag; the worker winds down (QoS 1
   publishers wait for their outstanding PUBACKs), disconnects and reports ``result``.
   Every worker also has a hard deadline of its own, so nothing outlives a broken parent,
   and leaving the group's ``with`` block terminates whatever is still alive.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import multiprocessing.synchronize
import os
import queue
import signal
import ssl
import statistics
import time
import traceback
from array import array
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Self

import procstat
import wire
from clients import (
    TOPIC_FILTER,
    Client,
    Endpoint,
    LoadError,
    MqttSink,
    Publisher,
    Subscriber,
    TlsFiles,
    client_ssl_context,
    open_client,
    open_many,
    server_ssl_context,
)

try:
    import uvloop
except ImportError:  # the generator still works on the default loop, only slower
    uvloop = None  # type: ignore[assignment]

PACE_TICK = 0.001
"""Seconds between two rounds of the paced (latency) publisher."""

READY_TIMEOUT = 60.0
RESULT_TIMEOUT = 15.0
_COUNTER_TICK = 0.01
_SPAWN = multiprocessing.get_context("spawn")

Job = Callable[..., Coroutine[Any, Any, None]]
"""A worker's body: ``async def job(control, *args)``, a module-level function."""

# ---------------------------------------------------------------------- workers


@dataclass(frozen=True, slots=True)
class Control:
    """What a worker shares with the parent. Picklable only while spawning."""

    slot: int
    go: multiprocessing.synchronize.Event
    stop: Any  # RawValue('b'): set by the parent to end the traffic
    counters: Any  # RawArray('d'): one running count per worker slot
    reports: multiprocessing.queues.Queue[tuple[str, int, Any]]
    deadline: float  # time.monotonic() after which the worker stops on its own

    def running(self) -> bool:
        return not self.stop.value and time.monotonic() < self.deadline

    def report(self, kind: str, payload: Any = None) -> None:
        self.reports.put((kind, self.slot, payload))

    async def wait_go(self) -> None:
        timeout = max(0.0, self.deadline - time.monotonic())
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.go.wait, timeout):
            raise LoadError("worker was never told to start")

    async def wait_stop(self, tick: Callable[[], None] | None = None) -> None:
        while self.running():
            if tick is not None:
                tick()
            await asyncio.sleep(_COUNTER_TICK)
        if tick is not None:
            tick()


def worker_entry(job: Job, control: Control, *args: Any) -> None:
    """Process entry point: run ``job(control, *args)`` on a fresh event loop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    try:
        use_uvloop = uvloop is not None and os.environ.get("BENCH_LOOP", "uvloop") == "uvloop"
        factory = uvloop.new_event_loop if use_uvloop else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(job(control, *args))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        detail = str(exc) if isinstance(exc, LoadError) else traceback.format_exc(limit=4)
        control.report("error", f"{type(exc).__name__}: {detail}")


@dataclass(frozen=True, slots=True)
class PublisherSpec:
    """What one publisher worker does."""

    client_ids: tuple[str, ...]
    qos: int
    payload_size: int = 64
    batch: int = 64
    rate: float | None = None
    """Messages per second for this worker (paced, latency runs); ``None`` floods."""


async def publisher_job(control: Control, endpoint: Endpoint, spec: PublisherSpec) -> None:
    ctx = client_ssl_context(endpoint.tls)
    conns: list[Publisher] = await open_many(  # type: ignore[assignment]
        endpoint,
        ctx,
        [
            lambda cid=cid: Publisher(  # type: ignore[misc]
                wire.encode_connect(cid), f"bench/{cid}", spec.qos, spec.payload_size
            )
            for cid in spec.client_ids
        ],
    )
    control.report("ready", {"tls": conns[0].tls_version(), "pid": os.getpid()})
    await control.wait_go()

    def publish_counts() -> None:
        control.counters[control.slot] = sum(c.sent for c in conns)

    if spec.rate is not None:
        pacer = asyncio.create_task(pace(conns, spec, control))
        await control.wait_stop(publish_counts)
        await pacer
    elif spec.qos == 0:
        floods = [asyncio.create_task(c.flood_qos0(spec.batch, control.running)) for c in conns]
        await control.wait_stop(publish_counts)
        await asyncio.gather(*floods)
    else:
        for c in conns:
            c.start_flood_qos1()
        await control.wait_stop(publish_counts)
        for c in conns:
            c.stop_flood()
    await asyncio.gather(*(c.settle(RESULT_TIMEOUT / 3) for c in conns))
    publish_counts()
    result = {
        "sent": sum(c.sent for c in conns),
        "acked": sum(c.acked for c in conns),
        "lost": sum(c.lost for c in conns),
    }
    for c in conns:
        c.close()
    control.report("result", result)


async def pace(conns: list[Publisher], spec: PublisherSpec, control: Control) -> None:
    """Offer ``spec.rate`` msg/s, round-robin over ``conns``, every ``PACE_TICK`` seconds.

    Each round generates the messages that became due since the last one, stamped with
    the generation time, so a stall anywhere shows up as latency, never as a lower rate.
    """
    assert spec.rate is not None
    padding = bytes(max(0, spec.payload_size - 8))
    start = time.monotonic()
    generated = 0
    turn = 0
    while control.running():
        due = int((time.monotonic() - start) * spec.rate) - generated
        if due > 0:
            payload = time.monotonic_ns().to_bytes(8, "big") + padding
            for _ in range(due):
                conns[turn].offer(payload)
                turn = (turn + 1) % len(conns)
            generated += due
            for c in conns:
                c.flush()
        await asyncio.sleep(PACE_TICK)


async def subscriber_job(
    control: Control, endpoint: Endpoint, client_id: str, qos: int, record_latency: bool
) -> None:
    ctx = client_ssl_context(endpoint.tls)
    sub: Subscriber = await open_client(  # type: ignore[assignment]
        endpoint,
        ctx,
        lambda: Subscriber(
            wire.encode_connect(client_id),
            wire.encode_subscribe(1, TOPIC_FILTER, qos),
            control.counters,
            control.slot,
            record_latency=record_latency,
        ),
    )
    control.report("ready", {"tls": sub.tls_version(), "pid": os.getpid()})
    await control.wait_go()
    await control.wait_stop()
    result: dict[str, Any] = {"received": sub.received, "lost": int(sub.lost)}
    sub.close()
    if record_latency:
        result["stamps"] = sub.stamps.tobytes()
        result["latencies"] = sub.latencies.tobytes()
    control.report("result", result)


async def idle_job(
    control: Control,
    endpoint: Endpoint,
    prefix: str,
    commands: multiprocessing.queues.Queue[tuple[str, int]],
) -> None:
    """Open idle connections on command (``("open", n)``) until told ``("close", 0)``."""
    ctx = client_ssl_context(endpoint.tls)
    loop = asyncio.get_running_loop()
    conns: list[Client] = []
    control.report("ready", {"pid": os.getpid()})
    while True:
        timeout = max(0.0, control.deadline - time.monotonic())
        try:
            command, count = await loop.run_in_executor(None, commands.get, True, timeout)
        except queue.Empty:
            break
        if command != "open":
            break
        results = await _open_idle(endpoint, ctx, prefix, control.slot, len(conns), count)
        failures = [r for r in results if isinstance(r, BaseException)]
        conns.extend(r for r in results if isinstance(r, Client))
        control.report(
            "opened",
            {
                "open": sum(not c.lost for c in conns),
                "failed": len(failures),
                "first_failure": repr(failures[0]) if failures else None,
            },
        )
    for c in conns:
        c.close()
    control.report("result", {"open": len(conns)})


async def _open_idle(
    endpoint: Endpoint,
    ctx: ssl.SSLContext | None,
    prefix: str,
    slot: int,
    start: int,
    count: int,
    concurrency: int = 64,
) -> list[Client | BaseException]:
    limit = asyncio.Semaphore(concurrency)

    async def one(client_id: str) -> Client:
        async with limit:
            return await open_client(
                endpoint, ctx, lambda: Client(wire.encode_connect(client_id, keep_alive=600))
            )

    ids = [f"{prefix}-{slot}-{start + k}" for k in range(count)]
    return list(await asyncio.gather(*(one(i) for i in ids), return_exceptions=True))


async def connect_job(control: Control, endpoint: Endpoint, prefix: str, concurrency: int) -> None:
    """Loop ``concurrency`` clients through handshake + CONNECT/CONNACK + DISCONNECT."""
    ctx = client_ssl_context(endpoint.tls)
    control.report("ready", {"pid": os.getpid()})
    await control.wait_go()
    done = 0
    failed = 0
    errors: list[str] = []
    durations = array("d")

    async def cycle(lane: int) -> None:
        nonlocal done, failed
        attempt = 0
        while control.running():
            client_id = f"{prefix}-{control.slot}-{lane}-{attempt}"
            attempt += 1
            began = time.monotonic()
            connect = wire.encode_connect(client_id)
            try:
                client = await open_client(endpoint, ctx, lambda: Client(connect))  # noqa: B023
            except (OSError, LoadError, TimeoutError) as exc:
                failed += 1
                if len(errors) < 3:
                    errors.append(repr(exc))
                continue
            durations.append(time.monotonic() - began)
            client.close()
            done += 1
            control.counters[control.slot] = done

    await asyncio.gather(*(cycle(lane) for lane in range(concurrency)))
    control.report(
        "result",
        {
            "done": done,
            "failed": failed,
            "errors": errors,
            "median_s": statistics.median(durations) if durations else None,
        },
    )


async def sink_job(
    control: Control, tls: TlsFiles, qos: int, payload_size: int, batch: int
) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: MqttSink(qos, payload_size, batch, control.running),
        "127.0.0.1",
        0,
        ssl=server_ssl_context(tls),
        backlog=1024,
    )
    control.report("ready", {"port": server.sockets[0].getsockname()[1], "pid": os.getpid()})
    await control.wait_stop()
    server.close()
    control.report("result", {})


# ------------------------------------------------------------------ parent side


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters and CPU/memory readings taken by the parent at one instant."""

    at: float
    at_ns: int
    counts: tuple[float, ...]
    generator: procstat.ProcSample
    broker: procstat.ProcSample | None
    machine_busy: float


def new_queue() -> multiprocessing.queues.Queue[Any]:
    """A queue that can be handed to a worker when it is spawned."""
    return _SPAWN.Queue()


class WorkerGroup:
    """Worker processes steered together; use as a context manager so they always end."""

    def __init__(self, hard_seconds: float) -> None:
        self._deadline = time.monotonic() + hard_seconds
        self._slots = 0
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._stops: list[Any] = []
        self._specs: list[tuple[Job, tuple[Any, ...]]] = []
        self.go = _SPAWN.Event()
        self.reports: multiprocessing.queues.Queue[tuple[str, int, Any]] = _SPAWN.Queue()
        self.counters: Any = None
        self.ready: dict[int, Any] = {}
        self.results: dict[int, Any] = {}

    def add(self, job: Job, *args: Any) -> int:
        """Declare a worker running ``job(control, *args)``; returns its slot."""
        self._specs.append((job, args))
        self._slots += 1
        return self._slots - 1

    def start(self, ready_timeout: float = READY_TIMEOUT) -> None:
        """Spawn every declared worker and wait until all report ready.

        :raises LoadError: if a worker fails or does not get ready in time.
        """
        self.counters = _SPAWN.RawArray("d", self._slots)
        for slot, (job, args) in enumerate(self._specs):
            stop = _SPAWN.RawValue("b", 0)
            control = Control(slot, self.go, stop, self.counters, self.reports, self._deadline)
            proc = _SPAWN.Process(target=worker_entry, args=(job, control, *args), daemon=True)
            proc.start()
            self._procs.append(proc)
            self._stops.append(stop)
        self.wait_for("ready", range(self._slots), ready_timeout)

    def wait_for(self, kind: str, slots: Sequence[int], timeout: float) -> dict[int, Any]:
        """Collect one ``kind`` report from each of ``slots``.

        :raises LoadError: on a worker's error report, or when the time runs out.
        """
        deadline = time.monotonic() + timeout
        got: dict[int, Any] = {}
        while len(got) < len(slots):
            remaining = deadline - time.monotonic()
            try:
                report_kind, slot, payload = self.reports.get(timeout=max(0.01, remaining))
            except queue.Empty:
                if remaining <= 0:
                    missing = sorted(set(slots) - set(got))
                    raise LoadError(f"workers {missing} sent no {kind!r} in {timeout:.0f} s")
                continue
            if report_kind == "error":
                raise LoadError(f"worker {slot}: {payload}")
            {"ready": self.ready, "result": self.results}.get(report_kind, {})[slot] = payload
            if report_kind == kind and slot in slots:
                got[slot] = payload
        return got

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def snapshot(self, broker_tree: list[int] | None) -> Snapshot:
        return Snapshot(
            time.monotonic(),
            time.monotonic_ns(),
            tuple(self.counters),
            procstat.sample_pids(self.pids),
            procstat.sample_pids(broker_tree) if broker_tree else None,
            procstat.machine_busy_seconds(),
        )

    def stop(self, slots: Sequence[int]) -> dict[int, Any]:
        """Stop ``slots`` and return their results."""
        for slot in slots:
            self._stops[slot].value = 1
        return self.wait_for("result", slots, RESULT_TIMEOUT)

    def close(self) -> None:
        """Stop every worker: a few seconds to finish on its own, then SIGTERM, SIGKILL."""
        for stop in self._stops:
            stop.value = 1
        grace = time.monotonic() + 5
        for proc in self._procs:
            proc.join(timeout=max(0.0, grace - time.monotonic()))
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Window:
    """Two snapshots bracketing a measured window, plus the broker's peak RSS within it."""

    first: Snapshot
    last: Snapshot
    broker_peak_rss: int | None

    @property
    def seconds(self) -> float:
        return self.last.at - self.first.at

    def rate(self, slots: Sequence[int]) -> float:
        counted = sum(self.last.counts[s] - self.first.counts[s] for s in slots)
        return counted / self.seconds

    @property
    def generator_cores(self) -> float:
        return (self.last.generator.cpu_seconds - self.first.generator.cpu_seconds) / self.seconds

    @property
    def broker_cores(self) -> float | None:
        if self.first.broker is None or self.last.broker is None:
            return None
        return (self.last.broker.cpu_seconds - self.first.broker.cpu_seconds) / self.seconds

    @property
    def other_cores(self) -> float:
        """CPU used by everything else on the machine: other work disturbing the run."""
        busy = (self.last.machine_busy - self.first.machine_busy) / self.seconds
        return max(0.0, busy - self.generator_cores - (self.broker_cores or 0.0))


def measure(group: WorkerGroup, warmup: float, duration: float, broker_pid: int | None) -> Window:
    """Release the workers, skip ``warmup`` seconds, then measure ``duration`` seconds."""
    tree = procstat.descendants(broker_pid) if broker_pid is not None else None
    group.go.set()
    time.sleep(warmup)
    first = group.snapshot(tree)
    peak = first.broker.rss_bytes if first.broker else None
    end = first.at + duration
    while (now := time.monotonic()) < end:
        time.sleep(min(0.1, end - now))
        if tree is not None:
            peak = max(peak or 0, procstat.rss_bytes(tree))
    return Window(first, group.snapshot(tree), peak)
