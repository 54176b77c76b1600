"""The durability scenario: QoS 1 fan-in to an offline persistent session, then kill -9.

Theory of operation
-------------------
One subscriber opens a persistent session (MQTT 3.1.1, clean session 0), subscribes to
``bench/#`` at QoS 1 and disconnects; it waits for the broker to close the connection,
so the broker has taken the DISCONNECT before anything is published. From then on the
broker queues every message for that offline session. ``publishers`` connections publish
QoS 1 messages to ``bench/<client id>``, each keeping ``MAX_INFLIGHT`` unacknowledged.
Every payload starts with the publisher's number and the message's sequence number
(4 bytes each, big-endian), and every publisher marks which of its messages got a PUBACK,
by packet id, so a PUBACK out of order is still put on the right message.

1. Throughput: after a warm-up, PUBACKs per second over the measured window. Nobody reads
   the queue, so it grows all the time, as it would for a fleet's offline consumer.
2. Loss: when the window ends, with the publishers still running, the broker is killed
   with SIGKILL. Each publisher then reads what its socket still holds (a PUBACK the
   broker wrote before it died counts as acknowledged) until the connection ends, and
   reports. The broker is started again on the same data; the subscriber reconnects with
   the same client id and clean session 0, without subscribing again, and acknowledges
   everything it is sent until nothing more comes. An acknowledged message that never
   arrives is **lost**. A message that arrives without having been acknowledged (stored,
   but its PUBACK died with the broker) is counted apart, and so are duplicates (QoS 1
   allows them: in-flight messages are sent again after a reconnect).

:func:`numbered_ceiling` runs the same publishers against the do-nothing server of the
ceiling runs: these publishers build every packet (each payload differs) and look up
every PUBACK's packet id, so they cost more than the flood publishers of ``qos1``.
"""

from __future__ import annotations

import asyncio
import multiprocessing.queues
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import wire
from clients import (
    CONNECT_TIMEOUT,
    MAX_INFLIGHT,
    TOPIC_FILTER,
    BufferedClient,
    Endpoint,
    LoadError,
    TlsFiles,
    client_ssl_context,
    open_client,
    open_many,
)
from loadgen import CeilingFigure
from workers import Control, WorkerGroup, measure, new_queue, sink_job

__all__ = ["DurableResult", "durable", "numbered_ceiling"]

_ID_CYCLE = 1000
"""Packet ids cycle through 1.._ID_CYCLE; with at most MAX_INFLIGHT unacknowledged, an id
is never reused while its message is in flight."""
_REFILL = MAX_INFLIGHT // 4
"""Top the window up once this many slots are free (one write for many messages)."""
_TAG = 8
"""Payload bytes that identify a message: publisher number and sequence number."""

END_TIMEOUT = 10.0
"""Seconds a publisher waits, after the kill, for its connection to end."""
FIRST_DELIVERY_TIMEOUT = 15.0
"""Seconds the reconnected subscriber may wait for its first message (a broker may
reload its queue before it delivers)."""
QUIET = 2.0
"""Seconds without a delivery after which the drain is over while acknowledged messages
are still missing; 0.5 s once every acknowledged message has arrived."""
DRAIN_LIMIT = 300.0
"""The drain never lasts longer than this (``drain_cut_off`` says when it had to stop
while messages were still coming: then LOST includes messages not delivered *yet*)."""


# ------------------------------------------------------------------ clients


class NumberedPublisher(BufferedClient):
    """QoS 1 publisher whose every payload names it and the message; it marks each
    message that got a PUBACK in :attr:`acked_seqs`."""

    def __init__(self, connect: bytes, topic: str, number: int, payload_size: int) -> None:
        super().__init__(connect)
        if payload_size < _TAG:
            raise ValueError(f"payload_size must be at least {_TAG}")
        self.number = number
        self.sent = 0
        self.acked = 0
        self.acked_seqs = bytearray()
        """One byte per message sent: 1 once it was acknowledged."""
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._prefix = wire.publish_prefix(topic, payload_size, 1)
        self._number = number.to_bytes(4, "big")
        self._padding = bytes(payload_size - _TAG)
        self._seq_of = [-1] * _ID_CYCLE  # packet id - 1 -> sequence number of its message
        self._inflight = 0
        self._running = False

    def start(self) -> None:
        self._running = True
        self._refill()

    def stop(self) -> None:
        self._running = False

    def on_data(self, data: bytes) -> None:
        self._on_acks(self.reader.puback_ids(data))

    def on_packet(self, first: int, body: bytes) -> None:
        if first & 0xF0 == wire.PUBACK and len(body) >= 2:
            self._on_acks([body[0] << 8 | body[1]])

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ended.done():
            self.ended.set_result(None)

    def _on_acks(self, packet_ids: Iterable[int]) -> None:
        acked, seq_of = self.acked_seqs, self._seq_of
        for packet_id in packet_ids:
            if not 1 <= packet_id <= _ID_CYCLE:
                continue
            seq = seq_of[packet_id - 1]
            if seq >= 0 and not acked[seq]:
                acked[seq] = 1
                self.acked += 1
                self._inflight -= 1
        if MAX_INFLIGHT - self._inflight >= _REFILL:
            self._refill()

    def _refill(self) -> None:
        free = MAX_INFLIGHT - self._inflight
        if not self._running or self.lost or free <= 0 or self.transport is None:
            return
        first = self.sent
        prefix, number, padding, seq_of = self._prefix, self._number, self._padding, self._seq_of
        packets = []
        for seq in range(first, first + free):
            slot = seq % _ID_CYCLE
            seq_of[slot] = seq
            packets.append(
                prefix + (slot + 1).to_bytes(2, "big") + number + seq.to_bytes(4, "big") + padding
            )
        self.sent = first + free
        if self.sent > len(self.acked_seqs):
            self.acked_seqs.extend(bytes(max(65536, self.sent - len(self.acked_seqs))))
        self._inflight += free
        self.transport.write(b"".join(packets))


class Collector(BufferedClient):
    """A QoS 1 subscriber that acknowledges every delivery and records which messages came
    (by publisher number and sequence number) and how often."""

    READ_BUFFER = 256 * 1024

    def __init__(
        self, connect: bytes, subscribe: bytes | None, counters: Any, slot: int
    ) -> None:
        super().__init__(connect, subscribe)
        self.received = 0
        self.seen: dict[int, bytearray] = {}
        """Per publisher number: deliveries of each sequence number (at most 255)."""
        self.foreign = 0
        """Deliveries whose payload is too short to name a message (not from this run)."""
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._counters = counters
        self._slot = slot

    def on_data(self, data: bytes) -> None:
        self._take(self.reader.packets(data))

    def on_packet(self, first: int, body: bytes) -> None:
        # Only reached for packets that arrive in the same read as the CONNACK / SUBACK.
        self._take([(first, body)])

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ended.done():
            self.ended.set_result(None)

    def _take(self, packets: Iterable[tuple[int, bytes]]) -> None:
        acks = bytearray()
        count = 0
        seen = self.seen
        for first, body in packets:
            if first & 0xF0 != wire.PUBLISH:
                continue
            qos, packet_id, offset = wire.publish_fields(first, body)
            if qos:
                acks += wire.PUBACK_PREFIX + packet_id.to_bytes(2, "big")
            count += 1
            if len(body) < offset + _TAG:
                self.foreign += 1
                continue
            number = int.from_bytes(body[offset : offset + 4], "big")
            seq = int.from_bytes(body[offset + 4 : offset + _TAG], "big")
            tally = seen.get(number)
            if tally is None:
                tally = seen[number] = bytearray()
            if seq >= len(tally):
                tally.extend(bytes(max(seq + 1 - len(tally), len(tally), 65536)))
            if tally[seq] < 255:
                tally[seq] += 1
        if count:
            self.received += count
            self._counters[self._slot] = self.received
        if acks and self.transport is not None and not self.lost:
            self.transport.write(acks)

    async def disconnect(self, timeout: float) -> bool:
        """Send DISCONNECT and wait until the broker closes the connection; returns whether
        it did within ``timeout`` seconds (the connection is closed either way)."""
        if self.transport is None or self.lost:
            return True
        self.transport.write(wire.DISCONNECT_PACKET)
        try:
            await asyncio.wait_for(asyncio.shield(self.ended), timeout)
        except TimeoutError:
            self.close(disconnect=False)
            return False
        return True


# ------------------------------------------------------------------ workers


@dataclass(frozen=True, slots=True)
class NumberedSpec:
    """One worker's publishers: ``client_ids[k]`` publishes as number ``numbers[k]``."""

    client_ids: tuple[str, ...]
    numbers: tuple[int, ...]
    payload_size: int = 64
    until_closed: bool = True
    """After the stop flag, wait (at most END_TIMEOUT) for the broker's end of each
    connection, reading every PUBACK it still brings (the broker was killed)."""


async def numbered_publisher_job(control: Control, endpoint: Endpoint, spec: NumberedSpec) -> None:
    ctx = client_ssl_context(endpoint.tls)
    conns: list[NumberedPublisher] = await open_many(  # type: ignore[assignment]
        endpoint,
        ctx,
        [
            lambda cid=cid, number=number: NumberedPublisher(  # type: ignore[misc]
                wire.encode_connect(cid), f"bench/{cid}", number, spec.payload_size
            )
            for cid, number in zip(spec.client_ids, spec.numbers, strict=True)
        ],
    )
    control.report("ready", {"tls": conns[0].tls_version(), "pid": os.getpid()})
    await control.wait_go()

    def acked_counts() -> None:
        control.counters[control.slot] = sum(c.acked for c in conns)

    for c in conns:
        c.start()
    await control.wait_stop(acked_counts)
    for c in conns:
        c.stop()
    if spec.until_closed:
        await asyncio.wait([c.ended for c in conns], timeout=END_TIMEOUT)
    acked_counts()
    result = {
        "sent": sum(c.sent for c in conns),
        "acked": sum(c.acked for c in conns),
        "still_open": sum(not c.lost for c in conns),
        "acked_seqs": {c.number: bytes(c.acked_seqs[: c.sent]) for c in conns},
    }
    for c in conns:
        c.close()
    control.report("result", result)


async def persistent_subscriber_job(
    control: Control,
    client_id: str,
    commands: multiprocessing.queues.Queue[tuple[str, Endpoint]],
) -> None:
    """On ``("register", endpoint)``: open the persistent session, subscribe, disconnect
    (reports ``registered``). On ``("drain", endpoint)``: reconnect to it and collect
    until the stop flag (reports ``draining`` once connected, then ``result``)."""
    loop = asyncio.get_running_loop()

    async def command(expected: str) -> Endpoint:
        timeout = max(0.0, control.deadline - time.monotonic())
        kind, endpoint = await loop.run_in_executor(None, commands.get, True, timeout)
        if kind != expected:
            raise LoadError(f"subscriber: expected {expected!r}, got {kind!r}")
        return endpoint

    def collector(endpoint: Endpoint, subscribe: bool) -> Any:
        return open_client(
            endpoint,
            client_ssl_context(endpoint.tls),
            lambda: Collector(
                wire.encode_connect(client_id, clean_session=False),
                wire.encode_subscribe(1, TOPIC_FILTER, 1) if subscribe else None,
                control.counters,
                control.slot,
            ),
        )

    control.report("ready", {"pid": os.getpid()})
    sub: Collector = await collector(await command("register"), subscribe=True)
    registered = {"tls": sub.tls_version(), "session_present": sub.session_present}
    registered["closed_by_broker"] = await sub.disconnect(CONNECT_TIMEOUT)
    control.report("registered", registered)

    sub = await collector(await command("drain"), subscribe=False)
    control.report("draining", {"session_present": sub.session_present})
    await control.wait_stop()
    result = {
        "received": sub.received,
        "foreign": sub.foreign,
        "lost": int(sub.lost),
        "seen": {number: bytes(tally) for number, tally in sub.seen.items()},
    }
    sub.close()
    control.report("result", result)


# ------------------------------------------------------------------ the scenario


@dataclass(frozen=True, slots=True)
class DurableResult:
    acked_per_s: float
    """PUBACKs per second over the measured window, the subscriber offline."""
    sent: int
    acked: int
    """Messages acknowledged before the kill: every one was queued for the subscriber."""
    acked_lost: int
    """Acknowledged messages that never arrived after the restart."""
    delivered: int
    """Distinct messages delivered after the restart."""
    delivered_unacked: int
    """Of those, messages whose PUBACK the publisher never got."""
    duplicates: int
    """Deliveries beyond the first of a message."""
    foreign: int
    """Deliveries not from this run's publishers."""
    session_present: bool
    """The broker still had the subscriber's session after the restart."""
    restart_seconds: float
    """From the kill until the broker accepted connections again."""
    drain_seconds: float
    """From the subscriber's reconnect until its last delivery."""
    drain_per_s: float | None
    drain_cut_off: bool
    """The drain stopped at DRAIN_LIMIT while messages were still arriving."""
    publishers_still_open: int
    """Publisher connections not ended END_TIMEOUT seconds after the kill (should be 0)."""
    generator_cores: float
    broker_cores: float | None
    broker_us_per_msg: float | None
    broker_peak_rss: int | None
    other_cores: float
    tls: str
    settings: str
    """The broker's durability settings."""


def durable(
    endpoint: Endpoint,
    *,
    kill: Callable[[], None],
    restart: Callable[[], Endpoint],
    settings: str,
    publishers: int,
    processes: int,
    warmup: float,
    duration: float,
    broker_pid: int | None,
    payload_size: int = 64,
) -> DurableResult:
    """Measure acknowledged msg/s into an offline persistent session, then kill the broker
    (``kill``), start it again (``restart``, which returns where it listens now) and count
    what the subscriber gets back.

    :raises LoadError: if a client cannot connect, subscribe or reconnect, a worker fails,
        or ``restart`` raises it.
    """
    prefix = f"bench-dur-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    ids = [f"{prefix}-p{k}" for k in range(publishers)]
    parts = max(1, min(processes, publishers))
    commands: multiprocessing.queues.Queue[tuple[str, Endpoint]] = new_queue()
    hard = warmup + duration + END_TIMEOUT + FIRST_DELIVERY_TIMEOUT + DRAIN_LIMIT + 120
    with WorkerGroup(hard_seconds=hard) as group:
        sub = group.add(persistent_subscriber_job, f"{prefix}-sub", commands)
        pubs = [
            group.add(
                numbered_publisher_job,
                endpoint,
                NumberedSpec(
                    tuple(ids[p::parts]), tuple(range(publishers))[p::parts], payload_size
                ),
            )
            for p in range(parts)
        ]
        group.start()
        commands.put(("register", endpoint))
        registered = group.wait_for("registered", [sub], CONNECT_TIMEOUT * 2)[sub]
        if not registered["closed_by_broker"]:
            raise LoadError("the broker did not close the subscriber's connection on DISCONNECT")
        window = measure(group, warmup, duration, broker_pid)
        killed = time.monotonic()
        kill()
        published = group.stop(pubs)
        new_endpoint = restart()
        restart_seconds = time.monotonic() - killed
        commands.put(("drain", new_endpoint))
        drain_began = time.monotonic()
        acked = sum(int(r["acked"]) for r in published.values())
        session_present = bool(
            group.wait_for("draining", [sub], CONNECT_TIMEOUT * 2)[sub]["session_present"]
        )
        last_delivery, cut_off = _drain(group, sub, acked, session_present)
        collected = group.stop([sub])[sub]
    acked_maps: dict[int, bytes] = {}
    for r in published.values():
        acked_maps.update(r["acked_seqs"])
    tally = _tally(acked_maps, collected["seen"])
    rate = window.rate(pubs)
    broker = window.broker_cores
    drain_seconds = max(0.0, last_delivery - drain_began) if collected["received"] else 0.0
    return DurableResult(
        acked_per_s=rate,
        sent=sum(int(r["sent"]) for r in published.values()),
        acked=acked,
        acked_lost=tally["acked_lost"],
        delivered=tally["delivered"],
        delivered_unacked=tally["delivered_unacked"],
        duplicates=tally["duplicates"],
        foreign=int(collected["foreign"]),
        session_present=session_present,
        restart_seconds=restart_seconds,
        drain_seconds=drain_seconds,
        drain_per_s=collected["received"] / drain_seconds if drain_seconds > 0 else None,
        drain_cut_off=cut_off,
        publishers_still_open=sum(int(r["still_open"]) for r in published.values()),
        generator_cores=window.generator_cores,
        broker_cores=broker,
        broker_us_per_msg=broker / rate * 1e6 if broker and rate else None,
        broker_peak_rss=window.broker_peak_rss,
        other_cores=window.other_cores,
        tls=str(registered["tls"]),
        settings=settings,
    )


def _drain(
    group: WorkerGroup, slot: int, acked: int, session_present: bool
) -> tuple[float, bool]:
    """Wait until the reconnected subscriber has had everything; returns the time of its
    last delivery (``time.monotonic()``) and whether DRAIN_LIMIT cut the drain off.

    It is over after QUIET s without a delivery (0.5 s once ``acked`` have arrived), but
    never before FIRST_DELIVERY_TIMEOUT s have passed without any delivery at all, unless
    the broker said it had no session (then it has nothing to send), and never later than
    DRAIN_LIMIT s.
    """
    began = time.monotonic()
    last, last_change = group.counters[slot], began
    while (now := time.monotonic()) - began < DRAIN_LIMIT:
        count = group.counters[slot]
        if count != last:
            last, last_change = count, now
        quiet = now - last_change
        if count == 0:
            if quiet > (QUIET if not session_present else FIRST_DELIVERY_TIMEOUT):
                break
        elif quiet > (0.5 if count >= acked else QUIET):
            break
        time.sleep(0.02)
    else:
        return last_change, True
    return last_change, False


def _tally(acked_maps: dict[int, bytes], seen_maps: dict[int, bytes]) -> dict[str, int]:
    """Compare what was acknowledged with what arrived. Each map is one byte per sequence
    number (acknowledged: 0/1; seen: deliveries)."""
    binary = bytes([0] + [1] * 255)
    acked_lost = delivered = delivered_unacked = duplicates = 0
    for number in acked_maps.keys() | seen_maps.keys():
        acked = acked_maps.get(number, b"")
        seen = seen_maps.get(number, b"")
        width = max(len(acked), len(seen))
        a = int.from_bytes(acked.ljust(width, b"\0"), "big")
        s = int.from_bytes(seen.translate(binary).ljust(width, b"\0"), "big")
        both = (a & s).bit_count()
        acked_lost += a.bit_count() - both
        arrived = s.bit_count()
        delivered += arrived
        delivered_unacked += arrived - both
        duplicates += sum(seen) - arrived
    return {
        "acked_lost": acked_lost,
        "delivered": delivered,
        "delivered_unacked": delivered_unacked,
        "duplicates": duplicates,
    }


def numbered_ceiling(
    server_tls: TlsFiles,
    client_tls: TlsFiles,
    *,
    publishers: int,
    processes: int,
    warmup: float,
    duration: float,
    payload_size: int = 64,
) -> CeilingFigure:
    """How fast this scenario's publishers go against the do-nothing server
    (``clients.MqttSink``, which acknowledges every QoS 1 PUBLISH).

    :raises LoadError: if a worker fails.
    """
    parts = max(1, min(processes, publishers))
    with WorkerGroup(hard_seconds=warmup + duration + 90) as sink_group:
        sink_slot = sink_group.add(sink_job, server_tls, 1, payload_size, 64)
        sink_group.start()
        sink_pid = int(sink_group.ready[sink_slot]["pid"])
        endpoint = Endpoint("127.0.0.1", int(sink_group.ready[sink_slot]["port"]), client_tls)
        prefix = f"bench-durceil-{os.getpid()}"
        ids = [f"{prefix}-p{k}" for k in range(publishers)]
        with WorkerGroup(hard_seconds=warmup + duration + 60) as group:
            slots = [
                group.add(
                    numbered_publisher_job,
                    endpoint,
                    NumberedSpec(
                        tuple(ids[p::parts]),
                        tuple(range(publishers))[p::parts],
                        payload_size,
                        until_closed=False,
                    ),
                )
                for p in range(parts)
            ]
            group.start()
            sink_group.go.set()
            window = measure(group, warmup, duration, sink_pid)
            group.stop(slots)
    rate = window.rate(slots)
    return CeilingFigure(
        msgs_per_s=rate,
        generator_cores=window.generator_cores,
        generator_us_per_msg=window.generator_cores / rate * 1e6 if rate else float("nan"),
        server_cores=window.broker_cores,
        other_cores=window.other_cores,
    )
