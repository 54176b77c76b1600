"""MQTT load generator: the benchmark's scenarios, one function and one result each.

Layers, bottom up: ``wire`` hand-encodes the few MQTT 3.1.1 packets and frames received
bytes; ``clients`` holds the asyncio protocols (publisher, subscriber, idle client, and
the do-nothing server of the ceiling runs); ``workers`` spawns processes full of those
clients and measures them over a window; this module composes them into scenarios:

* :func:`fan_in` - publishers flood ``bench/<client id>``, one subscriber on ``bench/#``
  counts deliveries (QoS 0: batched writes; QoS 1: ``MAX_INFLIGHT`` outstanding).
* :func:`latency` - a fixed offered load; each payload starts with the sender's
  ``CLOCK_MONOTONIC`` nanoseconds (system-wide on Linux, so comparable across
  processes), stamped when the message is generated: time spent waiting for an in-flight
  slot counts as latency, as it would for a device.
* :func:`idle_memory` - broker RSS growth per idle connection.
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
from collections.abc import Sequence
from dataclasses import dataclass

import procstat
from clients import Endpoint, LoadError, TlsFiles
from workers import (
    READY_TIMEOUT,
    RESULT_TIMEOUT,
    PublisherSpec,
    WorkerGroup,
    connect_job,
    idle_job,
    measure,
    new_queue,
    publisher_job,
    sink_job,
    subscriber_job,
)

__all__ = [
    "CeilingFigure",
    "ConnectRateResult",
    "Endpoint",
    "FanInResult",
    "IdleResult",
    "LatencyResult",
    "LoadError",
    "TlsFiles",
    "ceiling",
    "connect_rate",
    "fan_in",
    "idle_memory",
    "latency",
    "raise_fd_limit",
]


def raise_fd_limit() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to its hard limit; returns the new limit.

    Child processes (workers, brokers) inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


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
    generator_cores: float
    broker_cores: float | None
    broker_us_per_msg: float | None
    broker_peak_rss: int | None
    connections_lost: int
    """Load connections the broker closed during the run (should be 0)."""
    other_cores: float
    """CPU used by other processes on the machine meanwhile (should be near 0)."""
    tls: str


def fan_in(
    endpoint: Endpoint,
    *,
    qos: int,
    publishers: int,
    processes: int,
    warmup: float,
    duration: float,
    broker_pid: int | None,
    payload_size: int = 64,
    batch: int = 64,
) -> FanInResult:
    """``publishers`` connections flood ``bench/<id>``; one subscriber on ``bench/#`` counts.

    :raises LoadError: if a client cannot connect or subscribe, or a worker fails.
    """
    prefix = _client_prefix(f"q{qos}")
    ids = [f"{prefix}-p{k}" for k in range(publishers)]
    with WorkerGroup(hard_seconds=warmup + duration + 90) as group:
        sub = group.add(subscriber_job, endpoint, f"{prefix}-sub", qos, False)
        pubs = [
            group.add(publisher_job, endpoint, PublisherSpec(chunk, qos, payload_size, batch))
            for chunk in _split(ids, processes)
        ]
        group.start()
        window = measure(group, warmup, duration, broker_pid)
        results = group.stop(pubs)
        sent = sum(int(r["sent"]) for r in results.values())
        acked = sum(int(r["acked"]) for r in results.values())
        _wait_for_drain(group, sub, sent if qos == 0 else acked)
        sub_result = group.stop([sub])[sub]
        delivered = int(sub_result["received"])
        lost = sum(int(r["lost"]) for r in results.values()) + int(sub_result["lost"])
    delivered_rate = window.rate([sub])
    broker = window.broker_cores
    return FanInResult(
        delivered_per_s=delivered_rate,
        accepted_per_s=window.rate(pubs),
        sent=sent,
        delivered=delivered,
        acked=acked,
        loss=1 - delivered / sent if sent else 0.0,
        generator_cores=window.generator_cores,
        broker_cores=broker,
        broker_us_per_msg=broker / delivered_rate * 1e6 if broker and delivered_rate else None,
        broker_peak_rss=window.broker_peak_rss,
        connections_lost=lost,
        other_cores=window.other_cores,
        tls=str(group.ready[sub]["tls"]),
    )


def _wait_for_drain(group: WorkerGroup, slot: int, expected: int, quiet: float = 0.5) -> None:
    """Let the subscriber catch up: until it counted ``expected``, went ``quiet`` s without
    a message, or 10 s passed."""
    deadline = time.monotonic() + 10
    last, last_change = group.counters[slot], time.monotonic()
    while (now := time.monotonic()) < deadline and group.counters[slot] < expected:
        if group.counters[slot] != last:
            last, last_change = group.counters[slot], now
        elif now - last_change > quiet:
            return
        time.sleep(0.02)


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


def latency(
    endpoint: Endpoint,
    *,
    rate: float,
    qos: int,
    publishers: int,
    processes: int,
    warmup: float,
    duration: float,
    broker_pid: int | None,
    payload_size: int = 64,
) -> LatencyResult:
    """Offer ``rate`` msg/s in total and report publish→deliver latency percentiles.

    Only messages generated inside the measured window count.

    :raises LoadError: if a client cannot connect or subscribe, or a worker fails.
    """
    prefix = _client_prefix("lat")
    ids = [f"{prefix}-p{k}" for k in range(publishers)]
    chunks = _split(ids, processes)
    with WorkerGroup(hard_seconds=warmup + duration + 90) as group:
        sub = group.add(subscriber_job, endpoint, f"{prefix}-sub", qos, True)
        pubs = [
            group.add(
                publisher_job,
                endpoint,
                PublisherSpec(chunk, qos, payload_size, rate=rate * len(chunk) / publishers),
            )
            for chunk in chunks
        ]
        group.start()
        window = measure(group, warmup, duration, broker_pid)
        group.stop(pubs)
        _wait_for_drain(group, sub, expected=2**62, quiet=0.3)
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
    )


@dataclass(frozen=True, slots=True)
class IdleResult:
    connections: int
    measured_connections: int
    failed: int
    rss_before: int
    rss_after: int
    bytes_per_connection: float
    first_failure: str | None


def idle_memory(
    endpoint: Endpoint, *, connections: int, broker_pid: int, settle: float = 1.0
) -> IdleResult:
    """Broker RSS growth per idle connection (CONNECT, keep-alive 600 s, then nothing).

    A first tenth of the connections (at most 50) is opened before the baseline reading,
    so one-time costs (first handshake, lazily built tables) are not charged per
    connection; the rest is opened after it.

    :raises LoadError: if the worker fails.
    """
    warm = min(50, max(1, connections // 10))
    commands: multiprocessing.queues.Queue[tuple[str, int]] = new_queue()
    with WorkerGroup(hard_seconds=connections / 20 + 120) as group:
        slot = group.add(idle_job, endpoint, _client_prefix("idle"), commands)
        group.start()
        tree = procstat.descendants(broker_pid)
        commands.put(("open", warm))
        opened = group.wait_for("opened", [slot], READY_TIMEOUT)[slot]
        time.sleep(settle)
        before = procstat.rss_bytes(tree)
        commands.put(("open", connections - warm))
        opened = group.wait_for("opened", [slot], connections / 20 + 60)[slot]
        time.sleep(settle)
        after = procstat.rss_bytes(tree)
        commands.put(("close", 0))
        group.wait_for("result", [slot], RESULT_TIMEOUT)
    measured = int(opened["open"]) - warm
    if measured <= 0:
        raise LoadError(
            f"no connection to measure: {opened['failed']} of {connections - warm} failed,"
            f" first: {opened['first_failure']}"
        )
    return IdleResult(
        connections=int(opened["open"]),
        measured_connections=measured,
        failed=int(opened["failed"]),
        rss_before=before,
        rss_after=after,
        bytes_per_connection=(after - before) / measured,
        first_failure=opened["first_failure"],
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
                        slots = [group.add(subscriber_job, endpoint, f"{prefix}-s", qos, False)]
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
