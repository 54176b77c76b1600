"""Sessions: the state MQTT keeps for a client id across network connections.

Theory of operation
-------------------
A :class:`Session` outlives its connections when the client asked for it (MQTT 5
session expiry > 0, or 3.1.1 ``clean session = 0``). It owns the client's subscriptions,
the outbound QoS 1/2 flow (packet ids, the in-flight window, the queue behind it) and the
inbound QoS 2 packet ids still waiting for PUBREL.

Outbound flow: :meth:`Session.deliver` either writes the message to the live connection at
once (QoS 0; or QoS 1/2 while the in-flight window has room) or queues it (QoS 1/2 only;
QoS 0 for an absent or congested client is dropped and counted). An acknowledgement frees a
window slot and pulls the next queued message. When a connection attaches to an existing
session, every in-flight message is resent (PUBLISH with DUP, or PUBREL), then the queue
drains. Message bytes are encoded once per (protocol version, QoS, retain flag) on the
:class:`Message` and patched with the packet id, so fan-out does not re-encode.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..mqtt import (
    MQTT_5,
    NO_PROPERTIES,
    Properties,
    RetainHandling,
    Will,
    encode_publish,
    with_packet_id,
)
from ._plugs import Action, Principal, SessionPermissions, TopicTally

if TYPE_CHECKING:
    from ._connection import MQTTConnection


class Message:
    """One application message on its way through the broker.

    Mutable only in its private encode cache; the fields themselves never change.
    ``expires_at`` is a ``time.monotonic()`` deadline (MQTT 5 message expiry) or ``None``.
    """

    __slots__ = (
        "_encoded",
        "expires_at",
        "origin",
        "payload",
        "properties",
        "qos",
        "received_at",
        "retain",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: Properties = NO_PROPERTIES,
        origin: str | None = None,
        expires_at: float | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.origin = origin
        self.expires_at = expires_at
        self.received_at = 0.0  # epoch seconds; set for retained messages when stored
        self._encoded: dict[tuple[int, int, bool], bytes] = {}

    def encoded(self, version: int, qos: int, retain: bool) -> bytes:
        """PUBLISH bytes for this message; for QoS > 0 the packet id is a placeholder."""
        key = (version, qos, retain)
        data = self._encoded.get(key)
        if data is None:
            props = self.properties if version == MQTT_5 else NO_PROPERTIES
            data = encode_publish(self.topic, self.payload, qos, retain,
                                  1 if qos else None, version, props)
            self._encoded[key] = data
        return data

    def encode_for(
        self, version: int, qos: int, retain: bool, packet_id: int | None,
        subscription_ids: tuple[int, ...], dup: bool = False,
    ) -> bytes | None:
        """The PUBLISH bytes for one delivery, or ``None`` when the message has expired."""
        if self.expires_at is not None or (subscription_ids and version == MQTT_5):
            props = self.properties
            if self.expires_at is not None:
                remaining = self.expires_at - time.monotonic()
                if remaining <= 0:
                    return None
                if version == MQTT_5:
                    props = _replace(props, message_expiry_interval=max(1, int(remaining)))
            if version == MQTT_5:
                if subscription_ids:
                    props = _replace(props, subscription_identifiers=subscription_ids)
            else:
                props = NO_PROPERTIES
            return encode_publish(self.topic, self.payload, qos, retain, packet_id, version,
                                  props, dup)
        data = self.encoded(version, qos, retain)
        if packet_id is not None:
            return with_packet_id(data, packet_id, dup)
        return data


def _replace(props: Properties, **changes: object) -> Properties:
    from dataclasses import replace

    return replace(props, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: RetainHandling = RetainHandling.SEND_ON_SUBSCRIBE
    subscription_id: int | None = None


class Outgoing:
    """An in-flight outbound QoS 1/2 message. ``released`` once PUBREC arrived (QoS 2)."""

    __slots__ = ("message", "qos", "released", "retain", "sent_at", "subscription_ids")

    def __init__(self, message: Message, qos: int, retain: bool,
                 subscription_ids: tuple[int, ...]) -> None:
        self.message = message
        self.qos = qos
        self.retain = retain
        self.subscription_ids = subscription_ids
        self.released = False
        self.sent_at = 0.0


class Session:
    """MQTT session state for one client id. See the module docstring."""

    def __init__(self, client_id: str, principal: Principal, max_inflight: int,
                 max_queued: int) -> None:
        self.client_id = client_id
        self.principal = principal
        self.session_id = str(uuid.uuid4())
        self.subscriptions: dict[str, SubscriptionOptions] = {}
        self.expiry_interval = 0
        self.connection: MQTTConnection | None = None
        self.permissions: SessionPermissions | None = None
        self.will: Will | None = None
        self.will_handle: object | None = None
        self.expiry_handle: object | None = None
        self.inflight: dict[int, Outgoing] = {}
        self.queue: deque[tuple[Message, int, bool, tuple[int, ...]]] = deque()
        self.inbound_qos2: set[int] = set()
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.dropped = 0
        # Traffic counters, plain integers sampled by Detect each interval (cloud-side
        # metrics aws:num-messages-sent/-received, aws:message-byte-size,
        # aws:num-authorization-failures). "Sent" is from the device's point of view.
        self.messages_sent = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.authorization_failures = 0
        # Per-topic-filter counters (Detect's TOPIC_FILTER dimensions), set by Detect
        # only on sessions a profile with such a dimension targets; None costs nothing.
        self.topic_tally: TopicTally | None = None
        # Flow control: publishers held back while this session is congested.
        self.holding: set[MQTTConnection] = set()
        self.high_water = max(1, max_inflight)
        self.low_water = max(0, max_inflight // 4)
        self._next_id = 1
        self._decisions: dict[tuple[Action, str], bool] = {}

    # -- authorization -------------------------------------------------------------------

    def allowed(self, action: Action, resource: str) -> bool:
        """Cached decision for ``action`` on ``resource``; no permissions means deny."""
        key = (action, resource)
        decision = self._decisions.get(key)
        if decision is None:
            permissions = self.permissions
            decision = permissions is not None and permissions.check(action, resource)
            if len(self._decisions) > 4096:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def set_permissions(self, permissions: SessionPermissions | None) -> None:
        self.permissions = permissions
        self._decisions.clear()

    # -- outbound flow -------------------------------------------------------------------

    def _allocate_id(self) -> int:
        pid = self._next_id
        inflight = self.inflight
        while pid in inflight:
            pid = pid % 65535 + 1
        self._next_id = pid % 65535 + 1
        return pid

    def window(self) -> int:
        conn = self.connection
        if conn is None:
            return 0
        return min(self.max_inflight, conn.client_receive_maximum)

    def deliver(self, message: Message, qos: int, retain: bool,
                subscription_ids: tuple[int, ...] = ()) -> None:
        """Send or queue one delivery of ``message`` at ``qos`` (already downgraded)."""
        conn = self.connection
        self.messages_received += 1
        if self.topic_tally is not None:
            self.topic_tally.received(message.topic, len(message.payload))
        if qos == 0:
            if conn is None or not conn.write_qos0(message, retain, subscription_ids):
                self.dropped += 1
            return
        if conn is not None and not self.queue and len(self.inflight) < self.window():
            self._send_new(conn, message, qos, retain, subscription_ids)
            return
        if len(self.queue) >= self.max_queued:
            self.dropped += 1
            return
        self.queue.append((message, qos, retain, subscription_ids))

    def _send_new(self, conn: MQTTConnection, message: Message, qos: int, retain: bool,
                  subscription_ids: tuple[int, ...]) -> None:
        pid = self._allocate_id()
        data = message.encode_for(conn.protocol_version, qos, retain, pid, subscription_ids)
        if data is None or not conn.fits(data):
            # Expired while queued, or larger than the client's Maximum Packet Size: the
            # spec has the server discard it as if it had been delivered.
            self.dropped += 1
            return
        out = Outgoing(message, qos, retain, subscription_ids)
        out.sent_at = time.monotonic()
        self.inflight[pid] = out
        conn.write(data)

    def pump(self) -> None:
        """Move queued messages into the in-flight window while it has room."""
        conn = self.connection
        if conn is None:
            return
        window = self.window()
        queue = self.queue
        while queue and len(self.inflight) < window:
            message, qos, retain, sub_ids = queue.popleft()
            self._send_new(conn, message, qos, retain, sub_ids)
        if self.holding:
            self.release_if_drained()

    # -- flow control --------------------------------------------------------------------
    #
    # A live subscriber that cannot keep up (its QoS 1/2 queue behind the in-flight window
    # is past the high-water mark) holds back the connections publishing to it: they keep reading and acknowledging, but their next
    # PUBLISH packets wait unprocessed (and unacknowledged, so QoS 1/2 publishers slow
    # down to the subscriber's pace) until the subscriber drains below the low-water
    # mark. Nothing is lost and memory stays bounded; acknowledgements are never held, so
    # two clients publishing to each other cannot deadlock. An offline session never
    # holds anyone back: its queue is bounded by ``max_queued`` and drops beyond. QoS 0
    # never holds anyone: a subscriber whose socket buffer is full loses QoS 0 messages
    # (at most once), exactly as MQTT allows.

    def congested(self) -> bool:
        return self.connection is not None and len(self.queue) >= self.high_water

    def hold(self, publisher: MQTTConnection) -> None:
        if publisher is self.connection or publisher in self.holding:
            return
        self.holding.add(publisher)
        publisher.hold()

    def release_if_drained(self) -> None:
        if self.connection is not None and len(self.queue) > self.low_water:
            return
        self.release_all()

    def release_all(self) -> None:
        holding, self.holding = self.holding, set()
        for publisher in holding:
            publisher.release()

    def acknowledge(self, packet_id: int) -> bool:
        """PUBACK or PUBCOMP from the client: the delivery is complete."""
        if self.inflight.pop(packet_id, None) is None:
            return False
        self.pump()
        return True

    def received(self, packet_id: int) -> bool:
        """PUBREC from the client: QoS 2 delivery moves to the PUBREL step."""
        out = self.inflight.get(packet_id)
        if out is None or out.qos != 2:
            return False
        out.released = True
        return True

    def resend_inflight(self) -> None:
        """Called when a connection (re)attaches: resend PUBLISH (DUP) / PUBREL in order."""
        conn = self.connection
        if conn is None:
            return
        from ..mqtt import Pubrel

        for pid, out in list(self.inflight.items()):
            out.sent_at = time.monotonic()
            if out.released:
                conn.send_packet(Pubrel(pid))
                continue
            data = out.message.encode_for(conn.protocol_version, out.qos, out.retain, pid,
                                          out.subscription_ids, dup=True)
            if data is None:
                del self.inflight[pid]
                continue
            conn.write(data)
        self.pump()

    def clear_flow(self) -> None:
        self.inflight.clear()
        self.queue.clear()
        self.inbound_qos2.clear()
