"""The load generator's MQTT clients (and the do-nothing server of the ceiling runs).

Each class is an ``asyncio.Protocol`` over a TLS (or plain TCP) transport and sends
prebuilt bytes from ``wire``. ``Publisher`` floods at QoS 0 in batches under transport
flow control, floods at QoS 1 keeping ``MAX_INFLIGHT`` unacknowledged messages, or, for
the latency run, sends what :func:`workers.pace` offers it, or, for the paced run, one
packet per write (:meth:`Publisher.send_one`). ``Subscriber`` counts what arrives (fast
path) or records per-message latency, and acknowledges QoS 1 deliveries. ``IdleClient``
connects and then says nothing, unless asked to ping.

Reading in batches. Mosquitto writes one TLS record, and over loopback one TCP segment,
per message. A client that reads whenever its socket becomes readable then wakes up for
a handful of records each time, and those wake-ups cost both sides: ~6 us per message in
the subscriber, and the broker's ``write()`` pays for waking it. The throughput clients
therefore set a read low-water mark (``SO_RCVLOWAT``, see :class:`BufferedClient`): the
kernel reports the socket readable only once that many bytes are queued, so each read
collects hundreds of records and nobody is woken per message. It is never set where a
message's timing matters (latency and paced runs).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import wire

MAX_INFLIGHT = 100
"""Unacknowledged QoS 1 messages per publishing connection (AWS IoT Core's limit)."""

TOPIC_FILTER = "bench/#"
CONNECT_TIMEOUT = 15.0
"""Seconds for TCP connect + TLS handshake + CONNECT/CONNACK (+ SUBSCRIBE/SUBACK)."""

PING_TIMEOUT = 10.0
"""Seconds an idle connection has to answer a PINGREQ at the end of a hold."""

_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux >= 4.2

_ID_CYCLE = 1000
_FLOOD_REFILL = MAX_INFLIGHT // 4
"""A flooding QoS 1 publisher tops its window up once this many slots are free, not after
every PUBACK: brokers acknowledge one record at a time, and answering each with a
one-message write would put the generator in its most expensive regime (about 10 us per
message instead of under 1)."""


_CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class LoadError(Exception):
    """A load run could not be carried out: a worker failed or the broker refused us."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for one side of a mutual-TLS connection: our chain and the peer's CA."""

    ca_file: str
    cert_file: str
    key_file: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a broker listens; ``tls`` is ``None`` for plain TCP."""

    host: str
    port: int
    tls: TlsFiles | None = None


# --------------------------------------------------------------------------- TLS


def client_ssl_context(tls: TlsFiles | None) -> ssl.SSLContext | None:
    """A client context presenting ``tls``'s certificate and verifying the broker's chain.

    The host name is not checked (the brokers' certificates name different hosts);
    the chain is, so the handshake costs the broker what a device's would.
    """
    if tls is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(tls.ca_file)
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    return ctx


def server_ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """A server context that requires a client certificate chaining to ``tls.ca_file``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(tls.ca_file)
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    return ctx


# ------------------------------------------------------------------ client protocols


class Client(asyncio.BaseProtocol):
    """One MQTT connection: CONNECT (and optionally SUBSCRIBE) handshake and flow control.

    ``ready`` resolves once CONNACK (and SUBACK, if subscribing) accepted us, and fails
    with :class:`LoadError` if the broker refused or closed the connection first.
    Afterwards received bytes go to :meth:`on_data`.
    """

    # A plain ``BaseProtocol`` with ``data_received``, not an ``asyncio.Protocol``: uvloop
    # only takes the buffered read path for protocols that are not ``Protocol`` instances.

    def __init__(self, connect: bytes, subscribe: bytes | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        # A failure nobody awaits (the connection attempt itself failed) is not news.
        self.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.session_present = False
        """The CONNACK's session-present flag: the broker still had this client's session."""
        self.reader = wire.FrameReader()
        self._connect = connect
        self._subscribe = subscribe
        self._handshaking = True
        self._paused = False
        self._resumed: asyncio.Future[None] | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.set_write_buffer_limits(high=256 * 1024)
        self.transport.write(self._connect)

    def data_received(self, data: bytes) -> None:
        if not self._handshaking:
            self.on_data(data)
            return
        for first, body in self.reader.packets(data):
            if self._handshaking:
                self._handshake_packet(first, body)
            else:
                self.on_packet(first, body)

    def eof_received(self) -> bool | None:
        return None  # let the transport close

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            why = f": {exc!r}" if exc is not None else ""
            self.ready.set_exception(
                LoadError(f"the broker closed the connection before accepting it{why}")
            )
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    # handshake
    def _handshake_packet(self, first: int, body: bytes) -> None:
        kind = first & 0xF0
        if kind == wire.CONNACK:
            if len(body) < 2 or body[1] != 0:
                code = body[1] if len(body) > 1 else -1
                self._refuse(f"CONNACK return code {code} ({_CONNACK_CODES.get(code, '?')})")
                return
            self.session_present = bool(body[0] & 0x01)
            if self._subscribe is not None:
                self.transport.write(self._subscribe)  # type: ignore[union-attr]
            else:
                self._accepted()
        elif kind == wire.SUBACK:
            if len(body) < 3 or any(code & 0x80 for code in body[2:]):
                self._refuse(f"SUBACK refused the subscription ({body.hex()})")
            else:
                self._accepted()
        else:
            self.on_packet(first, body)

    def _accepted(self) -> None:
        self._handshaking = False
        if not self.ready.done():
            self.ready.set_result(None)

    def _refuse(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(LoadError(reason))
        self.transport.close()  # type: ignore[union-attr]

    # for subclasses
    def on_data(self, data: bytes) -> None:
        for first, body in self.reader.packets(data):
            self.on_packet(first, body)

    def on_packet(self, first: int, body: bytes) -> None:
        """A packet the subclass did not ask for; ignored by default."""

    async def writable(self) -> None:
        """Return once the transport's write buffer is below its high-water mark."""
        if self._paused and not self.lost:
            self._resumed = asyncio.get_running_loop().create_future()
            await self._resumed

    def tls_version(self) -> str:
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        return ssl_object.version() if ssl_object is not None else "plain TCP"

    def close(self, *, disconnect: bool = True) -> None:
        if self.transport is not None and not self.lost:
            if disconnect:
                self.transport.write(wire.DISCONNECT_PACKET)
            self.transport.close()


class IdleClient(Client):
    """Connects, then stays quiet; :meth:`ping` checks that the broker still serves it."""

    def __init__(self, connect: bytes) -> None:
        super().__init__(connect)
        self._pong: asyncio.Future[None] | None = None

    def on_packet(self, first: int, body: bytes) -> None:
        if first & 0xF0 == wire.PINGRESP and self._pong is not None and not self._pong.done():
            self._pong.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._pong is not None and not self._pong.done():
            self._pong.set_exception(LoadError("the broker closed the connection"))

    async def ping(self, timeout: float = PING_TIMEOUT) -> None:
        """Send PINGREQ and wait for PINGRESP.

        :raises LoadError: if the connection is (or gets) closed.
        :raises TimeoutError: if no PINGRESP came within ``timeout`` seconds.
        """
        if self.lost or self.transport is None:
            raise LoadError("the broker closed the connection")
        self._pong = asyncio.get_running_loop().create_future()
        self.transport.write(wire.PINGREQ_PACKET)
        await asyncio.wait_for(self._pong, timeout)


class BufferedClient(Client, asyncio.BufferedProtocol):
    """A client whose transport decrypts straight into one reusable buffer.

    A broker sends one TLS record per packet, so a busy subscriber (or a QoS 1 publisher
    reading PUBACKs) decrypts hundreds of thousands of tiny records a second. Through
    ``data_received``, uvloop allocates a fresh 256 KiB ``bytes`` for each record; as a
    ``BufferedProtocol`` the client avoids that, which halves its CPU per message. Idle
    clients do not use this: the buffer would dwarf the connection being measured.

    :meth:`read_in_batches` sets a read low-water mark on the socket (``SO_RCVLOWAT``):
    the event loop is then woken only once that many bytes are queued. Bytes that stay
    below the mark (the tail of a run, or a broker that paused) are picked up by
    :meth:`tick`, which the worker calls every few milliseconds: after a tick in which
    nothing arrived the mark drops to 1 byte, and it comes back once data flows again.
    (Linux re-checks readability when the mark changes, so the pending bytes are read.)
    """

    READ_BUFFER = 64 * 1024

    def __init__(self, connect: bytes, subscribe: bytes | None = None) -> None:
        super().__init__(connect, subscribe)
        self._read_buffer = memoryview(bytearray(self.READ_BUFFER))
        self._low_water = 0
        self._eager = True
        """The socket's mark is 1 byte (read whatever arrives): no batching asked for,
        or the last tick saw nothing arrive."""
        self._reads = 0
        self._reads_at_tick = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._reads += 1
        self.data_received(bytes(self._read_buffer[:nbytes]))

    def read_in_batches(self, low_water: int) -> None:
        """Have the socket wake us only once ``low_water`` bytes are queued (0: always)."""
        self._low_water = low_water
        self._set_low_water(low_water or 1)

    def tick(self) -> None:
        """Let bytes below the low-water mark through when nothing else arrived since
        the last tick; restore the mark once data arrives again."""
        if not self._low_water:
            return
        arrived = self._reads != self._reads_at_tick
        self._reads_at_tick = self._reads
        if arrived and self._eager:
            self._set_low_water(self._low_water)
        elif not arrived and not self._eager:
            self._set_low_water(1)

    def _set_low_water(self, mark: int) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is None or self.lost:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, mark)
        except OSError:
            self._low_water = 0  # the transport is closing: read as it comes
            mark = 1
        self._eager = mark == 1


class Publisher(BufferedClient):
    """Publishes to one topic at QoS 0 (batched) or QoS 1 (windowed by ``MAX_INFLIGHT``)."""

    def __init__(self, connect: bytes, topic: str, qos: int, payload_size: int) -> None:
        super().__init__(connect)
        self.qos = qos
        self.sent = 0
        self.acked = 0
        self._prefix = wire.publish_prefix(topic, payload_size, qos)
        self._payload = bytes(payload_size)
        self._inflight = 0
        self._next = 0  # index into the packet id cycle; the packet id is _next + 1
        self._backlog: deque[bytes] = deque()
        self._outbox: list[bytes] = []
        self._flood_block = b""
        self._settled: asyncio.Future[None] | None = None

    # QoS 1 acknowledgements
    def on_data(self, data: bytes) -> None:
        acked = self.reader.count_pubacks(data)
        if acked:
            self._on_acks(acked)

    def on_packet(self, first: int, body: bytes) -> None:
        if first & 0xF0 == wire.PUBACK:
            self._on_acks(1)

    def _on_acks(self, count: int) -> None:
        self.acked += count
        self._inflight -= count
        if self._flood_block or self._backlog:
            self._refill()
        if self._inflight <= 0 and self._settled is not None and not self._settled.done():
            self._settled.set_result(None)

    # Packet ids cycle through 1.._ID_CYCLE. With at most MAX_INFLIGHT outstanding, an id
    # could only be reused while in flight if the broker left one message unacknowledged
    # while acknowledging the next _ID_CYCLE - MAX_INFLIGHT; brokers acknowledge in order.

    def _qos1_packet(self, payload: bytes) -> bytes:
        packet_id = self._next + 1
        self._next = packet_id % _ID_CYCLE
        return self._prefix + packet_id.to_bytes(2, "big") + payload

    def _flood_packets(self, count: int) -> bytes:
        """``count`` consecutive prebuilt packets (``count`` <= ``_ID_CYCLE``), as one slice."""
        size = len(self._flood_block) // _ID_CYCLE
        start, end = self._next, self._next + count
        self._next = end % _ID_CYCLE
        if end <= _ID_CYCLE:
            return self._flood_block[start * size : end * size]
        return self._flood_block[start * size :] + self._flood_block[: self._next * size]

    def _refill(self) -> None:
        free = MAX_INFLIGHT - self._inflight
        if free <= 0 or self.lost:
            return
        out = []
        while free > 0 and self._backlog:
            out.append(self._qos1_packet(self._backlog.popleft()))
            free -= 1
        written = len(out)
        if self._flood_block and free >= _FLOOD_REFILL:
            out.append(self._flood_packets(free))
            written += free
        if written:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])  # type: ignore[union-attr]
            self._inflight += written
            self.sent += written

    # flood mode (throughput runs)
    async def flood_qos0(self, batch: int, running: Callable[[], bool]) -> None:
        """Write ``batch`` prebuilt packets per write for as long as ``running()``.

        A broker that stops reading (a cluster node backlogged on its relay, say) keeps
        the transport paused: the wait for it re-checks ``running()`` every 0.1 s, so the
        publisher still stops when told to.
        """
        chunk = (self._prefix + self._payload) * batch
        write = self.transport.write  # type: ignore[union-attr]
        while running() and not self.lost:
            if self._paused:
                try:
                    await asyncio.wait_for(self.writable(), 0.1)
                except TimeoutError:
                    continue
            write(chunk)
            self.sent += batch
            await asyncio.sleep(0)

    def start_flood_qos1(self) -> None:
        """Keep ``MAX_INFLIGHT`` messages outstanding until :meth:`stop_flood`.

        PUBACKs are read in batches of at least ``_FLOOD_REFILL`` x 4 bytes: the window
        is topped up only once that many slots are free anyway, and that many PUBACKs
        take at least as many bytes however the broker frames them.
        """
        self._flood_block = b"".join(
            self._prefix + packet_id.to_bytes(2, "big") + self._payload
            for packet_id in range(1, _ID_CYCLE + 1)
        )
        self.read_in_batches(_FLOOD_REFILL * 4)  # a PUBACK is 4 bytes
        self._refill()

    def stop_flood(self) -> None:
        self._flood_block = b""
        self.read_in_batches(0)

    # paced devices (one message per write, so one TLS record per message)
    def send_one(self, payload: bytes) -> None:
        """Write one QoS 0 PUBLISH on its own (one write, one TLS record)."""
        if not self.lost:
            self.transport.write(self._prefix + payload)  # type: ignore[union-attr]
            self.sent += 1

    # paced mode (latency runs)
    def offer(self, payload: bytes) -> None:
        """Queue one message; :meth:`flush` writes everything queued since the last flush."""
        if self.qos:
            self._backlog.append(payload)
        else:
            self._outbox.append(self._prefix + payload)

    def flush(self) -> None:
        if self.lost:
            return
        if self.qos:
            self._refill()
        elif self._outbox:
            self.transport.write(b"".join(self._outbox))  # type: ignore[union-attr]
            self.sent += len(self._outbox)
            self._outbox.clear()

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) for every QoS 1 message sent to be acknowledged."""
        self._backlog.clear()
        if self.qos and self._inflight > 0 and not self.lost:
            self._settled = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._settled, timeout)
            except TimeoutError:
                pass


SUBSCRIBER_LOW_WATER = {0: 64 * 1024, 1: MAX_INFLIGHT // 4 * 64}
"""Read low-water marks of a throughput subscriber, in bytes, by QoS. QoS 0: 64 KiB, about
500 of Mosquitto's one-record messages per read. QoS 1: the broker stops at
``MAX_INFLIGHT`` unacknowledged deliveries, so the mark must be reached well inside that
window whatever the framing: a quarter of it, counting 64 bytes per message (the payload
alone)."""


class Subscriber(BufferedClient):
    """Counts PUBLISH packets (fast path) or records their latency; PUBACKs QoS 1 ones."""

    READ_BUFFER = 256 * 1024

    def __init__(
        self,
        connect: bytes,
        subscribe: bytes,
        counters: Any,
        slot: int,
        *,
        record_latency: bool,
    ) -> None:
        super().__init__(connect, subscribe)
        self.received = 0
        self.stamps = array("q")
        self.latencies = array("q")
        self._counters = counters
        self._slot = slot
        self._record = record_latency

    def on_data(self, data: bytes) -> None:
        if self._record:
            self._record_chunk(data)
            return
        acks = bytearray()
        count = self.reader.count(data, acks)
        if count:
            self.received += count
            self._counters[self._slot] = self.received
        if acks:
            self.transport.write(acks)  # type: ignore[union-attr]

    def on_packet(self, first: int, body: bytes) -> None:
        # Only reached for packets that arrive in the same read as our SUBACK.
        if first & 0xF0 == wire.PUBLISH:
            self._record_packets([(first, body)], time.monotonic_ns())

    def _record_chunk(self, data: bytes) -> None:
        self._record_packets(self.reader.packets(data), time.monotonic_ns())

    def _record_packets(self, packets: Iterable[tuple[int, bytes]], now_ns: int) -> None:
        acks = bytearray()
        count = 0
        for first, body in packets:
            if first & 0xF0 != wire.PUBLISH:
                continue
            qos, packet_id, offset = wire.publish_fields(first, body)
            if qos:
                acks += wire.PUBACK_PREFIX + packet_id.to_bytes(2, "big")
            count += 1
            if self._record and len(body) >= offset + 8:
                stamp = int.from_bytes(body[offset : offset + 8], "big")
                self.stamps.append(stamp)
                self.latencies.append(now_ns - stamp)
        if count:
            self.received += count
            self._counters[self._slot] = self.received
        if acks:
            self.transport.write(acks)  # type: ignore[union-attr]


async def open_client(
    endpoint: Endpoint,
    ctx: ssl.SSLContext | None,
    factory: Callable[[], Client],
    source: str | None = None,
) -> Client:
    """Connect, handshake and wait for the broker to accept the client.

    ``source`` binds the client to that local address (any of 127.0.0.0/8 on Linux), so
    that more connections than one address has ephemeral ports (~28k) can reach one
    broker port. The port is still chosen at connect time (``IP_BIND_ADDRESS_NO_PORT``),
    by the 4-tuple, so ports in TIME_WAIT from an earlier run do not get in the way.

    :raises LoadError: if the broker refused the CONNECT or SUBSCRIBE.
    :raises OSError, ssl.SSLError, TimeoutError: on transport failures.
    """
    loop = asyncio.get_running_loop()

    async def connect() -> Client:
        if source is None:
            _, client = await loop.create_connection(factory, endpoint.host, endpoint.port, ssl=ctx)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((source, 0))
                sock.setblocking(False)
                await loop.sock_connect(sock, (endpoint.host, endpoint.port))
            except BaseException:
                sock.close()
                raise
            # From here on the transport owns the socket and closes it on failure.
            _, client = await loop.create_connection(
                factory,
                sock=sock,
                ssl=ctx,
                server_hostname=endpoint.host if ctx is not None else None,
            )
        try:
            await client.ready
        except BaseException:
            client.close(disconnect=False)
            raise
        return client

    return await asyncio.wait_for(connect(), CONNECT_TIMEOUT)


async def open_many(
    endpoint: Endpoint,
    ctx: ssl.SSLContext | None,
    factories: Sequence[Callable[[], Client]],
    concurrency: int = 64,
) -> list[Client]:
    """Open one client per factory, at most ``concurrency`` handshakes at a time.

    :raises: as :func:`open_client`, for the first client that fails.
    """
    limit = asyncio.Semaphore(concurrency)

    async def one(factory: Callable[[], Client]) -> Client:
        async with limit:
            return await open_client(endpoint, ctx, factory)

    return list(await asyncio.gather(*(one(f) for f in factories)))


# ------------------------------------------------------------ the generator's ceiling


class MqttSink(asyncio.Protocol):
    """Server side for the ceiling runs: accepts any client, never routes anything.

    A client that subscribes gets a flood of prebuilt PUBLISH packets (the subscriber's
    ceiling); what clients send is drained, with a PUBACK for each QoS 1 PUBLISH (the
    publishers' ceiling).
    """

    def __init__(self, qos: int, payload_size: int, batch: int, running: Callable[[], bool]):
        self._reader = wire.FrameReader()
        self._draining = False
        self._qos = qos
        self._packet = wire.encode_publish(
            "bench/source", bytes(payload_size), qos=qos, packet_id=1
        )
        self._batch = batch
        self._running = running
        self._paused = False
        self._resumed: asyncio.Future[None] | None = None
        self._lost = False
        self._flood_task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=256 * 1024)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        acks = bytearray()
        if self._draining:
            self._reader.count(data, acks)
        else:  # slow path until the client's first PUBLISH or SUBSCRIBE
            for first, body in self._reader.packets(data):
                kind = first & 0xF0
                if kind == wire.CONNECT:
                    self.transport.write(b"\x20\x02\x00\x00")
                elif kind == wire.SUBSCRIBE & 0xF0:
                    self.transport.write(b"\x90\x03" + body[:2] + bytes([self._qos]))
                    self._draining = True
                    self._flood_task = asyncio.get_running_loop().create_task(self._flood())
                elif kind == wire.PUBLISH:
                    self._draining = True
                    if first & 0x06:
                        acks += wire.PUBACK_PREFIX + body[2 + (body[0] << 8 | body[1]) :][:2]
        # One write per PUBACK, as a broker does (one TLS record per packet).
        for at in range(0, len(acks), 4):
            self.transport.write(acks[at : at + 4])

    async def _flood(self) -> None:
        assert self.transport is not None
        while self._running() and not self._lost and not self.transport.is_closing():
            if self._paused:
                self._resumed = asyncio.get_running_loop().create_future()
                await self._resumed
                continue
            # One write per packet, as a broker does: over TLS that is one record per
            # message, which is what the subscriber must decrypt in a real run.
            for _ in range(self._batch):
                self.transport.write(self._packet)
            await asyncio.sleep(0)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.resume_writing()
