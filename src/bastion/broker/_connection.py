"""The asyncio side of one MQTT network connection.

Theory of operation
-------------------
:class:`MQTTConnection` is an ``asyncio.Protocol``: bytes from the transport go into the
sans-IO :class:`bastion.mqtt.ServerConnection`, which returns validated packets; replies are
encoded by it and written back. Everything with policy or shared state (sessions, routing,
authorization) is the business of the connection's host, the :class:`~bastion.broker.Broker`,
which this module knows only as the small :class:`ConnectionHost` protocol; this class only
translates. The host changes a connection only through its methods (:meth:`accept`,
:meth:`refuse`, :meth:`close`, :meth:`end_by_client`, and the flow-control calls of the
session's :class:`~bastion.broker._session.Link` protocol, which this class implements).

CONNECT needs the authenticator and authorizer, which may await. While that runs, reading
is paused and any packet already decoded behind the CONNECT waits in ``_backlog``; it is
processed, in order, right after the CONNACK.

Writes are coalesced: everything written during one event-loop step is joined and handed
to the transport once (``_flush``), which saves a syscall per message under fan-out.

Timers (on the host's clock): one for the CONNECT deadline; then the keep-alive wheel's
deadline, re-armed lazily from the time of the last complete packet (a client trickling
single bytes does not keep itself alive).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ..clock import Clock, Timer
from ..mqtt import (
    MQTT_5,
    Connect,
    ConnectionState,
    Disconnect,
    Packet,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    RemoteProtocolError,
    ServerConnection,
    ServerLimits,
    encode,
)
from ._events import DisconnectReason
from ._keepalive import KeepAliveWheel
from ._limits import BrokerLimits
from ._message import Message
from ._plugs import KeyIdentity, Principal
from ._session import Session

log = logging.getLogger("bastion.broker")

_NO_BACKLOG: list[Packet] = []  # shared while not connecting; never appended to
# Acknowledgements and pings are handled at once even while a connection is held back
# (draining a congested peer depends on them); everything else waits in order.
_NEVER_HELD = (Puback, Pubrec, Pubrel, Pubcomp, Pingreq)


class ConnectionHost(Protocol):
    """What a connection needs of the broker it serves."""

    limits: BrokerLimits
    clock: Clock
    keep_alive: KeepAliveWheel

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the host cancels when it closes."""
        ...

    def connection_opened(self, conn: MQTTConnection) -> None: ...

    def connection_closed(self, conn: MQTTConnection) -> None:
        """``conn`` is gone: detach its session (will, expiry)."""
        ...

    async def handle_connect(self, conn: MQTTConnection, connect: Connect) -> bool:
        """Authenticate and attach a session; True once :meth:`MQTTConnection.accept` ran,
        False after :meth:`MQTTConnection.refuse`."""
        ...

    def handle_packet(self, conn: MQTTConnection, packet: Packet) -> None:
        """One packet of an accepted connection.

        :raises RemoteProtocolError: the client broke the protocol; the connection closes.
        """
        ...

    def protocol_error(self) -> None:
        """Count one connection closed for a protocol violation."""
        ...


class MQTTConnection(asyncio.Protocol):
    """One client connection. Created by the listener for every accepted socket."""

    __slots__ = (
        "_backlog",
        "_connecting",
        "_flush_scheduled",
        "_held",
        "_keep_alive_timeout",
        "_key",
        "_last_packet",
        "_loop",
        "_monotonic",
        "_out",
        "_read_held",
        "_timer",
        "client_id",
        "client_initiated",
        "client_receive_maximum",
        "closed",
        "connacked",
        "disconnect_reason",
        "held_dropped",
        "holds",
        "host",
        "keep_alive_slot",
        "listener_name",
        "paused",
        "principal",
        "proto",
        "protocol_version",
        "publish_will",
        "replies",
        "routed",
        "served",
        "served_at",
        "session",
        "transport",
        "unflushed",
    )

    def __init__(self, host: ConnectionHost, listener_name: str, limits: ServerLimits, *,
                 key: KeyIdentity | None = None) -> None:
        """
        :param key: the access key a WebSocket upgrade was signed with (the connection's
            principal is that key, not a client certificate); see ``_websocket.py``.
        """
        self.host = host
        self._monotonic: Callable[[], float] = host.clock.monotonic
        self.listener_name = listener_name
        self.proto = ServerConnection(limits)
        self.transport: asyncio.Transport | None = None
        self.principal: Principal | None = None
        self._key = key
        self.session: Session | None = None
        self.client_id = ""
        self.protocol_version = 4
        self.client_receive_maximum = 65535
        self.closed = False
        self.connacked = False
        self.disconnect_reason = DisconnectReason.CONNECTION_LOST
        self.client_initiated = False
        self.publish_will = True
        self._connecting = False
        self._backlog: list[Packet] = _NO_BACKLOG  # a list of its own while connecting
        self._out: list[bytes] = []
        self.unflushed = 0  # bytes in _out
        self._flush_scheduled = False
        self._timer: Timer | None = None  # the CONNECT deadline
        self.keep_alive_slot = 0  # see KeepAliveWheel
        self._keep_alive_timeout = 0.0
        self._last_packet = 0.0
        self._loop = asyncio.get_running_loop()
        self.paused = False
        # Flow control (see Session): while held, PUBLISH packets wait here.
        self.holds = 0
        self._read_held = False  # reading paused by holds (not by CONNECT handling)
        self._held: deque[Packet] | None = None  # created when first needed
        self.held_dropped = 0
        # Acknowledgements waiting for the commit that makes them true (see Broker._reply):
        # (commit number, packet), in the order the client is owed them.
        self.replies: deque[tuple[int, Packet]] | None = None
        # What the router notes when this connection publishes (see Session.may_hold).
        self.routed = 0
        self.served: object | None = None
        self.served_at = 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's SSL transport is not an asyncio.Transport subclass, but has its API.
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        ip, port = str(peer[0]), int(peer[1])
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if self._key is not None:
            self.principal = Principal("", b"", ip, port, key=self._key)
        elif ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            if not der:  # cannot happen with CERT_REQUIRED; refuse rather than trust
                self.abort(DisconnectReason.AUTH_ERROR)
                return
            self.principal = Principal.from_certificate(der, ip, port)
        else:
            self.principal = Principal("", b"", ip, port)
        self._timer = self.host.clock.call_later(self.host.limits.connect_timeout,
                                                 self._connect_deadline)
        self.host.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            packets = self.proto.receive_data(data)
        except RemoteProtocolError as exc:
            self._protocol_violation(exc)
            return
        if not packets:
            return
        self._last_packet = self._monotonic()
        if self._connecting:
            self._backlog += packets
            return
        self._dispatch(packets)

    def _dispatch(self, packets: list[Packet]) -> None:
        host = self.host
        for index, packet in enumerate(packets):
            if self.closed:
                return
            if (self.holds or self._held) and not isinstance(packet, _NEVER_HELD):
                self._hold_back(packet)  # in order behind the PUBLISHes that wait
                continue
            if isinstance(packet, Connect):
                self._connecting = True
                self._backlog = packets[index + 1:]
                self.transport.pause_reading()  # type: ignore[union-attr]
                host.spawn(self._handle_connect(packet))
                return
            try:
                host.handle_packet(self, packet)
            except RemoteProtocolError as exc:
                self._protocol_violation(exc)
                return

    async def _handle_connect(self, connect: Connect) -> None:
        self.protocol_version = connect.protocol_version
        self.client_id = connect.client_id
        try:
            accepted = await self.host.handle_connect(self, connect)
        except Exception:
            log.exception("CONNECT handling failed for client %r", connect.client_id)
            self.refuse(connect, ReasonCode.UNSPECIFIED_ERROR, DisconnectReason.SERVER_ERROR)
            return
        if not accepted or self.closed:
            return
        self._connecting = False
        self.client_receive_maximum = self.proto.client_receive_maximum
        keep_alive = self.proto.keep_alive
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if keep_alive:
            self._keep_alive_timeout = keep_alive * 1.5
            self._last_packet = now = self._monotonic()
            self.host.keep_alive.watch(self, now + self._keep_alive_timeout)
        backlog, self._backlog = self._backlog, _NO_BACKLOG
        if backlog:
            self._dispatch(backlog)
        if not self.closed:
            self.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.host.keep_alive.unwatch(self)
        self.host.connection_closed(self)

    def pause_writing(self) -> None:
        """The socket's send buffer is past its high-water mark: the client reads slower
        than we write. Subscribers' sessions treat this as congestion (see Session)."""
        self.paused = True
        self.keep_reading()

    def resume_writing(self) -> None:
        self.paused = False
        session = self.session
        if session is not None and session.connection is self:
            session.writable()

    # -- flow control --------------------------------------------------------------------

    def hold(self) -> None:
        """The broker holds this publisher back (a subscriber it alone serves paces it, or
        every queue together is over its memory budget; counted per holder).

        Reading stops, so TCP slows the client down, unless this connection's own session
        is congested or has deliveries queued (draining them takes its acknowledgements);
        PUBLISH packets already read wait in ``_held``.
        """
        self.holds += 1
        session = self.session
        if self._read_held or self.paused or self.closed or self.transport is None or (
                session is not None and (session.queue or session.congested())):
            return
        self._read_held = True
        self.transport.pause_reading()

    def keep_reading(self) -> None:
        """Undo a hold's pause of reading (the holds stay; PUBLISH packets wait in
        ``_held``). Called when this connection's own output backs up: a congested
        connection must always be read, since draining it takes its acknowledgements, and
        a client that publishes and subscribes from one thread may be blocked in a write
        until we read."""
        if self._read_held:
            self._read_held = False
            if not self.closed:
                self.transport.resume_reading()  # type: ignore[union-attr]

    def release(self) -> None:
        self.holds -= 1
        if self.holds or self.closed:
            return
        if self._held:
            # Reading resumes once what waits is processed (_drain_held): resumed first,
            # the socket's backlog (megabytes: libuv reads up to 32 times per event)
            # would arrive before the drain and overflow _held.
            self._loop.call_soon(self._drain_held)
        else:
            self._resume_held_reading()

    def _resume_held_reading(self) -> None:
        if self._read_held and not self.holds and not self.closed:
            self._read_held = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    def _hold_back(self, packet: Packet) -> None:
        # While reading is paused, what waits here is what one read brought (bounded by
        # the read size), so all of it is kept. A held connection that is still read (its
        # own session is congested, see keep_reading) keeps at most max_queued_messages;
        # what it sends beyond is dropped and counted (QoS 0 is at most once; a QoS 1/2
        # message dropped here was never acknowledged, so its sender knows).
        held = self._held
        if held is None:
            held = self._held = deque()
        if (isinstance(packet, Publish) and not self._read_held
                and len(held) >= self.host.limits.max_queued_messages):
            self.held_dropped += 1
            return
        held.append(packet)

    def _drain_held(self) -> None:
        held = self._held
        if held is None:
            return
        while held and not self.holds and not self.closed:
            try:
                self.host.handle_packet(self, held.popleft())
            except RemoteProtocolError as exc:
                self._protocol_violation(exc)
                return
        if not held:
            self._resume_held_reading()

    # -- timers --------------------------------------------------------------------------

    def _connect_deadline(self) -> None:
        self._timer = None
        if self.proto.state is ConnectionState.AWAITING_CONNECT and not self.closed:
            log.info("closing %s: no CONNECT within %.0f s", self.peer,
                     self.host.limits.connect_timeout)
            self.abort(DisconnectReason.CLIENT_ERROR)

    def keep_alive_due(self) -> None:
        """Called by the broker's keep-alive wheel when this connection's deadline came."""
        if self.closed:
            return
        last = self._last_packet
        now = self._monotonic()
        idle = now - last
        if self.holds:  # we are not reading it: its silence is ours
            self.host.keep_alive.watch(self, now + self._keep_alive_timeout)
            return
        if idle >= self._keep_alive_timeout:
            log.info("client %r: keep-alive timeout (%.1f s idle)", self.client_id, idle)
            self.close(ReasonCode.KEEP_ALIVE_TIMEOUT, DisconnectReason.MQTT_KEEP_ALIVE_TIMEOUT)
            return
        self.host.keep_alive.watch(self, last + self._keep_alive_timeout)

    # -- writing -------------------------------------------------------------------------

    @property
    def peer(self) -> str:
        p = self.principal
        return f"{p.source_ip}:{p.source_port}" if p else "?"

    def fits(self, data: bytes) -> bool:
        """Whether ``data`` respects the client's MQTT 5 Maximum Packet Size."""
        limit = self.proto.client_maximum_packet_size
        return limit is None or len(data) <= limit

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        self._out.append(data)
        self.unflushed += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def write_qos0(self, message: Message, retain: bool, subscription_ids: tuple[int, ...]) -> bool:
        """Queue a QoS 0 delivery; False (dropped) when the client is not keeping up."""
        if self.closed:
            return False
        transport = self.transport
        if self.paused and transport is not None and (
            transport.get_write_buffer_size() > self.host.limits.max_write_buffer_bytes
        ):
            return False
        data = message.encode_for(self.protocol_version, 0, retain, None, subscription_ids,
                                  self._monotonic)
        if data is None or not self.fits(data):  # expired, or larger than the client takes
            return False
        self.write(data)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out or self.transport is None or self.closed:
            out.clear()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.unflushed = 0
        self.transport.write(data)
        session = self.session
        if not self.paused and session is not None and session.holding and (
                session.connection is self):
            # Held back for output that had not been flushed yet; the socket took it.
            session.writable()

    def send_packet(self, packet: Packet) -> None:
        """Encode ``packet`` through the protocol state and write it."""
        if self.closed:
            return
        self.write(self.proto.send(packet))

    # -- CONNECT and closing --------------------------------------------------------------

    def accept(self, connect: Connect, session: Session, principal: Principal,
               client_id: str, session_present: bool, assigned_client_id: str | None) -> None:
        """The host accepted ``connect``: ``session`` (already attached to this connection)
        serves it as ``client_id``; the CONNACK goes out. ``principal`` is the one the host
        bound (without the certificate's bytes)."""
        self.session = session
        self.principal = principal
        self.client_id = client_id
        connack = self.proto.connack_for(connect, session_present=session_present,
                                         assigned_client_id=assigned_client_id)
        self.write(self.proto.send(connack))
        self.connacked = True

    def end_by_client(self, *, with_will: bool) -> None:
        """The client sent DISCONNECT: close without a will unless it asked for one."""
        self.client_initiated = True
        self.publish_will = with_will
        self.abort(DisconnectReason.CLIENT_INITIATED_DISCONNECT)

    def refuse(self, connect: Connect, code: ReasonCode, reason: DisconnectReason) -> None:
        """Answer a CONNECT with an error CONNACK and close."""
        if self.closed:
            return
        self.publish_will = False
        self.disconnect_reason = reason
        try:
            connack = self.proto.connack_for(connect, session_present=False, reason_code=code)
            self.write(self.proto.send(connack))
        except Exception:  # the state machine may already be closed
            log.debug("could not send refusing CONNACK", exc_info=True)
        self._close_transport()

    def close(self, code: ReasonCode, reason: DisconnectReason, *, will: bool = True) -> None:
        """Server-initiated close: MQTT 5 clients get a DISCONNECT with ``code`` first."""
        if self.closed:
            return
        self.disconnect_reason = reason
        self.publish_will = will
        if self.protocol_version == MQTT_5 and self.connacked:
            # Encoded directly: the protocol state may already be closed by a violation.
            self.write(encode(Disconnect(code), MQTT_5))
        self._close_transport()

    def abort(self, reason: DisconnectReason) -> None:
        self.disconnect_reason = reason
        self._close_transport()

    def abort_transport(self) -> None:
        """Drop the connection without a closing handshake (shutdown of the broker)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _close_transport(self) -> None:
        if self.closed:
            return
        self._flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _protocol_violation(self, exc: RemoteProtocolError) -> None:
        log.info("closing %s (client %r): protocol violation: %s [%s]", self.peer,
                 self.client_id, exc, exc.reason_code.name)
        self.host.protocol_error()
        # The protocol state knows what the peer may still be told: a refusing CONNACK,
        # an MQTT 5 DISCONNECT with the reason code, or nothing (3.1.1).
        self.write(self.proto.error_response(exc))
        self.disconnect_reason = DisconnectReason.CLIENT_ERROR
        self._close_transport()
