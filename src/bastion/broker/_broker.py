"""The broker: sessions, routing, retained and will messages, and the security hooks.

Theory of operation
-------------------
Single asyncio thread. :class:`MQTTConnection` objects feed decoded packets to
:meth:`Broker.handle_packet` (synchronous: the message path never awaits) and CONNECTs to
:meth:`Broker.handle_connect` (async: authentication and policy binding may do I/O).

CONNECT: authenticate the TLS principal → bind its permissions → ``iot:Connect`` on the
client id → take over any live connection with the same client id (the new one wins, as in
AWS IoT) → resume or create the session → CONNACK → resend in-flight messages.

PUBLISH: limits → ``iot:Publish`` (and ``iot:RetainPublish``) → reserved-topic handlers
(``$aws/...`` services) → retained store → routing. Routing looks the topic up in the
subscription index, merges overlapping subscriptions of one client (highest QoS, all
subscription identifiers), checks ``iot:Receive`` per recipient from the session's decision
cache, and hands one delivery per session to :meth:`Session.deliver`.

Security changes reach the broker as registry events on the bus; :mod:`bastion.enforcement`
turns each into :meth:`Broker.drop_sessions` or :meth:`Broker.reauthorize_sessions`, so a
revoked certificate loses its connection at once and a policy change applies to the next
message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

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
    Properties,
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
from ._plugs import (
    AcceptVerifiedCertificates,
    Action,
    AllowAll,
    AuthenticationError,
    Authenticator,
    Authorizer,
)
from ._retained import RetainedStore
from ._session import Message, Session, SubscriptionOptions
from ._subscriptions import SubscriptionIndex

log = logging.getLogger("bastion.broker")

SUCCESS = ReasonCode.SUCCESS


class ReservedTopicHandler(Protocol):
    """A service answering PUBLISHes on reserved topics (``$aws/things/…/shadow/…``)."""

    def handles(self, topic: str) -> bool: ...

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        """Handle a publish the client was allowed to send; True means "consumed"
        (not routed to subscribers)."""
        ...


@dataclass(slots=True)
class BrokerStats:
    connections: int = 0
    messages_in: int = 0
    authorization_denied: int = 0
    protocol_errors: int = 0


class Broker:
    """The MQTT broker core. Listeners are attached by :mod:`bastion.broker._listener`."""

    def __init__(
        self,
        *,
        limits: BrokerLimits | None = None,
        authenticator: Authenticator | None = None,
        authorizer: Authorizer | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.limits = limits or BrokerLimits()
        self.authenticator: Authenticator = authenticator or AcceptVerifiedCertificates()
        self.authorizer: Authorizer = authorizer or AllowAll()
        self.bus: EventBus = bus or InProcessBus()
        self.sessions: dict[str, Session] = {}
        self.connections: set[MQTTConnection] = set()
        self.subscriptions: SubscriptionIndex[str, SubscriptionOptions] = SubscriptionIndex()
        self.retained: RetainedStore[Message] = RetainedStore()
        self.reserved_handlers: list[ReservedTopicHandler] = []
        self.stats = BrokerStats()
        self.keep_alive = KeepAliveWheel()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._drained: asyncio.Event | None = None
        self.lifecycle = LifecycleEvents(self.bus, self.publish)

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
        if not self.connections and self._drained is not None:
            self._drained.set()
        session = conn.session
        if session is None or session.connection is not conn:
            return
        session.connection = None
        if session.holding:
            session.release_all()  # an offline session holds nobody back
        loop = asyncio.get_running_loop()
        now = time.time()
        self.bus.publish(ClientDisconnected(
            conn.client_id, session.principal.certificate_id, session.session_id,
            conn.disconnect_reason, conn.client_initiated, now))
        will = session.will
        session.will = None
        if will is not None and conn.publish_will and not self._closing:
            delay = will.properties.will_delay_interval or 0
            if delay and session.expiry_interval:
                delay = min(delay, session.expiry_interval)
                session.will_handle = loop.call_later(delay, self._publish_will, session, will)
            else:
                self._publish_will(session, will)
        if session.expiry_interval == 0:
            self._discard_session(session)
        elif session.expiry_interval < 0xFFFFFFFF:
            session.expiry_handle = loop.call_later(
                session.expiry_interval, self._expire_session, session)

    def _publish_will(self, session: Session, will: Will) -> None:
        session.will_handle = None
        if not session.allowed(Action.PUBLISH, will.topic):
            self._denied(session, Action.PUBLISH, will.topic)
            return
        if will.retain and not session.allowed(Action.RETAIN_PUBLISH, will.topic):
            self._denied(session, Action.RETAIN_PUBLISH, will.topic)
            return
        props = will.properties
        message = Message(will.topic, will.payload, will.qos, will.retain,
                          _message_properties(props), session.client_id,
                          _expiry_deadline(props))
        self.publish(message, sender=session)

    def _expire_session(self, session: Session) -> None:
        session.expiry_handle = None
        if session.connection is None and self.sessions.get(session.client_id) is session:
            self._discard_session(session)

    def _discard_session(self, session: Session) -> None:
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        self.subscriptions.remove_all(session.client_id)
        session.subscriptions.clear()
        session.clear_flow()
        for handle in (session.expiry_handle, session.will_handle):
            if handle is not None:
                handle.cancel()  # type: ignore[attr-defined]
        session.expiry_handle = session.will_handle = None

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
            import uuid

            client_id = assigned = "bastion-" + uuid.uuid4().hex
            conn.client_id = client_id
        if len(client_id.encode()) > limits.max_client_id_bytes:
            return self._refuse(conn, connect, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                                "client id too long")
        try:
            principal = await self.authenticator.authenticate(principal, connect)
            permissions = await self.authorizer.bind(principal, client_id)
        except AuthenticationError as exc:
            return self._refuse(conn, connect, exc.reason_code, str(exc),
                                DisconnectReason.AUTH_ERROR)
        if conn.closed:
            return False
        principal = principal.connected()
        conn.principal = principal
        if not permissions.check(Action.CONNECT, client_id):
            self.stats.authorization_denied += 1
            self.bus.publish(AuthorizationDenied(client_id, principal.certificate_id,
                                                 Action.CONNECT.value, client_id, time.time()))
            return self._refuse(conn, connect, ReasonCode.NOT_AUTHORIZED,
                                "iot:Connect denied", DisconnectReason.AUTH_ERROR)
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

        # Take over a live connection with the same client id (the new one wins).
        existing = self.sessions.get(client_id)
        if existing is not None and existing.connection is not None:
            old = existing.connection
            log.info("client %r: session taken over by a new connection from %s",
                     client_id, conn.peer)
            old.close(ReasonCode.SESSION_TAKEN_OVER, DisconnectReason.DUPLICATE_CLIENTID)
            # connection_lost runs later; detach now so the new connection owns the session
            self.connection_closed_now(old)
        existing = self.sessions.get(client_id)
        if existing is not None and (connect.clean_start
                                     or existing.principal.certificate_id
                                     != principal.certificate_id):
            # A clean start, or another identity: never hand one principal's queued
            # messages to another.
            self._discard_session(existing)
            existing = None
        session_present = existing is not None
        if existing is None:
            session = Session(client_id, principal, limits.max_inflight_messages,
                              limits.max_queued_messages)
            self.sessions[client_id] = session
        else:
            session = existing
            session.principal = principal
            for attr in ("expiry_handle", "will_handle"):
                handle = getattr(session, attr)
                if handle is not None:
                    handle.cancel()
                    setattr(session, attr, None)
        session.set_permissions(permissions)
        session.will = connect.will
        expiry = conn.proto.session_expiry_interval
        if connect.protocol_version != MQTT_5 and not connect.clean_start:
            expiry = limits.default_session_expiry
        session.expiry_interval = min(expiry, limits.max_session_expiry)
        session.connection = conn
        conn.session = session
        conn.client_id = client_id

        connack = conn.proto.connack_for(connect, session_present=session_present,
                                         assigned_client_id=assigned)
        conn.write(conn.proto.send(connack))
        conn.connacked = True
        self.bus.publish(ClientConnected(
            client_id, principal.certificate_id, principal.source_ip, principal.source_port,
            session.session_id, connect.protocol_version, connect.clean_start, time.time()))
        if session_present:
            session.resend_inflight()
        return True

    def connection_closed_now(self, conn: MQTTConnection) -> None:
        """Run the closing bookkeeping for ``conn`` immediately (takeover, drop)."""
        if conn.session is not None and conn.session.connection is conn:
            self.connection_closed(conn)
            conn.session = None

    def _refuse(self, conn: MQTTConnection, connect: Connect, code: ReasonCode, why: str,
                reason: DisconnectReason = DisconnectReason.CLIENT_ERROR) -> bool:
        principal = conn.principal
        log.info("refused CONNECT from %s (client %r): %s", conn.peer, connect.client_id, why)
        self.bus.publish(ConnectRefused(connect.client_id,
                                        principal.certificate_id if principal else "",
                                        principal.source_ip if principal else "", why,
                                        time.time()))
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
            pending = session.inbound_qos2
            found = pending is not None and packet.packet_id in pending
            if found:
                pending.discard(packet.packet_id)  # type: ignore[union-attr]
            code = SUCCESS if found else ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
            conn.send_packet(Pubcomp(packet.packet_id, code))
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
        conn.client_initiated = True
        conn.disconnect_reason = DisconnectReason.CLIENT_INITIATED_DISCONNECT
        conn.publish_will = packet.reason_code is ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
        if conn.protocol_version == MQTT_5:
            requested = packet.properties.session_expiry_interval
            if requested is not None:
                if session.expiry_interval == 0 and requested != 0:
                    raise RemoteProtocolError("session expiry set at DISCONNECT after 0")
                session.expiry_interval = min(requested, self.limits.max_session_expiry)
        conn.abort(DisconnectReason.CLIENT_INITIATED_DISCONNECT)

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
        self.stats.messages_in += 1
        session.messages_sent += 1
        session.bytes_sent += len(packet.payload)
        topic = packet.topic
        if session.topic_tally is not None:
            session.topic_tally.sent(topic, len(packet.payload))
        qos = packet.qos
        if len(packet.payload) > self.limits.max_payload_bytes:
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
            conn.send_packet(Pubrec(pid))
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
                conn.send_packet(Puback(pid, ReasonCode.NOT_AUTHORIZED))
            elif qos == 2:
                conn.send_packet(Pubrec(pid, ReasonCode.NOT_AUTHORIZED))
            return
        props = packet.properties
        message = Message(topic, packet.payload, qos, packet.retain,
                          _message_properties(props) if props is not NO_PROPERTIES else props,
                          session.client_id, _expiry_deadline(props),
                          None if packet.retain or packet.dup else packet.raw)
        matched = self.publish(message, sender=session)
        if qos == 1:
            code = SUCCESS if matched or conn.protocol_version != MQTT_5 \
                else ReasonCode.NO_MATCHING_SUBSCRIBERS
            conn.send_packet(Puback(pid, code))
        elif qos == 2:
            if session.inbound_qos2 is None:
                session.inbound_qos2 = set()
            session.inbound_qos2.add(pid)
            code = SUCCESS if matched or conn.protocol_version != MQTT_5 \
                else ReasonCode.NO_MATCHING_SUBSCRIBERS
            conn.send_packet(Pubrec(pid, code))

    def _denied(self, session: Session, action: Action, resource: str) -> None:
        self.stats.authorization_denied += 1
        session.authorization_failures += 1
        log.info("client %r: %s denied on %r", session.client_id, action.value, resource)
        self.bus.publish(AuthorizationDenied(session.client_id,
                                             session.principal.certificate_id,
                                             action.value, resource, time.time()))

    def publish(self, message: Message, *, sender: Session | None = None) -> bool:
        """Route ``message`` to subscribers (and the retained store, and reserved handlers).

        Returns whether any subscription matched. ``sender`` is None for messages the
        broker itself originates (lifecycle events, service replies).
        """
        topic = message.topic
        if sender is not None and topic.startswith("$aws/"):
            for handler in self.reserved_handlers:
                if handler.handles(topic) and handler.on_publish(self, sender, message):
                    return True
        if message.retain:
            if message.payload:
                message.received_at = time.time()
                self.retained.set(topic, message)
            else:
                self.retained.delete(topic)
        matches = self.subscriptions.match(topic)
        if not matches:
            return False
        sessions = self.sessions
        origin = message.origin
        publisher = sender.connection if sender is not None else None
        if len(matches) == 1:
            client_id, opts = matches[0]
            session = sessions.get(client_id)
            if session is not None:
                self._deliver(session, message, opts, origin)
                if publisher is not None and session.congested():
                    session.hold(publisher)
            return True
        merged: dict[str, tuple[int, bool, list[int]]] = {}
        for client_id, opts in matches:
            if opts.no_local and client_id == origin:
                continue
            entry = merged.get(client_id)
            sub_id = [opts.subscription_id] if opts.subscription_id else []
            if entry is None:
                merged[client_id] = (opts.qos, opts.retain_as_published, sub_id)
            else:
                entry[2].extend(sub_id)
                merged[client_id] = (max(entry[0], opts.qos), entry[1] or opts.retain_as_published,
                                     entry[2])
        for client_id, (sub_qos, rap, sub_ids) in merged.items():
            session = sessions.get(client_id)
            if session is None:
                continue
            if not session.allowed(Action.RECEIVE, topic):
                self._denied(session, Action.RECEIVE, topic)
                continue
            qos = min(sub_qos, message.qos)
            session.deliver(message, qos, message.retain and rap, tuple(sub_ids))
            if publisher is not None and session.congested():
                session.hold(publisher)
        return True

    def _deliver(self, session: Session, message: Message, opts: SubscriptionOptions,
                 origin: str | None) -> None:
        if opts.no_local and session.client_id == origin:
            return
        topic = message.topic
        allowed = session.receive_allowed.get(topic)
        if allowed is None:
            allowed = session.allowed(Action.RECEIVE, topic)
        if not allowed:
            self._denied(session, Action.RECEIVE, topic)
            return
        qos = min(opts.qos, message.qos)
        sub_ids = (opts.subscription_id,) if opts.subscription_id else ()
        session.deliver(message, qos, message.retain and opts.retain_as_published, sub_ids)

    # -- SUBSCRIBE / UNSUBSCRIBE --------------------------------------------------------

    def _on_subscribe(self, conn: MQTTConnection, session: Session, packet: Subscribe) -> None:
        limits = self.limits
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
            session.subscriptions[topic_filter] = opts
            self.subscriptions.add(topic_filter, session.client_id, opts)
            codes.append(ReasonCode(qos))
            granted.append(topic_filter)
            if shared is None and (
                sub.retain_handling is RetainHandling.SEND_ON_SUBSCRIBE
                or (sub.retain_handling is RetainHandling.SEND_IF_NEW_SUBSCRIPTION and is_new)
            ):
                retained_to_send.append((topic_filter, opts, is_new))
        if not v5:
            codes = [c if not c.is_error else ReasonCode.UNSPECIFIED_ERROR for c in codes]
        conn.send_packet(Suback(packet.packet_id, tuple(codes)))
        if granted:
            self.bus.publish(Subscribed(session.client_id, session.principal.certificate_id,
                                        session.session_id, tuple(granted), time.time()))
        for topic_filter, opts, _ in retained_to_send:
            for topic, message in self.retained.match(topic_filter):
                if message.expires_at is not None and message.expires_at <= time.monotonic():
                    self.retained.delete(topic)
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
            if session.subscriptions.pop(topic_filter, None) is not None:
                self.subscriptions.remove(topic_filter, session.client_id)
                codes.append(SUCCESS)
                removed.append(topic_filter)
            else:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
        conn.send_packet(Unsuback(packet.packet_id, tuple(codes)))
        if removed:
            self.bus.publish(Unsubscribed(session.client_id, session.principal.certificate_id,
                                          session.session_id, tuple(removed), time.time()))

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
            conn = session.connection
            if conn is not None:
                log.info("client %r: dropped (%s)", session.client_id, reason)
                conn.close(ReasonCode.NOT_AUTHORIZED, DisconnectReason.AUTH_ERROR, will=False)
                self.connection_closed_now(conn)
            self._discard_session(session)
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
            for handle in (session.expiry_handle, session.will_handle):
                if handle is not None:
                    handle.cancel()  # type: ignore[attr-defined]
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


def _message_properties(props: Properties) -> Properties:
    """The properties of an incoming PUBLISH or will that travel with the message."""
    if props is NO_PROPERTIES:
        return props
    return Properties(
        payload_format_indicator=props.payload_format_indicator,
        content_type=props.content_type,
        response_topic=props.response_topic,
        correlation_data=props.correlation_data,
        user_properties=props.user_properties,
    )


def _expiry_deadline(props: Properties) -> float | None:
    interval = props.message_expiry_interval
    return None if interval is None else time.monotonic() + interval
