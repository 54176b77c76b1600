"""A broker driven in memory: real :class:`Broker` and :class:`MQTTConnection` objects,
clients that are only an encoder and a decoder, and a clock the test moves by hand.

The broker's connections get a :class:`MemoryTransport` instead of a socket: what the
broker writes lands in the client's decoder, what the client sends is handed to the
connection's ``data_received``. Nothing waits on real time: every broker timer
(CONNECT deadline, keep-alive, will delay, session expiry, slow-reader grace, message
expiry) runs on a :class:`ManualClock`, which fires them, in deadline order, when the
test calls :meth:`ManualClock.advance`. Work the broker does on the event loop (CONNECT
handling, coalesced writes, closing) happens when the test awaits
:meth:`BrokerPair.settle`, which only lets ready callbacks run.

Typical use::

    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub", version=MQTT_5)
        await sub.subscribe("t/#", qos=1)
        ...

    run(scenario)
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bastion.broker import (
    AcceptVerifiedCertificates,
    AllowAll,
    Authenticator,
    Authorizer,
    Broker,
    BrokerLimits,
    MQTTConnection,
)
from bastion.broker._broker import DirectoryFactory
from bastion.broker._listener import server_limits
from bastion.mqtt import (
    MQTT_5,
    NO_PROPERTIES,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketDecoder,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Will,
    encode,
)
from support.clock import ManualClock

SETTLE_STEPS = 50
"""Event-loop turns :meth:`BrokerPair.settle` gives ready callbacks (no time passes)."""


class _PeerCertificate:
    """Stands in for the ``ssl_object`` of a TLS transport: the client's certificate."""

    def __init__(self, der: bytes) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self._der


class MemoryTransport:
    """The transport of one in-memory connection, seen from the broker's side."""

    def __init__(self, certificate: bytes | None, port: int) -> None:
        self.received = bytearray()  # what the broker wrote, not yet decoded by the client
        self.reading = True
        self.closed = False
        self.buffered = 0  # what get_write_buffer_size() reports (a full socket: set it)
        self.protocol: MQTTConnection | None = None
        self._extra: dict[str, Any] = {"peername": ("192.0.2.1", port)}
        if certificate is not None:
            self._extra["ssl_object"] = _PeerCertificate(certificate)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.received += data

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self._lose()

    def abort(self) -> None:
        self._lose()

    def _lose(self) -> None:
        if not self.closed:
            self.closed = True
            protocol = self.protocol
            if protocol is not None:  # as a real transport does: on a later loop turn
                asyncio.get_running_loop().call_soon(protocol.connection_lost, None)


class MemoryClient:
    """The client end of an in-memory connection: packets in, packets out."""

    def __init__(self, pair: BrokerPair, conn: MQTTConnection, transport: MemoryTransport,
                 version: int) -> None:
        self.pair = pair
        self.conn = conn
        self.transport = transport
        self.version = version
        self._decoder = PacketDecoder(version=version)
        self._ids = itertools.count(1)
        self._unread: list[Packet] = []
        self.connack: Connack | None = None

    # -- sending -------------------------------------------------------------------------

    def send(self, *packets: Packet) -> None:
        """Hand ``packets`` to the broker in one read."""
        self.conn.data_received(b"".join(encode(p, self.version) for p in packets))

    async def publish(self, topic: str, payload: bytes = b"", qos: int = 0,
                      retain: bool = False, properties: Properties | None = None) -> int | None:
        """Send a PUBLISH; returns its packet id (``None`` for QoS 0)."""
        packet_id = next(self._ids) if qos else None
        self.send(Publish(topic, payload, qos, retain, packet_id=packet_id,
                          properties=properties or NO_PROPERTIES))
        await self.pair.settle()
        return packet_id

    async def subscribe(self, topic_filter: str, qos: int = 0) -> Suback:
        self.send(Subscribe(next(self._ids), (Subscription(topic_filter, qos),)))
        got: list[Suback] = []
        for _ in range(100):  # the SUBACK waits for the journal's commit
            await self.pair.settle()
            got += self.take(Suback)
            if got:
                break
            await asyncio.sleep(0.01)
        (suback,) = got
        return suback

    async def disconnect(self, packet: Disconnect | None = None) -> None:
        self.send(packet or Disconnect())
        await self.pair.settle()

    def drop(self) -> None:
        """The network connection is lost (no DISCONNECT)."""
        self.transport.abort()

    # -- receiving -----------------------------------------------------------------------

    def packets(self) -> list[Packet]:
        """Every packet the broker sent since the last call."""
        self._decoder.feed(bytes(self.transport.received))
        self.transport.received.clear()
        got, self._unread = self._unread, []
        got.extend(iter(self._decoder.next_packet, None))
        return got

    def take(self, *kinds: type) -> list[Any]:
        """The packets the broker sent since the last call, which must all be ``kinds``."""
        got = self.packets()
        assert all(isinstance(p, kinds) for p in got), f"unexpected packets: {got}"
        return got

    def messages(self) -> list[Publish]:
        return self.take(Publish)

    @property
    def closed(self) -> bool:
        return self.transport.closed

    @property
    def reading(self) -> bool:
        """Whether the broker reads this client (False: held back by flow control)."""
        return self.transport.reading

    async def ack(self, *publishes: Publish) -> None:
        self.send(*(Puback(p.packet_id or 0) for p in publishes))
        await self.pair.settle()


class BrokerPair:
    """A :class:`Broker` on a :class:`ManualClock` and the in-memory clients of a test."""

    def __init__(self, *, limits: BrokerLimits | None = None,
                 authenticator: Authenticator | None = None,
                 authorizer: Authorizer | None = None,
                 open_by_default: bool = True,
                 directory: DirectoryFactory | None = None) -> None:
        """``open_by_default``: without an explicit authenticator/authorizer, opt in to
        :class:`AcceptVerifiedCertificates` and :class:`AllowAll` (False: the broker's own
        defaults). ``directory``: builds the session directory (default: in memory)."""
        self.clock = ManualClock(datetime.fromtimestamp(1_700_000_000, UTC), monotonic=1000.0)
        if open_by_default:
            authenticator = authenticator or AcceptVerifiedCertificates()
            authorizer = authorizer or AllowAll()
        self.broker = Broker(limits=limits, authenticator=authenticator,
                             authorizer=authorizer, clock=self.clock, directory=directory)
        self._limits = server_limits(self.broker)
        self._ports = itertools.count(40000)

    async def settle(self, *, durable: bool = True) -> None:
        """Let the loop run what is ready (CONNECT handling, flushes, closes); with a
        durable directory (and ``durable``), also until what was journaled is committed
        and the acknowledgements waiting for it went out."""
        for _ in range(SETTLE_STEPS):
            await asyncio.sleep(0)
        waiting = self.broker.durable() if durable else None
        if waiting is not None:
            await asyncio.wait_for(waiting, 10)
            for _ in range(SETTLE_STEPS):
                await asyncio.sleep(0)

    def open(self, *, certificate: bytes | None = b"device", version: int = MQTT_5
             ) -> MemoryClient:
        """A new network connection, before CONNECT. ``certificate``: the DER the TLS
        handshake verified (any bytes; None for a plaintext listener)."""
        transport = MemoryTransport(certificate, next(self._ports))
        conn = MQTTConnection(self.broker, "mqtts", self._limits)
        transport.protocol = conn
        conn.connection_made(transport)  # type: ignore[arg-type]
        return MemoryClient(self, conn, transport, version)

    async def connect(self, client_id: str, *, version: int = MQTT_5, clean_start: bool = True,
                      keep_alive: int = 0, will: Will | None = None,
                      session_expiry: int | None = None, certificate: bytes = b"device",
                      expect: bool = True) -> MemoryClient:
        """Open a connection and send CONNECT; its CONNACK is in ``connack`` (with
        ``expect``, it must accept), what followed it waits for :meth:`MemoryClient.packets`."""
        client = self.open(certificate=certificate, version=version)
        properties = Properties() if version != MQTT_5 else Properties(
            session_expiry_interval=session_expiry)
        client.send(Connect(client_id, version, clean_start, keep_alive, will=will,
                            properties=properties))
        await self.settle()
        got = client.packets()
        assert got and isinstance(got[0], Connack), f"no CONNACK: {got}"
        client.connack = got[0]
        client._unread = got[1:]
        if expect:
            assert client.connack.reason_code.value == 0, client.connack
        return client

    def certificate_id(self, certificate: bytes = b"device") -> str:
        return hashlib.sha256(certificate).hexdigest()


def run(scenario: Callable[[BrokerPair], Awaitable[None]], **options: Any) -> None:
    """Run ``scenario`` with a fresh :class:`BrokerPair` on a new event loop."""

    async def main() -> None:
        pair = BrokerPair(**options)
        try:
            await scenario(pair)
        finally:
            await pair.broker.close()

    asyncio.run(main())
