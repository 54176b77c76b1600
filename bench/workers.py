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
import math
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import multiprocessing.synchronize
import os
import queue
import resource
import signal
import ssl
import statistics
import time
import traceback
from array import array
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import procstat
import wire
from clients import (
    SUBSCRIBER_LOW_WATER,
    TOPIC_FILTER,
    Client,
    Endpoint,
    IdleClient,
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
"""Seconds between two rounds of the paced publishers (latency and paced runs)."""

PACED_CONNECT_CONCURRENCY = 32
"""Handshakes at once per paced worker while its devices connect."""
IDLE_CONNECT_CONCURRENCY = 64
"""Handshakes at once per idle worker."""
IDLE_GIVE_UP_AFTER = 200
"""An idle worker stops opening connections after this many have failed: a broker that
refuses connections (out of file descriptors, say) would otherwise cost a connect timeout
for every one of them."""

READY_TIMEOUT = 60.0
RESULT_TIMEOUT = 15.0
_COUNTER_TICK = 0.01
_POLL = 0.5
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
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # inherited; make sure of it
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
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
    topics: tuple[str, ...] | None = None
    """The topic of each client (``None``: ``bench/<client id>`` for all)."""


async def publisher_job(control: Control, endpoint: Endpoint, spec: PublisherSpec) -> None:
    ctx = client_ssl_context(endpoint.tls)
    topics = spec.topics or tuple(f"bench/{cid}" for cid in spec.client_ids)
    conns: list[Publisher] = await open_many(  # type: ignore[assignment]
        endpoint,
        ctx,
        [
            lambda cid=cid, topic=topic: Publisher(  # type: ignore[misc]
                wire.encode_connect(cid), topic, spec.qos, spec.payload_size
            )
            for cid, topic in zip(spec.client_ids, topics, strict=True)
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

        def count_and_tick() -> None:
            publish_counts()
            for c in conns:
                c.tick()

        for c in conns:
            c.start_flood_qos1()
        await control.wait_stop(count_and_tick)
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


@dataclass(frozen=True, slots=True)
class PacedSpec:
    """The devices of one paced worker: each sends ``rate_each`` msg/s on its own connection.

    ``phases`` (seconds, each below ``1 / rate_each``) stagger the devices over one period;
    the parent spreads them evenly over all workers' devices, so the load is smooth.
    """

    client_ids: tuple[str, ...]
    phases: tuple[float, ...]
    rate_each: float
    payload_size: int = 64


async def paced_job(
    control: Control,
    endpoint: Endpoint,
    spec: PacedSpec,
    disconnect: multiprocessing.synchronize.Event,
) -> None:
    """Many slow devices: every one sends one QoS 0 PUBLISH per write at its own pace.

    On the stop flag the devices stop sending and the worker reports ``stopped``; they
    stay connected until ``disconnect`` is set, so that the parent can read the broker's
    CPU after the last delivery without the disconnects in it.
    """
    ctx = client_ssl_context(endpoint.tls)
    began = time.monotonic()
    conns: list[Publisher] = await open_many(  # type: ignore[assignment]
        endpoint,
        ctx,
        [
            lambda cid=cid: Publisher(  # type: ignore[misc]
                wire.encode_connect(cid), f"bench/{cid}", 0, spec.payload_size
            )
            for cid in spec.client_ids
        ],
        concurrency=PACED_CONNECT_CONCURRENCY,
    )
    control.report(
        "ready",
        {
            "tls": conns[0].tls_version(),
            "pid": os.getpid(),
            "connect_seconds": time.monotonic() - began,
        },
    )
    await control.wait_go()
    await pace_devices(conns, spec, control)
    result = {"sent": sum(c.sent for c in conns), "lost": sum(c.lost for c in conns)}
    control.report("stopped", result)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, disconnect.wait, max(0.0, control.deadline - time.monotonic()))
    result["lost"] = sum(c.lost for c in conns)
    for c in conns:
        c.close()
    control.report("result", result)


async def pace_devices(conns: list[Publisher], spec: PacedSpec, control: Control) -> None:
    """One timer loop for all of this worker's devices, ticking every ``PACE_TICK``.

    Device ``k`` sends its ``n``-th message at ``start + phases[k] + n / rate_each``.
    With the devices sorted by phase those times only grow along the sequence
    (n = 0: every device in phase order, then n = 1, ...), so each tick walks the sequence
    up to now: no per-device task or timer. ``start`` is the same instant in every
    worker (a multiple of the period on the system-wide monotonic clock), so the phases
    the parent chose interleave the workers' devices too.
    """
    period = 1.0 / spec.rate_each
    order = sorted(range(len(conns)), key=lambda k: spec.phases[k])
    devices = [conns[k] for k in order]
    phases = [spec.phases[k] for k in order]
    n = len(devices)
    padding = bytes(max(0, spec.payload_size - 8))
    start = math.ceil(time.monotonic() / period) * period
    step = 0  # index into the sequence: round step // n, device step % n
    while control.running():
        now = time.monotonic()
        while True:
            round_, k = divmod(step, n)
            if start + round_ * period + phases[k] > now:
                break
            devices[k].send_one(time.monotonic_ns().to_bytes(8, "big") + padding)
            step += 1
        control.counters[control.slot] = step
        await asyncio.sleep(PACE_TICK)
    control.counters[control.slot] = sum(c.sent for c in conns)


async def subscriber_job(
    control: Control,
    endpoint: Endpoint,
    client_id: str,
    qos: int,
    record_latency: bool,
    topic_filter: str = TOPIC_FILTER,
    batched: bool = False,
) -> None:
    """One subscriber on ``topic_filter``. ``batched`` (throughput runs only): read in
    batches of ``SUBSCRIBER_LOW_WATER[qos]`` bytes, so that it is not woken per message."""
    ctx = client_ssl_context(endpoint.tls)
    sub: Subscriber = await open_client(  # type: ignore[assignment]
        endpoint,
        ctx,
        lambda: Subscriber(
            wire.encode_connect(client_id),
            wire.encode_subscribe(1, topic_filter, qos),
            control.counters,
            control.slot,
            record_latency=record_latency,
        ),
    )
    if batched:
        sub.read_in_batches(SUBSCRIBER_LOW_WATER[qos])
    control.report("ready", {"tls": sub.tls_version(), "pid": os.getpid()})
    await control.wait_go()
    await control.wait_stop(sub.tick)
    result: dict[str, Any] = {"received": sub.received, "lost": int(sub.lost)}
    sub.close()
    if record_latency:
        result["stamps"] = sub.stamps.tobytes()
        result["latencies"] = sub.latencies.tobytes()
    control.report("result", result)


async def idle_job(
    control: Control,
    endpoint: Endpoint | tuple[Endpoint, ...],
    prefix: str,
    sources: tuple[str, ...],
    commands: multiprocessing.queues.Queue[tuple[str, int]],
) -> None:
    """Idle connections, on command: ``("open", n)`` opens ``n`` more (reports
    ``opened``), ``("check", every)`` counts the connections the broker closed and pings
    every ``every``-th of the others (reports ``checked``), ``("close", 0)`` ends.

    Connection ``k`` is bound to ``sources[k % len(sources)]`` (none if empty) and, given
    several endpoints (a cluster's nodes, which share one CA and device certificate),
    goes to ``endpoint[k % len(endpoint)]``. Opening stops early when the parent raises
    the stop flag or after ``IDLE_GIVE_UP_AFTER`` failures.
    """
    endpoints = endpoint if isinstance(endpoint, tuple) else (endpoint,)
    ctx = client_ssl_context(endpoints[0].tls)
    loop = asyncio.get_running_loop()
    conns: list[IdleClient] = []
    attempted = 0
    failed = 0
    skipped = 0
    first_failure: str | None = None
    control.report("ready", {"pid": os.getpid()})
    while True:
        timeout = max(0.0, control.deadline - time.monotonic())
        try:
            command, count = await loop.run_in_executor(None, commands.get, True, timeout)
        except queue.Empty:
            break
        if command == "open":
            results = await _open_idle(
                endpoints, ctx, prefix, control, sources, attempted, count, failed
            )
            attempted += count
            failures = [r for r in results if isinstance(r, BaseException)]
            failed += len(failures)
            skipped += sum(r is None for r in results)
            if failures and first_failure is None:
                first_failure = repr(failures[0])
            conns.extend(r for r in results if isinstance(r, IdleClient))
            control.report(
                "opened",
                {
                    "open": sum(not c.lost for c in conns),
                    "failed": failed,
                    "skipped": skipped,
                    "first_failure": first_failure,
                },
            )
        elif command == "check":
            control.report("checked", await _check_idle(conns, count))
        else:
            break
    for c in conns:
        c.close()
    control.report("result", {"open": len(conns)})


async def _open_idle(
    endpoints: tuple[Endpoint, ...],
    ctx: ssl.SSLContext | None,
    prefix: str,
    control: Control,
    sources: tuple[str, ...],
    start: int,
    count: int,
    failed_before: int,
) -> list[IdleClient | BaseException | None]:
    """Open ``count`` idle clients; ``None`` for each one not attempted (gave up)."""
    limit = asyncio.Semaphore(IDLE_CONNECT_CONCURRENCY)
    failed = failed_before

    async def one(index: int) -> IdleClient | None:
        nonlocal failed
        async with limit:
            if failed >= IDLE_GIVE_UP_AFTER or not control.running():
                return None
            connect = wire.encode_connect(f"{prefix}-{control.slot}-{index}", keep_alive=600)
            source = sources[index % len(sources)] if sources else None
            endpoint = endpoints[index % len(endpoints)]
            try:
                client = await open_client(endpoint, ctx, lambda: IdleClient(connect), source)
            except BaseException:
                failed += 1
                raise
            return client  # type: ignore[return-value]

    indices = range(start, start + count)
    return list(await asyncio.gather(*(one(i) for i in indices), return_exceptions=True))


async def _check_idle(conns: list[IdleClient], every: int) -> dict[str, Any]:
    """How many of ``conns`` the broker closed, and a PINGREQ/PINGRESP on every
    ``every``-th of the rest (at least one)."""
    alive = [c for c in conns if not c.lost]
    sample = alive[:: max(1, every)] if alive else []
    answers = await asyncio.gather(*(c.ping() for c in sample), return_exceptions=True)
    failures = [a for a in answers if isinstance(a, BaseException)]
    return {
        "open": sum(not c.lost for c in conns),
        "lost": sum(c.lost for c in conns),
        "pings_sent": len(sample),
        "pings_answered": len(sample) - len(failures),
        "first_ping_failure": repr(failures[0]) if failures else None,
    }


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
    slot_cpu: tuple[float, ...]
    """CPU seconds of each worker slot's process."""
    broker: procstat.ProcSample | None
    machine_busy: float
    parts: tuple[procstat.ProcSample, ...] = ()
    """CPU and RSS of each of :func:`measure`'s ``parts`` (a cluster's nodes, NATS)."""


def new_queue() -> multiprocessing.queues.Queue[Any]:
    """A queue that can be handed to a worker when it is spawned."""
    return _SPAWN.Queue()


def new_event() -> multiprocessing.synchronize.Event:
    """An event that can be handed to a worker when it is spawned."""
    return _SPAWN.Event()


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

    def wait_for(
        self,
        kind: str,
        slots: Sequence[int],
        timeout: float,
        poll: Callable[[], None] | None = None,
    ) -> dict[int, Any]:
        """Collect one ``kind`` report from each of ``slots``.

        ``poll``, if given, is called about every ``_POLL`` seconds while waiting (to
        sample memory, say); it may raise to give up.

        :raises LoadError: on a worker's error report, or when the time runs out.
        """
        deadline = time.monotonic() + timeout
        got: dict[int, Any] = {}
        while len(got) < len(slots):
            if poll is not None:
                poll()
            remaining = deadline - time.monotonic()
            wait = min(remaining, _POLL) if poll is not None else remaining
            try:
                report_kind, slot, payload = self.reports.get(timeout=max(0.01, wait))
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

    def snapshot(
        self, broker_tree: list[int] | None, parts: Sequence[list[int]] = ()
    ) -> Snapshot:
        return Snapshot(
            time.monotonic(),
            time.monotonic_ns(),
            tuple(self.counters),
            procstat.sample_pids(self.pids),
            tuple(procstat.cpu_seconds([p.pid]) if p.pid else 0.0 for p in self._procs),
            procstat.sample_pids(broker_tree) if broker_tree else None,
            procstat.machine_busy_seconds(),
            tuple(procstat.sample_pids(part) for part in parts),
        )

    def halt(self, slots: Sequence[int]) -> None:
        """Raise the stop flag of ``slots`` without waiting for anything."""
        for slot in slots:
            self._stops[slot].value = 1

    def stop(self, slots: Sequence[int]) -> dict[int, Any]:
        """Stop ``slots`` and return their results."""
        self.halt(slots)
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
    names: tuple[str, ...] = ()
    """The names of :func:`measure`'s ``parts``."""

    @property
    def seconds(self) -> float:
        return self.last.at - self.first.at

    def rate(self, slots: Sequence[int]) -> float:
        counted = sum(self.last.counts[s] - self.first.counts[s] for s in slots)
        return counted / self.seconds

    @property
    def generator_cores(self) -> float:
        return (self.last.generator.cpu_seconds - self.first.generator.cpu_seconds) / self.seconds

    def cores(self, slots: Sequence[int]) -> float:
        """CPU used by the processes of ``slots`` (1.0 = one core busy)."""
        used = sum(self.last.slot_cpu[s] - self.first.slot_cpu[s] for s in slots)
        return used / self.seconds

    @property
    def broker_cores(self) -> float | None:
        if self.first.broker is None or self.last.broker is None:
            return None
        return (self.last.broker.cpu_seconds - self.first.broker.cpu_seconds) / self.seconds

    def part_cores(self) -> dict[str, float]:
        """CPU used by each of :func:`measure`'s ``parts``, by name."""
        return {
            name: (b.cpu_seconds - a.cpu_seconds) / self.seconds
            for name, a, b in zip(self.names, self.first.parts, self.last.parts, strict=True)
        }

    @property
    def idle_cores(self) -> float:
        """Cores nobody used in the window (the machine's idle and I/O-wait time)."""
        busy = (self.last.machine_busy - self.first.machine_busy) / self.seconds
        return max(0.0, (os.cpu_count() or 1) - busy)

    @property
    def other_cores(self) -> float:
        """CPU used by everything else on the machine: other work disturbing the run."""
        busy = (self.last.machine_busy - self.first.machine_busy) / self.seconds
        return max(0.0, busy - self.generator_cores - (self.broker_cores or 0.0))


def measure(
    group: WorkerGroup,
    warmup: float,
    duration: float,
    broker_pid: int | Sequence[int] | None,
    parts: Mapping[str, int | Sequence[int]] | None = None,
) -> Window:
    """Release the workers, skip ``warmup`` seconds, then measure ``duration`` seconds.

    ``broker_pid`` is the broker's process, or a cluster's processes together (their
    trees are summed); ``parts`` are pids (or groups of them) whose CPU and RSS the window
    also keeps one by one (``Window.part_cores``): each node of a cluster, say.
    """
    tree = procstat.trees(broker_pid)
    parts = parts or {}
    part_trees = [procstat.trees(p) or [] for p in parts.values()]
    group.go.set()
    time.sleep(warmup)
    first = group.snapshot(tree, part_trees)
    peak = first.broker.rss_bytes if first.broker else None
    end = first.at + duration
    while (now := time.monotonic()) < end:
        time.sleep(min(0.1, end - now))
        if tree is not None:
            peak = max(peak or 0, procstat.rss_bytes(tree))
    return Window(first, group.snapshot(tree, part_trees), peak, tuple(parts))
