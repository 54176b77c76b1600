"""MQTT load generator: the benchmark's scenarios, one function and one result each.

Layers, bottom up: ``wire`` hand-encodes the few MQTT 3.1.1 packets and frames received
bytes; ``clients`` holds the asyncio protocols (publisher, subscriber, idle client, and
the do-nothing server of the ceiling runs); ``workers`` spawns processes full of those
clients and measures them over a window; this module composes them into scenarios:

* :func:`fan_in` - publishers flood ``bench/<client id>``, one subscriber on ``bench/#``
  counts deliveries (QoS 0: batched writes; QoS 1: ``MAX_INFLIGHT`` outstanding). With
  several subscribers, each in its own process, subscriber ``k`` takes ``bench/<k>/#``
  and the publishers are spread over them. Subscribers (and QoS 1 publishers reading
  PUBACKs) read in batches, so the broker is not charged for waking them per message.
* :func:`latency` - a fixed offered load; each payload starts with the sender's
  ``CLOCK_MONOTONIC`` nanoseconds (system-wide on Linux, so comparable across
  processes), stamped when the message is generated: time spent waiting for an in-flight
  slot counts as latency, as it would for a device.
* :func:`paced` - many slow mutual-TLS devices (one message per write each, staggered
  so the total is smooth); the figure is broker CPU per delivered message when the
  broker sees about one message per read.
* :func:`idle_memory` - broker RSS growth per idle connection, and whether the broker
  still holds (and answers) every connection after a hold of some seconds.
* :func:`connect_rate` - full TLS handshakes + CONNECT/CONNACK + DISCONNECT per second.
* :func:`ceiling` - the generator against a server that does nothing, to show that the
  generator is not what limits the figures above.

Every scenario raises :class:`LoadError` when a client cannot connect or subscribe or a
worker fails; the message says which and why.
"""

from __future__ import annotations

import multiprocessing.queues
import os
import resource
import statistics
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import procstat
from clients import CONNECT_TIMEOUT, PING_TIMEOUT, TOPIC_FILTER, Endpoint, LoadError, TlsFiles
from workers import (
    READY_TIMEOUT,
    RESULT_TIMEOUT,
    PacedSpec,
    PublisherSpec,
    WorkerGroup,
    connect_job,
    idle_job,
    measure,
    new_event,
    new_queue,
    paced_job,
    publisher_job,
    sink_job,
    subscriber_job,
)

__all__ = [
    "FD_MARGIN",
    "CeilingFigure",
    "ConnectRateResult",
    "Endpoint",
    "FanInResult",
    "IdleResult",
    "LatencyResult",
    "LoadError",
    "PacedResult",
    "TlsFiles",
    "ceiling",
    "connect_rate",
    "fan_in",
    "idle_memory",
    "latency",
    "paced",
    "raise_fd_limit",
]

IDLE_PER_PROCESS = 25_000
"""Idle connections per generator process by default (each costs the client ~10-20 KB)."""
IDLE_PER_SOURCE = 25_000
"""Idle connections per source address: loopback has ~28k ephemeral ports for each
(source address, broker address, broker port), so 100,000 connections to one broker
port come from 127.0.0.2, 127.0.0.3, ... (all of 127/8 is loopback on Linux)."""
MEMORY_FLOOR = 1 << 30
"""Idle connections stop opening when the machine has less memory available than this:
better a partial figure than the OOM killer picking a process."""


def raise_fd_limit(wanted: int = 0) -> int:
    """Raise this process's RLIMIT_NOFILE to at least its hard limit; returns the new limit.

    When ``wanted`` is above the hard limit, the hard limit is raised too (up to
    /proc/sys/fs/nr_open), which takes CAP_SYS_RESOURCE (root in a container may not have
    it: see ``CapEff`` in /proc/self/status); without it the soft limit stops at the hard
    one. Child processes (workers, and the brokers the bench starts) inherit the limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard:
        try:
            with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
                wanted = min(wanted, int(f.read()))
        except (OSError, ValueError):
            pass
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass  # not privileged: the hard limit is as far as it goes
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


FD_MARGIN = 64
"""File descriptors a process needs besides its connections (listeners, logs, pipes)."""


def _check_fd_limit(broker_pid: int | None, connections: int) -> int | None:
    """The broker's open-files limit; :raises LoadError: if it cannot hold ``connections``."""
    limit = procstat.fd_limit(broker_pid) if broker_pid is not None else None
    if limit is not None and connections + FD_MARGIN > limit:
        own = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        why = (
            f"the bench could not raise its hard limit above {own} (that takes "
            "CAP_SYS_RESOURCE, which this process lacks)"
            if limit >= own
            else "the bench raises the limit only for the brokers it starts"
        )
        raise LoadError(
            f"the broker's open-files limit (RLIMIT_NOFILE) is {limit}, too low for "
            f"{connections} connections in one process: {why}"
        )
    return limit


def _client_prefix(label: str) -> str:
    return f"bench-{label}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"


def _split(items: Sequence[str], parts: int) -> list[tuple[str, ...]]:
    return [tuple(items[k::parts]) for k in range(parts) if items[k::parts]]


# ---------------------------------------------------------------- scenario runners


@dataclass(frozen=True, slots=True)
class FanInResult:
    delivered_per_s: float
    accepted_per_s: float
    """Messages the publishers wrote (QoS 0) per second, over the same window."""
    sent: int
    delivered: int
    acked: int
    loss: float
    subscribers: int
    """Subscriber connections, each in its own process."""
    generator_cores: float
    publisher_cores: float
    subscriber_cores: float
    """The generator's CPU split by role (publisher and subscriber processes)."""
    idle_cores: float
    """Cores nobody used in the window: above ~0.15, the machine was not full, so a
    broker below one core was held back by something other than CPU."""
    broker_cores: float | None
    broker_us_per_msg: float | None
    broker_peak_rss: int | None
    connections_lost: int
    """Load connections the broker closed during the run (should be 0)."""
    other_cores: float
    """CPU used by other processes on the machine meanwhile (should be near 0)."""
    tls: str
    part_cores: dict[str, float] = field(default_factory=dict)
    """CPU of each of ``parts`` (a cluster's nodes, NATS), by name."""


def fan_in(
    endpoint: Endpoint,
    *,
    qos: int,
    publishers: int,
    processes: int,
    warmup: float,
    duration: float,
    broker_pid: int | Sequence[int] | None,
    subscribers: int = 1,
    payload_size: int = 64,
    batch: int = 64,
    subscriber_endpoint: Endpoint | None = None,
    parts: Mapping[str, int | Sequence[int]] | None = None,
) -> FanInResult:
    """``publishers`` connections flood ``bench/<id>``; one subscriber on ``bench/#`` counts.

    With ``subscribers`` > 1, subscriber ``k`` (its own process) takes ``bench/<k>/#`` and
    publisher ``i`` publishes to ``bench/<i % subscribers>/<id>``: the same fan-in, with
    the decrypting of the broker's deliveries spread over several processes.

    ``subscriber_endpoint`` (default ``endpoint``) is where the subscribers connect: another
    node of a cluster than the publishers'. ``broker_pid`` may list several processes (a
    cluster's), whose CPU is summed; ``parts`` are also measured one by one.

    :raises LoadError: if a client cannot connect or subscribe, or a worker fails.
    """
    prefix = _client_prefix(f"q{qos}")
    ids = [f"{prefix}-p{k}" for k in range(publishers)]
    subscribers = max(1, min(subscribers, publishers))
    if subscribers == 1:
        topics = {cid: f"bench/{cid}" for cid in ids}
        filters = [(f"{prefix}-sub", TOPIC_FILTER)]
    else:
        topics = {cid: f"bench/{k % subscribers}/{cid}" for k, cid in enumerate(ids)}
        filters = [(f"{prefix}-sub{k}", f"bench/{k}/#") for k in range(subscribers)]
    with WorkerGroup(hard_seconds=warmup + duration + 90) as group:
        subs = [
            group.add(
                subscriber_job, subscriber_endpoint or endpoint, cid, qos, False, topic_filter, True
            )
            for cid, topic_filter in filters
        ]
        pubs = [
            group.add(
                publisher_job,
                endpoint,
                PublisherSpec(
                    chunk, qos, payload_size, batch, topics=tuple(topics[c] for c in chunk)
                ),
            )
            for chunk in _split(ids, processes)
        ]
        group.start()
        window = measure(group, warmup, duration, broker_pid, parts)
        results = group.stop(pubs)
        sent = sum(int(r["sent"]) for r in results.values())
        acked = sum(int(r["acked"]) for r in results.values())
        _wait_for_drain(group, subs, sent if qos == 0 else acked)
        sub_results = group.stop(subs)
        delivered = sum(int(r["received"]) for r in sub_results.values())
        lost = sum(int(r["lost"]) for r in [*results.values(), *sub_results.values()])
    delivered_rate = window.rate(subs)
    broker = window.broker_cores
    return FanInResult(
        delivered_per_s=delivered_rate,
        accepted_per_s=window.rate(pubs),
        sent=sent,
        delivered=delivered,
        acked=acked,
        loss=1 - delivered / sent if sent else 0.0,
        subscribers=subscribers,
        generator_cores=window.generator_cores,
        publisher_cores=window.cores(pubs),
        subscriber_cores=window.cores(subs),
        idle_cores=window.idle_cores,
        broker_cores=broker,
        broker_us_per_msg=broker / delivered_rate * 1e6 if broker and delivered_rate else None,
        broker_peak_rss=window.broker_peak_rss,
        connections_lost=lost,
        other_cores=window.other_cores,
        tls=str(group.ready[subs[0]]["tls"]),
        part_cores=window.part_cores(),
    )


def _wait_for_drain(
    group: WorkerGroup, slots: Sequence[int], expected: int, quiet: float = 0.5
) -> None:
    """Let the subscribers catch up: until they counted ``expected`` together, went
    ``quiet`` s without a message, or 60 s passed. A broker that slows publishers down by
    not reading them leaves its backlog in the kernel's socket buffers (megabytes per
    connection on loopback), which arrives after the window; it is late, not lost, while
    it keeps coming."""

    def counted() -> float:
        return float(sum(group.counters[s] for s in slots))

    deadline = time.monotonic() + 60
    last, last_change = counted(), time.monotonic()
    while (now := time.monotonic()) < deadline and (count := counted()) < expected:
        if count != last:
            last, last_change = count, now
        elif now - last_change > quiet:
            return
        time.sleep(0.02)


def _wait_for_quiet(
    broker_pid: int | None, cores: float = 0.05, step: float = 0.25, limit: float = 20.0
) -> float:
    """Wait until the broker uses under ``cores`` over ``step`` s (or ``limit`` s passed),
    so that work left from connecting clients is not charged to the messages measured
    next. Returns the seconds waited."""
    if broker_pid is None:
        return 0.0
    tree = procstat.descendants(broker_pid)
    began = time.monotonic()
    last = procstat.cpu_seconds(tree)
    while time.monotonic() - began < limit:
        time.sleep(step)
        now = procstat.cpu_seconds(tree)
        if now - last < cores * step:
            break
        last = now
    return time.monotonic() - began


@dataclass(frozen=True, slots=True)
class LatencyResult:
    offered_per_s: float
    generated_per_s: float
    delivered_per_s: float
    samples: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    generator_cores: float
    broker_cores: float | None
    other_cores: float
    part_cores: dict[str, float] = field(default_factory=dict)
    """CPU of each of ``parts`` (a cluster's nodes, NATS), by name."""


def latency(
    endpoint: Endpoint,
    *,
    rate: float,
    qos: int,
    publishers: int,
    processes: int,
    warmup: float,
    duration: float,
    broker_pid: int | Sequence[int] | None,
    payload_size: int = 64,
    parts: Mapping[str, int | Sequence[int]] | None = None,
    subscriber_endpoint: Endpoint | None = None,
) -> LatencyResult:
    """Offer ``rate`` msg/s in total and report publish→deliver latency percentiles.

    Only messages generated inside the measured window count. ``subscriber_endpoint``,
    ``broker_pid`` and ``parts`` as for :func:`fan_in`.

    :raises LoadError: if a client cannot connect or subscribe, or a worker fails.
    """
    prefix = _client_prefix("lat")
    ids = [f"{prefix}-p{k}" for k in range(publishers)]
    chunks = _split(ids, processes)
    with WorkerGroup(hard_seconds=warmup + duration + 90) as group:
        sub = group.add(subscriber_job, subscriber_endpoint or endpoint, f"{prefix}-sub", qos, True)
        pubs = [
            group.add(
                publisher_job,
                endpoint,
                PublisherSpec(chunk, qos, payload_size, rate=rate * len(chunk) / publishers),
            )
            for chunk in chunks
        ]
        group.start()
        window = measure(group, warmup, duration, broker_pid, parts)
        group.stop(pubs)
        _wait_for_drain(group, [sub], expected=2**62, quiet=0.3)
        result = group.stop([sub])[sub]
    stamps = array("q")
    stamps.frombytes(result["stamps"])
    lat = array("q")
    lat.frombytes(result["latencies"])
    inside = sorted(
        lat[k] for k in range(len(stamps)) if window.first.at_ns <= stamps[k] < window.last.at_ns
    )

    def pct(q: float) -> float | None:
        if not inside:
            return None
        return inside[min(len(inside) - 1, int(q * len(inside)))] / 1e6

    return LatencyResult(
        offered_per_s=rate,
        generated_per_s=window.rate(pubs),
        delivered_per_s=window.rate([sub]),
        samples=len(inside),
        p50_ms=pct(0.50),
        p90_ms=pct(0.90),
        p99_ms=pct(0.99),
        p999_ms=pct(0.999),
        max_ms=inside[-1] / 1e6 if inside else None,
        generator_cores=window.generator_cores,
        broker_cores=window.broker_cores,
        other_cores=window.other_cores,
        part_cores=window.part_cores(),
    )


@dataclass(frozen=True, slots=True)
class PacedResult:
    devices: int
    offered_per_s: float
    sent_per_s: float
    """Messages the devices wrote per second in the window (should equal the offer)."""
    delivered_per_s: float
    sent: int
    delivered: int
    loss: float
    broker_cores: float | None
    broker_us_per_msg: float | None
    """Broker CPU seconds in the window ÷ messages delivered in it, in µs."""
    broker_us_per_msg_whole_run: float | None
    """Broker CPU from the devices' start until the subscriber got the last message ÷
    every message delivered (warm-up included, disconnects not): unlike the window's
    figure, not skewed when the broker falls behind (or catches up) during the window."""
    broker_peak_rss: int | None
    generator_cores: float
    generator_us_per_msg: float | None
    """Generator CPU per message sent (devices and subscriber together)."""
    connections_lost: int
    connect_seconds: float
    """Seconds from spawning the workers until every device was connected."""
    settle_seconds: float
    """Seconds the broker then took to go quiet (work left over from the connects),
    waited out before the devices start sending."""
    other_cores: float
    tls: str


def paced(
    endpoint: Endpoint,
    *,
    devices: int,
    rate: float,
    processes: int,
    warmup: float,
    duration: float,
    broker_pid: int | None,
    payload_size: int = 64,
) -> PacedResult:
    """``devices`` connections each publish ``rate / devices`` msg/s of QoS 0 to
    ``bench/<id>``, one packet per write; one subscriber on ``bench/#`` counts.

    Device ``k`` (of all workers' devices) sends at phase ``k / devices`` of the period,
    so sends are spread evenly in time and the broker gets about one message per read.
    The warm-up lasts at least ten periods, so that each device's first publish (which
    may cost the broker more: a first authorization, say) stays out of the window.

    :raises LoadError: if a client cannot connect or subscribe, or a worker fails.
    """
    _check_fd_limit(broker_pid, devices)
    prefix = _client_prefix("paced")
    rate_each = rate / devices
    period = 1.0 / rate_each
    ids = [f"{prefix}-d{k}" for k in range(devices)]
    phases = [k / devices * period for k in range(devices)]
    parts = max(1, min(processes, devices))
    warmup = max(warmup, 10 * period)
    disconnect = new_event()
    with WorkerGroup(hard_seconds=warmup + duration + devices / 20 + 120) as group:
        sub = group.add(subscriber_job, endpoint, f"{prefix}-sub", 0, False)
        pubs = [
            group.add(
                paced_job,
                endpoint,
                PacedSpec(tuple(ids[p::parts]), tuple(phases[p::parts]), rate_each, payload_size),
                disconnect,
            )
            for p in range(parts)
        ]
        began = time.monotonic()
        group.start(ready_timeout=max(READY_TIMEOUT, devices / 20))
        connect_seconds = time.monotonic() - began
        settle_seconds = _wait_for_quiet(broker_pid)
        tree = procstat.descendants(broker_pid) if broker_pid is not None else []
        cpu_at_go = procstat.cpu_seconds(tree)
        window = measure(group, warmup, duration, broker_pid)
        group.halt(pubs)
        stopped = group.wait_for("stopped", pubs, RESULT_TIMEOUT)
        sent = sum(int(r["sent"]) for r in stopped.values())
        _wait_for_drain(group, [sub], sent)
        cpu_whole_run = procstat.cpu_seconds(tree) - cpu_at_go
        disconnect.set()
        results = group.wait_for("result", pubs, RESULT_TIMEOUT)
        sub_result = group.stop([sub])[sub]
        delivered = int(sub_result["received"])
        lost = sum(int(r["lost"]) for r in results.values()) + int(sub_result["lost"])
    delivered_rate = window.rate([sub])
    sent_rate = window.rate(pubs)
    broker = window.broker_cores
    generator = window.generator_cores
    return PacedResult(
        devices=devices,
        offered_per_s=rate,
        sent_per_s=sent_rate,
        delivered_per_s=delivered_rate,
        sent=sent,
        delivered=delivered,
        loss=1 - delivered / sent if sent else 0.0,
        broker_cores=broker,
        broker_us_per_msg=broker / delivered_rate * 1e6 if broker and delivered_rate else None,
        broker_us_per_msg_whole_run=(
            cpu_whole_run / delivered * 1e6 if broker_pid is not None and delivered else None
        ),
        broker_peak_rss=window.broker_peak_rss,
        generator_cores=generator,
        generator_us_per_msg=generator / sent_rate * 1e6 if sent_rate else None,
        connections_lost=lost,
        connect_seconds=connect_seconds,
        settle_seconds=settle_seconds,
        other_cores=window.other_cores,
        tls=str(group.ready[sub]["tls"]),
    )


@dataclass(frozen=True, slots=True)
class IdleResult:
    connections: int
    """Connections asked for."""
    measured_connections: int
    failed: int
    """Connections that could not be opened (see ``first_failure``)."""
    skipped: int
    """Connections not even tried: opening stopped early (see ``stopped``)."""
    rss_before: int
    rss_after: int
    bytes_per_connection: float
    first_failure: str | None
    open_seconds: float
    """Seconds to open the connections after the baseline reading (all but the first tenth)."""
    opens_per_s: float
    hold_seconds: float
    connections_held: int
    """Connections still open at the end of the hold (the broker closed none of them)."""
    connections_lost: int
    """Connections the broker closed between opening and the end of the hold."""
    pings_sent: int
    pings_answered: int
    """PINGREQs (on every ``ping_every``-th open connection) answered with a PINGRESP."""
    first_ping_failure: str | None
    rss_after_hold: int
    broker_peak_rss: int
    broker_fd_limit: int | None
    generator_processes: int
    generator_bytes_per_connection: float
    source_addresses: int
    mem_available_min: int
    """The least memory the machine had available during the run, in bytes."""
    stopped: str | None
    """Why opening stopped before every connection was tried, if it did."""
    nodes: int = 1
    """Broker processes the connections were spread over (a cluster's nodes)."""
    close_seconds: float | None = None
    """Seconds the workers took to close every connection at the end; ``None`` if they
    had not within ``RESULT_TIMEOUT`` + 1 ms per connection (not a failure)."""
    part_rss_before: dict[str, int] = field(default_factory=dict)
    part_rss_after_hold: dict[str, int] = field(default_factory=dict)
    """RSS of each of ``parts`` (each node, NATS) at the baseline and after the hold."""


def idle_sources(connections: int) -> tuple[str, ...]:
    """The loopback source addresses for ``connections`` idle clients: 127.0.0.2 onwards,
    at most ``IDLE_PER_SOURCE`` connections each (127.0.0.1 stays free for the rest)."""
    return tuple(f"127.0.0.{2 + k}" for k in range(max(1, -(-connections // IDLE_PER_SOURCE))))


def idle_memory(
    endpoint: Endpoint | Sequence[Endpoint],
    *,
    connections: int,
    broker_pid: int | Sequence[int],
    hold: float = 0.0,
    processes: int | None = None,
    settle: float = 1.0,
    ping_every: int = 100,
    parts: Mapping[str, int | Sequence[int]] | None = None,
) -> IdleResult:
    """Broker RSS growth per idle connection (CONNECT, keep-alive 600 s, then nothing),
    and whether the broker still holds them all after ``hold`` seconds.

    A first tenth of the connections (at most 50) is opened before the baseline reading,
    so one-time costs (first handshake, lazily built tables) are not charged per
    connection; the rest is opened after it, by ``processes`` workers (default: one per
    ``IDLE_PER_PROCESS`` connections, or fewer connections each if the open-files limit
    is lower) from ``idle_sources(connections)``. After the
    hold every worker counts the connections the broker closed and pings every
    ``ping_every``-th of the others.

    Opening stops early (and ``stopped`` says why) when the machine runs short of memory
    or a worker has had ``workers.IDLE_GIVE_UP_AFTER`` failures.

    Given several endpoints (a cluster's nodes) and their pids, connection ``k`` of each
    worker goes to endpoint ``k mod n``, the figure is the growth of the nodes' RSS
    together, and each node's open-files limit must hold its share. ``parts`` (each node,
    NATS) have their RSS kept one by one.

    :raises LoadError: if a worker fails, or the broker's open-files limit is too low.
    """
    endpoints = (endpoint,) if isinstance(endpoint, Endpoint) else tuple(endpoint)
    pids = [broker_pid] if isinstance(broker_pid, int) else list(broker_pid)
    share = -(-connections // len(endpoints))
    limits = [_check_fd_limit(pid, share) for pid in pids]
    fd_limit = min((x for x in limits if x is not None), default=None)
    own_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    per_process = max(1, min(IDLE_PER_PROCESS, own_limit - FD_MARGIN))
    procs = max(processes or 1, -(-connections // per_process))
    procs = min(procs, connections)
    sources = idle_sources(connections)
    warm = min(50, max(1, connections // 10))
    rest = connections - warm
    shares = [rest // procs + (k < rest % procs) for k in range(procs)]
    commands: list[multiprocessing.queues.Queue[tuple[str, int]]] = [
        new_queue() for _ in range(procs)
    ]
    open_timeout = connections / 20 + 60
    with WorkerGroup(hard_seconds=open_timeout + hold + 180) as group:
        target = endpoints[0] if len(endpoints) == 1 else endpoints
        slots = [
            group.add(idle_job, target, _client_prefix("idle"), sources, q) for q in commands
        ]
        group.start()
        tree = procstat.trees(pids) or []
        part_trees = {name: procstat.trees(p) or [] for name, p in (parts or {}).items()}
        peak = 0
        mem_min = procstat.mem_available_bytes()
        stopped: str | None = None

        def sample() -> None:
            nonlocal peak, mem_min, stopped
            peak = max(peak, procstat.rss_bytes(tree))
            mem_min = min(mem_min, procstat.mem_available_bytes())
            if mem_min < MEMORY_FLOOR and stopped is None:
                stopped = f"the machine had only {mem_min >> 20} MiB of memory left"
                group.halt(slots)

        commands[0].put(("open", warm))
        group.wait_for("opened", [slots[0]], READY_TIMEOUT, sample)
        time.sleep(settle)
        before = procstat.rss_bytes(tree)
        parts_before = {name: procstat.rss_bytes(t) for name, t in part_trees.items()}
        began = time.monotonic()
        for q, share in zip(commands, shares, strict=True):
            q.put(("open", share))
        opened = group.wait_for("opened", slots, open_timeout, sample)
        open_seconds = time.monotonic() - began
        time.sleep(settle)
        sample()
        after = procstat.rss_bytes(tree)
        generator_rss = procstat.rss_bytes(group.pids)
        hold_end = time.monotonic() + hold
        while (now := time.monotonic()) < hold_end:
            time.sleep(min(0.5, hold_end - now))
            sample()
        for q in commands:
            q.put(("check", ping_every))
        checked = group.wait_for("checked", slots, CONNECT_TIMEOUT + PING_TIMEOUT + 30)
        sample()
        after_hold = procstat.rss_bytes(tree)
        parts_after = {name: procstat.rss_bytes(t) for name, t in part_trees.items()}
        for q in commands:
            q.put(("close", 0))
        began_close = time.monotonic()
        try:
            # Closing tens of thousands at once can take a loaded broker long; the
            # figures are taken already, so a slow close is reported, not a failure
            # (leaving the group terminates the workers).
            group.wait_for("result", slots, RESULT_TIMEOUT + connections / 1000)
            close_seconds: float | None = time.monotonic() - began_close
        except LoadError:
            close_seconds = None
    is_open = sum(int(r["open"]) for r in opened.values())
    failed = sum(int(r["failed"]) for r in opened.values())
    skipped = sum(int(r["skipped"]) for r in opened.values())
    first_failure = next((r["first_failure"] for r in opened.values() if r["first_failure"]), None)
    measured = is_open - warm
    if measured <= 0:
        raise LoadError(
            f"no connection to measure: {failed} failed, {skipped} not tried,"
            f" first failure: {first_failure}"
        )
    if stopped is None and skipped:
        stopped = f"gave up after {failed} failed connections"
    ping_failure = next(
        (r["first_ping_failure"] for r in checked.values() if r["first_ping_failure"]), None
    )
    return IdleResult(
        connections=connections,
        measured_connections=measured,
        failed=failed,
        skipped=skipped,
        rss_before=before,
        rss_after=after,
        bytes_per_connection=(after - before) / measured,
        first_failure=first_failure,
        open_seconds=open_seconds,
        opens_per_s=measured / open_seconds if open_seconds > 0 else 0.0,
        hold_seconds=hold,
        connections_held=sum(int(r["open"]) for r in checked.values()),
        connections_lost=sum(int(r["lost"]) for r in checked.values()),
        pings_sent=sum(int(r["pings_sent"]) for r in checked.values()),
        pings_answered=sum(int(r["pings_answered"]) for r in checked.values()),
        first_ping_failure=ping_failure,
        rss_after_hold=after_hold,
        broker_peak_rss=max(peak, after_hold),
        broker_fd_limit=fd_limit,
        generator_processes=procs,
        generator_bytes_per_connection=generator_rss / is_open,
        source_addresses=len(sources),
        mem_available_min=mem_min,
        stopped=stopped,
        nodes=len(endpoints),
        close_seconds=close_seconds,
        part_rss_before=parts_before,
        part_rss_after_hold=parts_after,
    )


@dataclass(frozen=True, slots=True)
class ConnectRateResult:
    connects_per_s: float
    completed: int
    failed: int
    errors: list[str]
    median_connect_ms: float | None
    generator_cores: float
    broker_cores: float | None
    broker_ms_per_connect: float | None
    other_cores: float


def connect_rate(
    endpoint: Endpoint,
    *,
    concurrency: int,
    processes: int,
    warmup: float,
    duration: float,
    broker_pid: int | None,
) -> ConnectRateResult:
    """Clients in a loop: TLS handshake, CONNECT, CONNACK, DISCONNECT; connects per second.

    :raises LoadError: if a worker fails.
    """
    prefix = _client_prefix("conn")
    per_proc = [concurrency // processes + (k < concurrency % processes) for k in range(processes)]
    with WorkerGroup(hard_seconds=warmup + duration + 90) as group:
        slots = [group.add(connect_job, endpoint, prefix, n) for n in per_proc if n]
        group.start()
        window = measure(group, warmup, duration, broker_pid)
        results = group.stop(slots)
    completed = sum(int(r["done"]) for r in results.values())
    failed = sum(int(r["failed"]) for r in results.values())
    errors = [e for r in results.values() for e in r["errors"]][:3]
    if not completed:
        raise LoadError(f"no connect succeeded ({failed} failed), first: {errors[:1]}")
    rate = window.rate(slots)
    medians = [r["median_s"] for r in results.values() if r["median_s"] is not None]
    broker = window.broker_cores
    return ConnectRateResult(
        connects_per_s=rate,
        completed=completed,
        failed=failed,
        errors=errors,
        median_connect_ms=statistics.median(medians) * 1000 if medians else None,
        generator_cores=window.generator_cores,
        broker_cores=broker,
        broker_ms_per_connect=broker / rate * 1000 if broker and rate else None,
        other_cores=window.other_cores,
    )


@dataclass(frozen=True, slots=True)
class CeilingFigure:
    """One side of the generator at full speed against the do-nothing server."""

    msgs_per_s: float
    generator_cores: float
    """CPU used by the generator's workers (1.0 = one core busy)."""
    generator_us_per_msg: float
    """Generator CPU per message: what it costs the shared cores in a real run."""
    server_cores: float | None
    """CPU used by the do-nothing server meanwhile."""
    other_cores: float


def ceiling(
    server_tls: TlsFiles,
    client_tls: TlsFiles,
    *,
    publishers: int,
    processes: int,
    warmup: float,
    duration: float,
    payload_size: int = 64,
    batch: int = 64,
) -> dict[str, CeilingFigure]:
    """How fast the generator's publishers and subscriber go against a do-nothing server.

    The server (``clients.MqttSink``) runs in its own process on the same cores, as a
    broker would. Keys: ``publish_qos0``, ``subscribe_qos0``, ``publish_qos1``,
    ``subscribe_qos1``.

    :raises LoadError: if a worker fails.
    """
    figures: dict[str, CeilingFigure] = {}
    for qos in (0, 1):
        for side in ("publish", "subscribe"):
            with WorkerGroup(hard_seconds=warmup + duration + 90) as sink_group:
                sink_slot = sink_group.add(sink_job, server_tls, qos, payload_size, batch)
                sink_group.start()
                sink_pid = int(sink_group.ready[sink_slot]["pid"])
                port = int(sink_group.ready[sink_slot]["port"])
                endpoint = Endpoint("127.0.0.1", port, client_tls)
                prefix = _client_prefix(f"ceil{qos}")
                with WorkerGroup(hard_seconds=warmup + duration + 60) as group:
                    if side == "publish":
                        ids = [f"{prefix}-p{k}" for k in range(publishers)]
                        slots = [
                            group.add(
                                publisher_job,
                                endpoint,
                                PublisherSpec(chunk, qos, payload_size, batch),
                            )
                            for chunk in _split(ids, processes)
                        ]
                    else:
                        slots = [
                            group.add(
                                subscriber_job,
                                endpoint,
                                f"{prefix}-s",
                                qos,
                                False,
                                TOPIC_FILTER,
                                True,
                            )
                        ]
                    group.start()
                    sink_group.go.set()
                    window = measure(group, warmup, duration, sink_pid)
                    group.stop(slots)
            rate = window.rate(slots)
            figures[f"{side}_qos{qos}"] = CeilingFigure(
                msgs_per_s=rate,
                generator_cores=window.generator_cores,
                generator_us_per_msg=window.generator_cores / rate * 1e6 if rate else float("nan"),
                server_cores=window.broker_cores,
                other_cores=window.other_cores,
            )
    return figures
