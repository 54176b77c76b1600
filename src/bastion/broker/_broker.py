"""The broker: CONNECT, the packets of a connected client, and the security hooks.

Theory of operation
-------------------
Single asyncio thread. The broker keeps no session, subscription or retained message of
its own: they live in a :class:`~bastion.broker._directory.SessionDirectory`. It is the
host of every :class:`MQTTConnection` (through the small ``ConnectionHost`` protocol the
connection is handed): connections feed it decoded packets (:meth:`Broker.handle_packet`,
synchronous: the message path never awaits) and CONNECTs (:meth:`Broker.handle_connect`,
async: authentication and policy binding may do I/O). The broker changes connections and
sessions only through their methods.

CONNECT: authenticate the TLS principal -> bind its permissions -> ``iot:Connect`` on the
client id -> take over any live connection with the same client id (the new one wins, as in
AWS IoT) -> the directory resumes or creates the session -> ``Session.attach`` -> CONNACK ->
resend in-flight messages.

PUBLISH, one way: connection -> :meth:`Broker.handle_packet` (limits, ``iot:Publish`` and
``iot:RetainPublish`` from the sending session's decision cache) -> :meth:`Broker.publish`
(reserved-topic handlers, retained store) -> :meth:`Router.route` (subscriptions,
``iot:Receive``) -> each recipient's :meth:`Session.deliver` -> its connection's bytes, or
its own bounded queue. The acknowledgement goes back to the publisher after routing, once
what it acknowledges is durable (:meth:`Broker._reply`; at once without a durable
directory). A recipient that cannot keep up paces a publisher only when that publisher
serves nobody else (``Session`` flow control); the memory budget of all queues together
(``QueueBudget``) holds every publisher alike.

Disconnection: a session whose connection ended (or was taken over or dropped) is detached;
its will is published, at once or after the MQTT 5 will delay (cancelled by a reconnect),
and the session is discarded at once (expiry interval 0) or when its expiry timer fires.
Every timer runs on the broker's :class:`bastion.clock.Clock`.

Security changes reach the broker as registry events on the bus; :mod:`bastion.enforcement`
turns each into :meth:`Broker.drop_sessions` or :meth:`Broker.reauthorize_sessions`, so a
revoked certificate loses its connection at once and a policy change applies to the next
message.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from ..clock import Clock, SystemClock
from ..events import EventBus, InProcessBus
from ..mqtt import (
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    RemoteProtocolError,
    RetainHandling,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    Will,
    parse_shared_subscription,
    validate_topic_filter,
)
from ._connection import MQTTConnection
from ._directory import Denied, MemorySessionDirectory, RetainedMessages, SessionDirectory
from ._events import (
    AuthorizationDenied,
    ClientConnected,
    ClientDisconnected,
    ConnectRefused,
    DisconnectReason,
    Subscribed,
    Unsubscribed,
)
from ._keepalive import KeepAliveWheel
from ._lifecycle import LifecycleEvents
from ._limits import BrokerLimits
from ._message import Message, SubscriptionOptions, expiry_deadline, message_properties
from ._plugs import (
    LOG_INFO,
    Action,
    AuthenticationError,
    Authenticator,
    Authorizer,
    DenyAll,
    Principal,
    RefuseAll,
    SessionPermissions,
)
from ._session import NEVER_EXPIRES, Link, QueueBudget, QueueFull, Session

log = logging.getLogger("bastion.broker")

SUCCESS = ReasonCode.SUCCESS


class Ownership(Protocol):
    """Who owns a client id when several brokers serve one fleet (``bastion.cluster``).

    :meth:`claim` runs in every CONNECT before the session is opened: it makes this node
    the owner, has the previous owner hand the session over, and brings what the store
    holds of it into this node's directory. :meth:`released` is told when this node no
    longer holds a session for the client id.
    """

    async def claim(self, client_id: str, principal: Principal,
                    permissions: SessionPermissions) -> None:
        """:param principal: who connects; :param permissions: what it may do, bound to
        a session brought here for it, so that what reaches it meanwhile is checked."""
        ...

    def released(self, client_id: str) -> None: ...


class Relay(Protocol):
    """Where a cluster node sends what is published here, for the other nodes' subscribers
    (``bastion.cluster``)."""

    def send(self, message: Message) -> None: ...

    def streams(self, message: Message) -> bool:
        """Whether ``message`` goes through the cluster's durable stream, from which this
        node too delivers it to its persistent sessions (``Broker.publish_remote`` with
        ``own``); the broker then routes it here only to the others."""
        ...

    @property
    def budget(self) -> QueueBudget:
        """What waits to leave for the other nodes; while it is over its limit, the broker
        holds back each connection that publishes, as for the queues' budget."""
        ...


def _transient(session: Session) -> bool:
    """Whether ``session`` writes nothing down (clean, or no durable directory)."""
    return session.journal is None


def _persistent(session: Session) -> bool:
    return session.journal is not None


class ReservedTopicHandler(Protocol):
    """A service answering PUBLISHes on reserved topics (``$aws/things/…/shadow/…``)."""

    def handles(self, topic: str) -> bool: ...

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        """Handle a publish the client was allowed to send; True means "consumed"
        (not routed to subscribers)."""
        ...


class MessageTap(Protocol):
    """Sees every message that enters :meth:`Broker.publish` on this node: a client's
    PUBLISH once authorized (including reserved topics, before their handler), a
    message the broker or a service originates (lifecycle events, shadow answers, API
    publishes). Called on the message path: must be cheap, must not block, must not
    raise (the rules engine queues what it wants and returns)."""

    def accepted(self, message: Message, sender: Session | None) -> None: ...


DirectoryFactory = Callable[[BrokerLimits, Clock, Denied, QueueFull], SessionDirectory]
"""Builds the broker's session directory, given its limits, clock and two callbacks."""

QUEUE_FULL_LOG_INTERVAL = 60.0
"""Seconds between two log lines about one session's full queue (each drop is counted)."""


@dataclass(slots=True)
class BrokerStats:
    """The broker's plain counters (``/metrics`` reads them, with the directory's
    :class:`~bastion.broker._session.Traffic`)."""

    connections: int = 0
    messages_in: int = 0
    messages_in_by_qos: list[int] = field(default_factory=lambda: [0, 0, 0])
    bytes_in: int = 0
    """Payload bytes of the PUBLISH packets received."""
    tls_handshake_failures: dict[str, int] = field(default_factory=dict)
    """TLS handshakes that failed on the listeners, by reason (see ``_tls.py``)."""
    authorization_denied: int = 0
    protocol_errors: int = 0
    queue_full_drops: int = 0
    """Deliveries dropped because a session's queue was at its cap."""
    retained_refused: int = 0
    """Retained publishes refused (or not retained) at the retained-message cap."""


class Broker:
    """The MQTT broker core. Listeners are attached by :mod:`bastion.broker._listener`.

    Secure by default: without an ``authenticator`` every CONNECT is refused, and without
    an ``authorizer`` nothing is allowed (so CONNECT is refused too), both with
    NOT_AUTHORIZED. Pass :class:`AcceptVerifiedCertificates` and :class:`AllowAll` to
    open it on purpose (tests, benchmarks).

    :param directory: builds where sessions, subscriptions and retained messages live; by
        default a :class:`MemorySessionDirectory`.
    :param clock: every timer and deadline of the broker; by default the event loop's.
    """

    def __init__(
        self,
        *,
        limits: BrokerLimits | None = None,
        authenticator: Authenticator | None = None,
        authorizer: Authorizer | None = None,
        bus: EventBus | None = None,
        clock: Clock | None = None,
        directory: DirectoryFactory | None = None,
    ) -> None:
        self.limits = limits or BrokerLimits()
        self.authenticator: Authenticator = authenticator or RefuseAll()
        self.authorizer: Authorizer = authorizer or DenyAll()
        self.bus: EventBus = bus or InProcessBus()
        self.clock: Clock = clock or SystemClock()
        self.directory: SessionDirectory = (directory or MemorySessionDirectory)(
            self.limits, self.clock, self._denied, self._queue_full)
        self._route = self.directory.route
        self._budget = self.directory.budget
        self._pending = self.directory.pending
        self._queue_full_logged: dict[str, float] = {}
        self.connections: set[MQTTConnection] = set()
        self.reserved_handlers: list[ReservedTopicHandler] = []
        self.taps: list[MessageTap] = []
        """Who sees every accepted message (the rules engine); see :class:`MessageTap`."""
        self.stats = BrokerStats()
        self.keep_alive = KeepAliveWheel(self.clock)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._drained: asyncio.Event | None = None
        self.lifecycle = LifecycleEvents(self.bus, self.publish)
        self.ownership: Ownership | None = None
        """None on a single node: every client id is this broker's."""
        self.relay: Relay | None = None
        """None on a single node: messages stay here."""

    @property
    def sessions(self) -> Mapping[str, Session]:
        """Every session by client id (live, or offline until it expires); read-only."""
        return self.directory.sessions

    @property
    def retained(self) -> RetainedMessages:
        """The retained messages, by topic."""
        return self.directory.retained

    # -- task and connection bookkeeping ------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def connection_opened(self, conn: MQTTConnection) -> None:
        self.connections.add(conn)
        self.stats.connections += 1

    def connection_closed(self, conn: MQTTConnection) -> None:
        self.connections.discard(conn)
        self._budget.forget(conn)
        if self.relay is not None:
            self.relay.budget.forget(conn)
        if not self.connections and self._drained is not None:
            self._drained.set()
        session = conn.session
        if session is not None:
            self._detach(session, conn)

    def protocol_error(self) -> None:
        """A connection closed for a protocol violation of its client (counted)."""
        self.stats.protocol_errors += 1

    def _detach(self, session: Session, link: Link) -> None:
        """``link`` ended (lost, taken over, dropped): detach it from ``session``, then
        the will and the session's expiry. Nothing happens when ``link`` is no longer the
        session's connection (a takeover or drop detached it already)."""
        if not session.detach(link):
            return
        self.bus.publish(ClientDisconnected(
            link.client_id, session.principal.certificate_id, session.session_id,
            link.disconnect_reason, link.client_initiated, self.clock.time()))
        will = session.take_will()
        if will is not None and link.publish_will and not self._closing:
            delay = will.properties.will_delay_interval or 0
            if delay and session.expiry_interval:
                session.arm_will(min(delay, session.expiry_interval), self._publish_will,
                                 will)
            else:
                self._publish_will(session, will)
        if session.expiry_interval == 0:
            self._discard(session)
            return
        if session.expiry_interval < NEVER_EXPIRES:
            session.arm_expiry(self._expire_session)
        self.directory.save(session)

    def _publish_will(self, session: Session, will: Will) -> None:
        if session.journal is not None:
            self.directory.save(session)  # the will is spent
        if not session.allowed(Action.PUBLISH, will.topic):
            self._denied(session, Action.PUBLISH, will.topic)
            return
        if will.retain and not session.allowed(Action.RETAIN_PUBLISH, will.topic):
            self._denied(session, Action.RETAIN_PUBLISH, will.topic)
            return
        props = will.properties
        message = Message(will.topic, will.payload, will.qos, will.retain,
                          message_properties(props), session.client_id,
                          expiry_deadline(props, self.clock.monotonic))
        self.publish(message, sender=session)

    def _expire_session(self, session: Session) -> None:
        if session.connection is None and self.directory.get(session.client_id) is session:
            self._discard(session)

    def _discard(self, session: Session) -> None:
        """Forget ``session`` (and, in a cluster, give up its client id if no other session
        of it is held here)."""
        self.directory.discard(session)
        if self.ownership is not None and self.directory.get(session.client_id) is None:
            self.ownership.released(session.client_id)

    def give_up(self, client_id: str,
                code: ReasonCode = ReasonCode.SESSION_TAKEN_OVER) -> Session | None:
        """Another node owns ``client_id`` now (or this node can no longer prove it owns
        it): close its live connection here (MQTT 5: DISCONNECT with ``code``, 0x8E by
        default, as a takeover), and drop its session from memory without forgetting
        what the store holds (the new owner reads it). Returns the session."""
        session = self.directory.get(client_id)
        if session is None:
            return None
        link = session.connection
        if link is not None:
            log.info("client %r: session given up (%s)", client_id, code.name)
            link.close(code, DisconnectReason.DUPLICATE_CLIENTID
                       if code is ReasonCode.SESSION_TAKEN_OVER
                       else DisconnectReason.SERVER_INITIATED_DISCONNECT)
            self._detach(session, link)
        if self.directory.get(client_id) is session:
            self.directory.hand_over(session)
        return session

    # -- CONNECT ------------------------------------------------------------------------

    async def handle_connect(self, conn: MQTTConnection, connect: Connect) -> bool:
        """Authenticate, authorize and attach a session. Returns True when accepted."""
        limits = self.limits
        principal = conn.principal
        assert principal is not None
        client_id = connect.client_id
        assigned: str | None = None
        if not client_id:
            if not connect.clean_start:
                return self._refuse(conn, connect, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                                    "empty client id with a persistent session")
            client_id = assigned = "bastion-" + uuid.uuid4().hex
        if len(client_id.encode()) > limits.max_client_id_bytes:
            return self._refuse(conn, connect, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                                "client id too long")
        try:
            principal = await self.authenticator.authenticate(principal, connect)
            permissions = await self.authorizer.bind(principal, client_id)
        except AuthenticationError as exc:
            return self._refuse(conn, connect, exc.reason_code, str(exc),
                                DisconnectReason.AUTH_ERROR)
        except Exception as exc:  # noqa: BLE001 - the registry (its database) is unreachable
            log.warning("client %r: the registry is unavailable (%s: %s); CONNECT refused "
                        "with server unavailable", client_id, type(exc).__name__, exc)
            return self._refuse(conn, connect, ReasonCode.SERVER_UNAVAILABLE,
                                "registry unavailable", DisconnectReason.SERVER_ERROR)
        if conn.closed:
            return False
        principal = principal.connected()
        if not permissions.check(Action.CONNECT, client_id):
            self.stats.authorization_denied += 1
            self.bus.publish(AuthorizationDenied(client_id, principal.certificate_id,
                                                 Action.CONNECT.value, client_id,
                                                 self.clock.time()))
            return self._refuse(conn, connect, ReasonCode.NOT_AUTHORIZED,
                                "iot:Connect denied", DisconnectReason.AUTH_ERROR, principal)
        if connect.will is not None:
            will = connect.will
            if len(will.payload) > limits.max_payload_bytes:
                return self._refuse(conn, connect, ReasonCode.PACKET_TOO_LARGE,
                                    "will payload too large")
            if not self._topic_within_limits(will.topic):
                return self._refuse(conn, connect, ReasonCode.TOPIC_NAME_INVALID,
                                    "will topic exceeds limits")
            if will.qos > limits.maximum_qos:
                return self._refuse(conn, connect, ReasonCode.QOS_NOT_SUPPORTED,
                                    "will QoS not supported")

        if self.ownership is not None:
            try:
                await self.ownership.claim(client_id, principal, permissions)
            except Exception as exc:  # noqa: BLE001 - the registry is unreachable
                log.warning("client %r: the session registry is unavailable: %s", client_id,
                            exc)
                return self._refuse(conn, connect, ReasonCode.SERVER_UNAVAILABLE,
                                    "session registry unavailable",
                                    DisconnectReason.SERVER_ERROR)
            if conn.closed:
                return False
        # Take over a live connection with the same client id (the new one wins).
        existing = self.directory.get(client_id)
        if existing is not None and existing.connection is not None:
            old = existing.connection
            log.info("client %r: session taken over by a new connection from %s",
                     client_id, conn.peer)
            old.close(ReasonCode.SESSION_TAKEN_OVER, DisconnectReason.DUPLICATE_CLIENTID)
            # Its connection_lost comes later; detach now so the new connection owns it.
            self._detach(existing, old)
        # A clean start, or another identity, gets a new session: never hand one
        # principal's queued messages to another.
        session, session_present = self.directory.open(
            client_id, principal, clean_start=connect.clean_start)
        expiry = conn.proto.session_expiry_interval
        if connect.protocol_version != MQTT_5 and not connect.clean_start:
            expiry = limits.default_session_expiry
        session.attach(conn, principal, permissions, connect.will,
                       min(expiry, limits.max_session_expiry))
        self.directory.save(session)
        conn.accept(connect, session, principal, client_id, session_present, assigned)
        log.info("client %r connected from %s (certificate %s, MQTT %s, %s session)",
                 client_id, conn.peer, (principal.certificate_id or "-")[:12],
                 "5.0" if connect.protocol_version == MQTT_5 else "3.1.1",
                 "resumed" if session_present else "new")
        self.bus.publish(ClientConnected(
            client_id, principal.certificate_id, principal.source_ip, principal.source_port,
            session.session_id, connect.protocol_version, connect.clean_start,
            self.clock.time()))
        if session_present:
            session.resend_inflight()
        return True

    def _refuse(self, conn: MQTTConnection, connect: Connect, code: ReasonCode, why: str,
                reason: DisconnectReason = DisconnectReason.CLIENT_ERROR,
                principal: Principal | None = None) -> bool:
        principal = principal or conn.principal
        log.info("refused CONNECT from %s (client %r): %s", conn.peer, connect.client_id, why)
        self.bus.publish(ConnectRefused(connect.client_id,
                                        principal.certificate_id if principal else "",
                                        principal.source_ip if principal else "", why,
                                        self.clock.time(),
                                        principal.source_port if principal else 0, reason))
        conn.refuse(connect, code, reason)
        return False

    # -- packets after CONNECT ----------------------------------------------------------

    def handle_packet(self, conn: MQTTConnection, packet: Packet) -> None:
        """Dispatch one packet from a connected client.

        :raises RemoteProtocolError: the client broke the protocol; the caller closes.
        """
        session = conn.session
        if session is None:
            raise RemoteProtocolError("packet before the session was established")
        if isinstance(packet, Publish):
            self._on_publish(conn, session, packet)
        elif isinstance(packet, Puback):
            session.acknowledge(packet.packet_id)
        elif isinstance(packet, Pubrec):
            if packet.reason_code.is_error:
                session.acknowledge(packet.packet_id)
            elif session.received(packet.packet_id):
                conn.send_packet(Pubrel(packet.packet_id))
            else:
                conn.send_packet(Pubrel(packet.packet_id,
                                        ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))
        elif isinstance(packet, Pubrel):
            code = SUCCESS if session.release_inbound(packet.packet_id) \
                else ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
            self._reply(conn, Pubcomp(packet.packet_id, code))
        elif isinstance(packet, Pubcomp):
            session.acknowledge(packet.packet_id)
        elif isinstance(packet, Subscribe):
            self._on_subscribe(conn, session, packet)
        elif isinstance(packet, Unsubscribe):
            self._on_unsubscribe(conn, session, packet)
        elif isinstance(packet, Pingreq):
            conn.send_packet(Pingresp())
        elif isinstance(packet, Disconnect):
            self._on_disconnect(conn, session, packet)
        elif isinstance(packet, Auth):
            raise RemoteProtocolError("re-authentication is not supported",
                                      ReasonCode.BAD_AUTHENTICATION_METHOD)
        else:
            raise RemoteProtocolError(f"unexpected {type(packet).__name__}")

    def _on_disconnect(self, conn: MQTTConnection, session: Session, packet: Disconnect) -> None:
        if conn.protocol_version == MQTT_5:
            requested = packet.properties.session_expiry_interval
            if requested is not None:
                if session.expiry_interval == 0 and requested != 0:
                    raise RemoteProtocolError("session expiry set at DISCONNECT after 0")
                session.set_expiry_interval(min(requested, self.limits.max_session_expiry))
        conn.end_by_client(
            with_will=packet.reason_code is ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)

    def _topic_within_limits(self, topic: str) -> bool:
        limits = self.limits
        size = len(topic)  # characters: a lower bound of the UTF-8 size, 4x an upper bound
        if size > limits.max_topic_bytes or (
            size * 4 > limits.max_topic_bytes and len(topic.encode()) > limits.max_topic_bytes
        ):
            return False
        levels = topic.count("/") + 1
        if levels > limits.max_topic_levels:
            if topic.startswith("$aws/rules/"):
                # AWS does not count the "$aws/rules/<rule>/" prefix.
                levels -= 3
            if levels > limits.max_topic_levels:
                return False
        return True

    def _on_publish(self, conn: MQTTConnection, session: Session, packet: Publish) -> None:
        stats = self.stats
        stats.messages_in += 1
        topic = packet.topic
        size = len(packet.payload)
        session.count_sent(topic, size)
        qos = packet.qos
        stats.messages_in_by_qos[qos] += 1
        stats.bytes_in += size
        if size > self.limits.max_payload_bytes:
            raise RemoteProtocolError("payload exceeds the limit", ReasonCode.PACKET_TOO_LARGE)
        # A topic with a cached publish decision has passed the limits before.
        allowed = session.publish_allowed.get(topic)
        if allowed is None:
            if not self._topic_within_limits(topic):
                raise RemoteProtocolError("topic exceeds the limits",
                                          ReasonCode.TOPIC_NAME_INVALID)
            allowed = session.allowed(Action.PUBLISH, topic)
        pid = packet.packet_id or 0  # the codec guarantees an id when qos > 0
        if qos == 2 and session.inbound_qos2 and pid in session.inbound_qos2:
            # Retransmission of a QoS 2 message we already accepted: acknowledge only.
            self._reply(conn, Pubrec(pid))
            return
        if allowed and packet.retain:
            allowed = session.allowed(Action.RETAIN_PUBLISH, topic)
        if not allowed:
            action = Action.PUBLISH if not session.allowed(Action.PUBLISH, topic) \
                else Action.RETAIN_PUBLISH
            self._denied(session, action, topic)
            if conn.protocol_version != MQTT_5:
                # AWS IoT closes a 3.1.1 connection that publishes where it may not.
                conn.close(ReasonCode.NOT_AUTHORIZED, DisconnectReason.AUTH_ERROR)
                return
            if qos == 1:
                self._reply(conn, Puback(pid, ReasonCode.NOT_AUTHORIZED))
            elif qos == 2:
                self._reply(conn, Pubrec(pid, ReasonCode.NOT_AUTHORIZED))
            return
        if (packet.retain and packet.payload and conn.protocol_version == MQTT_5
                and not self._may_retain(topic)):
            if qos == 1:
                self._reply(conn, Puback(pid, ReasonCode.QUOTA_EXCEEDED))
            elif qos == 2:
                self._reply(conn, Pubrec(pid, ReasonCode.QUOTA_EXCEEDED))
            return
        if session.log_level <= LOG_INFO:
            session.message_log.publish_in(session, topic, qos)
        props = packet.properties
        if props is NO_PROPERTIES:
            message = Message(topic, packet.payload, qos, packet.retain, props,
                              session.client_id, None,
                              None if packet.retain or packet.dup else packet.raw)
        else:
            message = Message(topic, packet.payload, qos, packet.retain,
                              message_properties(props), session.client_id,
                              expiry_deadline(props, self.clock.monotonic),
                              None if packet.retain or packet.dup else packet.raw)
        matched = self.publish(message, sender=session)
        if self._budget.over:
            # Every session's queue together is over its memory budget: hold this
            # publisher back (as every other one that publishes meanwhile) until they drain.
            self._budget.hold(conn)
        relay = self.relay
        if relay is not None and relay.budget.over:
            relay.budget.hold(conn)  # the same, for what waits to leave for other nodes
        if qos == 1:
            code = SUCCESS if matched or conn.protocol_version != MQTT_5 \
                else ReasonCode.NO_MATCHING_SUBSCRIBERS
            self._reply(conn, Puback(pid, code))
        elif qos == 2:
            session.await_release(pid)
            code = SUCCESS if matched or conn.protocol_version != MQTT_5 \
                else ReasonCode.NO_MATCHING_SUBSCRIBERS
            self._reply(conn, Pubrec(pid, code))

    # -- acknowledgements wait for durability ---------------------------------------------

    def _reply(self, conn: MQTTConnection, packet: Packet) -> None:
        """Send an acknowledgement once what it acknowledges is durable (at once with a
        memory directory), never ahead of an earlier one of the same connection."""
        waiting = conn.replies
        number = self._pending()
        if waiting is None:
            if number is None:
                conn.send_packet(packet)
                return
            waiting = conn.replies = deque()
            self.directory.when_durable(number, partial(self._send_replies, conn, number))
        elif number is None or number < waiting[-1][0]:
            number = waiting[-1][0]
        waiting.append((number, packet))

    def _send_replies(self, conn: MQTTConnection, durable: int) -> None:
        waiting = conn.replies
        if waiting is None:
            return
        while waiting and waiting[0][0] <= durable:
            conn.send_packet(waiting.popleft()[1])
        if waiting:
            number = waiting[0][0]
            self.directory.when_durable(number, partial(self._send_replies, conn, number))
        else:
            conn.replies = None

    def durable(self) -> asyncio.Future[None] | None:
        """A future done once every change so far is durable; None when it is already
        (the API answers a publish only then)."""
        number = self._pending()
        if number is None:
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not future.done():
                future.set_result(None)
        self.directory.when_durable(number, done)
        return future

    # -- caps ---------------------------------------------------------------------------

    def _may_retain(self, topic: str) -> bool:
        """Whether a retained message with a payload may be stored on ``topic`` (replacing
        one always may); counted and logged when not."""
        retained = self.directory.retained
        if len(retained) < self.limits.max_retained_messages or retained.get(topic) is not None:
            return True
        self.stats.retained_refused += 1
        log.warning("retained message on %r not kept: %d retained messages is the cap "
                    "(limits.max_retained_messages)", topic, len(retained))
        return False

    def _queue_full(self, session: Session, message: Message) -> None:
        """A session's queue cap dropped a delivery: counted (broker and session), and
        logged at most once a minute per session."""
        self.stats.queue_full_drops += 1
        now = self.clock.monotonic()
        logged = self._queue_full_logged
        last = logged.get(session.client_id)
        if last is None or now - last >= QUEUE_FULL_LOG_INTERVAL:
            if len(logged) > 10_000:
                logged.clear()
            logged[session.client_id] = now
            log.warning("client %r: queue full (%d messages, %d bytes queued); dropping "
                        "deliveries (%d so far); see limits.max_stored_messages, "
                        "max_queued_messages and max_queued_bytes", session.client_id,
                        len(session.queue or ()) + session.spilled, session.queued_bytes,
                        session.dropped)

    def _denied(self, session: Session, action: Action, resource: str) -> None:
        self.stats.authorization_denied += 1
        session.count_denied()
        log.info("client %r: %s denied on %r", session.client_id, action.value, resource)
        self.bus.publish(AuthorizationDenied(session.client_id,
                                             session.principal.certificate_id,
                                             action.value, resource, self.clock.time()))

    def publish(self, message: Message, *, sender: Session | None = None) -> bool:
        """Route ``message`` to subscribers (and the retained store, and reserved handlers).

        Returns whether any subscription matched. ``sender`` is None for messages the
        broker itself originates (lifecycle events, service replies).
        """
        topic = message.topic
        taps = self.taps
        if taps:
            for tap in taps:
                tap.accepted(message, sender)
        if sender is not None and topic.startswith("$aws/"):
            for handler in self.reserved_handlers:
                if handler.handles(topic) and handler.on_publish(self, sender, message):
                    return True
        if message.retain:
            retained = self.directory.retained
            if not message.payload:
                retained.delete(topic)
            elif (sender is not None and sender.connection is not None
                  and sender.connection.protocol_version == MQTT_5) or self._may_retain(topic):
                # (MQTT 5 publishers were refused at the cap already; 3.1.1 ones cannot be
                # told, so their message is routed without being kept, like a will's.)
                message.received_at = self.clock.time()
                retained.set(topic, message)
        relay = self.relay
        if relay is None:
            return self._route(message, sender.connection if sender is not None else None)
        self._route(message, sender.connection if sender is not None else None,
                    _transient if relay.streams(message) else None)
        relay.send(message)
        return True  # subscribers on other nodes are not known here

    def deliver_shared(self, message: Message, share_filter: str) -> None:
        """A message the cluster handed to this node for its members of the shared
        subscription ``share_filter`` (one node of the fleet gets each message)."""
        self.directory.deliver_shared(message, share_filter)

    def publish_remote(self, message: Message, *, own: bool = False,
                       only: str | None = None,
                       skip: frozenset[str] | None = None) -> None:
        """A message another cluster node published (and relayed): deliver it to the
        subscribers here, and keep (or drop) it as retained without writing it down, which
        the node it was published on did.

        :param own: this node published it (it comes back from the cluster's stream):
            deliver it to the persistent sessions only, :meth:`publish` served the rest.
        :param only: deliver it to this client's session alone (a session adopted from
            another node catching up with the stream), retained messages untouched.
        :param skip: client ids not to deliver it to (their previous node did).
        """
        which: Callable[[Session], bool] | None
        if only is not None:
            self._route(message, None, lambda session: session.client_id == only)
            return
        if own:
            which = _persistent if skip is None else (
                lambda session: session.journal is not None and session.client_id not in skip)
            self._route(message, None, which)
            return
        which = None if skip is None else (lambda session: session.client_id not in skip)
        if message.retain:
            retained = self.directory.retained
            if message.payload:
                message.received_at = self.clock.time()
                retained.keep(message.topic, message)
            else:
                retained.drop(message.topic)
        self._route(message, None, which)

    # -- SUBSCRIBE / UNSUBSCRIBE --------------------------------------------------------

    def _on_subscribe(self, conn: MQTTConnection, session: Session, packet: Subscribe) -> None:
        limits = self.limits
        directory = self.directory
        v5 = conn.protocol_version == MQTT_5
        sub_id = packet.properties.subscription_identifiers
        subscription_id = sub_id[0] if sub_id else None
        codes: list[ReasonCode] = []
        granted: list[str] = []
        retained_to_send: list[tuple[str, SubscriptionOptions, bool]] = []
        for index, sub in enumerate(packet.subscriptions):
            topic_filter = sub.topic_filter
            validate_topic_filter(topic_filter)  # malformed filter closes the connection
            if index >= limits.max_filters_per_subscribe:
                codes.append(ReasonCode.QUOTA_EXCEEDED)
                continue
            shared = parse_shared_subscription(topic_filter)
            plain = shared.topic_filter if shared else topic_filter
            if not self._topic_within_limits(plain):
                codes.append(ReasonCode.TOPIC_FILTER_INVALID)
                continue
            if shared is not None and sub.no_local:
                raise RemoteProtocolError("no local on a shared subscription")
            if not session.allowed(Action.SUBSCRIBE, topic_filter):
                self._denied(session, Action.SUBSCRIBE, topic_filter)
                codes.append(ReasonCode.NOT_AUTHORIZED)
                continue
            is_new = topic_filter not in session.subscriptions
            if is_new and len(session.subscriptions) >= limits.max_subscriptions_per_session:
                codes.append(ReasonCode.QUOTA_EXCEEDED)
                continue
            qos = min(sub.qos, limits.maximum_qos)
            opts = SubscriptionOptions(qos, sub.no_local, sub.retain_as_published,
                                       sub.retain_handling, subscription_id)
            directory.subscribe(session, topic_filter, opts)
            codes.append(ReasonCode(qos))
            granted.append(topic_filter)
            if shared is None and (
                sub.retain_handling is RetainHandling.SEND_ON_SUBSCRIBE
                or (sub.retain_handling is RetainHandling.SEND_IF_NEW_SUBSCRIPTION and is_new)
            ):
                retained_to_send.append((topic_filter, opts, is_new))
        if not v5:
            codes = [c if not c.is_error else ReasonCode.UNSPECIFIED_ERROR for c in codes]
        self._reply(conn, Suback(packet.packet_id, tuple(codes)))
        if granted:
            self.bus.publish(Subscribed(session.client_id, session.principal.certificate_id,
                                        session.session_id, tuple(granted),
                                        self.clock.time()))
        retained = directory.retained
        for topic_filter, opts, _ in retained_to_send:
            for topic, message in retained.match(topic_filter):
                if (message.expires_at is not None
                        and message.expires_at <= self.clock.monotonic()):
                    retained.delete(topic)
                    continue
                if not session.allowed(Action.RECEIVE, topic):
                    self._denied(session, Action.RECEIVE, topic)
                    continue
                qos = min(message.qos, opts.qos)
                sub_ids = (opts.subscription_id,) if opts.subscription_id else ()
                session.deliver(message, qos, True, sub_ids)

    def _on_unsubscribe(self, conn: MQTTConnection, session: Session,
                        packet: Unsubscribe) -> None:
        codes: list[ReasonCode] = []
        removed: list[str] = []
        for topic_filter in packet.topic_filters:
            validate_topic_filter(topic_filter)
            if self.directory.unsubscribe(session, topic_filter):
                codes.append(SUCCESS)
                removed.append(topic_filter)
            else:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
        self._reply(conn, Unsuback(packet.packet_id, tuple(codes)))
        if removed:
            self.bus.publish(Unsubscribed(session.client_id, session.principal.certificate_id,
                                          session.session_id, tuple(removed),
                                          self.clock.time()))

    # -- sessions restored after a restart ------------------------------------------------

    async def resume_stored(self, sessions: list[Session]) -> None:
        """Sessions a durable directory read back at start: bind each one's permissions
        (a certificate revoked or deleted meanwhile loses its session, without a will),
        then carry on as if its connection had ended at ``detached_at``: a will due by
        now is published, a session whose expiry has passed is discarded, and the rest
        get their timers."""
        now = self.clock.time()

        async def resume(session: Session) -> None:
            try:
                permissions = await self.authorizer.bind(session.principal,
                                                         session.client_id)
            except AuthenticationError as exc:
                log.info("stored session of %r discarded: %s", session.client_id, exc)
                self._discard(session)
                return
            except Exception:  # kept, without permissions, until its client reconnects
                log.exception("re-binding the stored session of %r failed",
                              session.client_id)
                permissions = None
            session.set_permissions(permissions)
            detached = session.detached_at if session.detached_at is not None else now
            will = session.take_will()
            if will is not None:
                delay = min(will.properties.will_delay_interval or 0, session.expiry_interval)
                if detached + delay > now:
                    session.arm_will(delay, self._publish_will, will,
                                     after=detached + delay - now)
                else:
                    self._publish_will(session, will)
            left = detached + session.expiry_interval - now
            if left <= 0:
                self._discard(session)
                return
            if session.expiry_interval < NEVER_EXPIRES:
                session.arm_expiry(self._expire_session, after=left)
            self.directory.save(session)

        await asyncio.gather(*(resume(session) for session in sessions))

    # -- security events ----------------------------------------------------------------

    def sessions_of(self, certificate_id: str) -> list[Session]:
        return [s for s in self.sessions.values()
                if s.principal.certificate_id == certificate_id]

    def drop_sessions(self, selector: Callable[[Session], bool], reason: str) -> int:
        """Close at once every session ``selector`` picks, and forget it.

        Used when a certificate or its CA stops being ACTIVE: the connection closes
        (MQTT 5: DISCONNECT 0x87), no will is sent for an identity we no longer trust,
        and the session with its queued messages is discarded. Returns the count.
        """
        dropped = 0
        for session in [s for s in self.sessions.values() if selector(s)]:
            dropped += 1
            session.set_permissions(None)
            link = session.connection
            if link is not None:
                log.info("client %r: dropped (%s)", session.client_id, reason)
                link.close(ReasonCode.NOT_AUTHORIZED, DisconnectReason.AUTH_ERROR, will=False)
                self._detach(session, link)
            if self.directory.get(session.client_id) is session:
                self._discard(session)
        return dropped

    def reauthorize_sessions(self, selector: Callable[[Session], bool]) -> int:
        """Re-bind the permissions of every session ``selector`` picks (in the background;
        until the new permissions arrive the old ones apply). Returns the count."""
        picked = [s for s in self.sessions.values() if selector(s)]
        for session in picked:
            self.spawn(self._rebind(session))
        return len(picked)

    async def _rebind(self, session: Session) -> None:
        try:
            permissions = await self.authorizer.bind(session.principal, session.client_id)
        except AuthenticationError as exc:
            if self.sessions.get(session.client_id) is session:
                self.drop_sessions(lambda s: s is session, f"re-check failed: {exc}")
            return
        except Exception:
            log.exception("re-authorizing client %r failed; closing it", session.client_id)
            self.drop_sessions(lambda s: s is session, "re-check error")
            return
        session.set_permissions(permissions)
        conn = session.connection
        if conn is not None and not permissions.check(Action.CONNECT, session.client_id):
            log.info("client %r: iot:Connect no longer allowed", session.client_id)
            conn.close(ReasonCode.NOT_AUTHORIZED, DisconnectReason.AUTH_ERROR)

    # -- shutdown -----------------------------------------------------------------------

    async def close(self) -> None:
        """Disconnect every client (MQTT 5: reason 0x8B) and cancel background work."""
        self._closing = True
        for conn in list(self.connections):
            conn.close(ReasonCode.SERVER_SHUTTING_DOWN,
                       DisconnectReason.SERVER_INITIATED_DISCONNECT, will=False)
        for session in list(self.sessions.values()):
            session.cancel_timers()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Give the closing handshakes a moment, then cut whatever is left.
        if not await self._all_closed(1.0):
            for conn in list(self.connections):
                conn.abort_transport()
            await self._all_closed(1.0)
        self.keep_alive.close()

    async def _all_closed(self, timeout: float) -> bool:
        if self.connections:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                return False
        return True

