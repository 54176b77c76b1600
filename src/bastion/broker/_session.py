"""Sessions: the state MQTT keeps for a client id across network connections.

Theory of operation
-------------------
A :class:`Session` outlives its connections when the client asked for it (MQTT 5
session expiry > 0, or 3.1.1 ``clean session = 0``). It owns the client's subscriptions,
the outbound QoS 1/2 flow (packet ids, the in-flight window, the queue behind it), the
inbound QoS 2 packet ids still waiting for PUBREL, the will of its live connection, and
the two timers of an absent client (will delay, session expiry).

A session knows its live connection only as a :class:`Link`, the few things it writes
to and asks of a connection; it never imports the connection class. A connection is
attached with :meth:`Session.attach` (CONNECT accepted) and detached with
:meth:`Session.detach` (connection lost, taken over or dropped); in between, the session
is "live". Nobody else writes a session's attributes: the broker and the session
directory call its methods.

Outbound flow: :meth:`Session.deliver` either writes the message to the live connection at
once (QoS 0; or QoS 1/2 while the in-flight window has room) or queues it (QoS 1/2 only;
QoS 0 for an absent client, or one whose socket is backed up past
``max_write_buffer_bytes``, is dropped and counted). Each session's queue is its own and
bounded (``max_queued`` in memory; a persistent session's deliveries beyond that are
stored only, up to ``max_stored`` and ``max_queued_bytes``; past the cap a delivery is
dropped, counted and reported to ``queue_full``). What every session queues in memory
together is counted in one :class:`QueueBudget`; when that is over its limit, publishers
are held back, all alike. See "flow control" below for the one case where a subscriber
paces a publisher: never one that serves anybody else, and never for long when stuck. An acknowledgement frees a
window slot and pulls the next queued message. When a connection attaches to an existing
session, every in-flight message is resent (PUBLISH with DUP, or PUBREL), then the queue
drains. Message bytes are encoded once per (protocol version, QoS, retain flag) on the
:class:`Message` and patched with the packet id, so fan-out does not re-encode.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ..clock import Clock, Timer
from ..mqtt import Packet, Pubrel, ReasonCode, Will
from ._events import DisconnectReason
from ._message import Message, SubscriptionOptions
from ._plugs import (
    LOG_DISABLED,
    LOG_INFO,
    NO_MESSAGE_LOG,
    Action,
    MessageLog,
    Principal,
    SessionPermissions,
    TopicTally,
)

NEVER_EXPIRES = 0xFFFFFFFF
"""The session expiry interval of a session that never expires (MQTT 5)."""


class Link(Protocol):
    """What a session (and the broker, through it) needs of a live network connection:
    an ``MQTTConnection``, or whatever a test drives the broker with."""

    client_id: str
    protocol_version: int
    client_receive_maximum: int
    paused: bool
    """The socket's send buffer is past its high-water mark."""
    unflushed: int
    """Bytes written in this event-loop step, not yet handed to the socket."""

    def write(self, data: bytes) -> None: ...

    def write_qos0(self, message: Message, retain: bool,
                   subscription_ids: tuple[int, ...]) -> bool:
        """Write a QoS 0 delivery; False when dropped (slow reader, expired, too large)."""
        ...

    def fits(self, data: bytes) -> bool:
        """Whether ``data`` respects the client's Maximum Packet Size."""
        ...

    def send_packet(self, packet: Packet) -> None: ...

    def hold(self) -> None:
        """The broker holds this publisher back (counted; see Session's flow control)."""
        ...

    def keep_reading(self) -> None:
        """Read this connection even while held (its own session is congested)."""
        ...

    def release(self) -> None:
        """Undo one :meth:`hold`."""
        ...

    # What the router notes on a publishing link (see Session.may_hold).
    routed: int
    """Messages routed from this link so far."""
    served: object | None
    """The last session this link's messages reached while it was keeping up."""
    served_at: int
    """``routed`` at that moment."""

    # How it ended, read by the broker once it is detached.
    disconnect_reason: DisconnectReason
    client_initiated: bool
    publish_will: bool
    """False when the connection ended in a way that sends no will."""

    def close(self, code: ReasonCode, reason: DisconnectReason, *, will: bool = True) -> None:
        """Server-initiated close (MQTT 5: DISCONNECT with ``code`` first)."""
        ...


class SessionJournal(Protocol):
    """Where a persistent session writes down what must survive a crash (see
    ``_durable``). Every call is made on the loop's thread and only records the change;
    the journal makes it durable in the background, in call order."""

    def stored(self, session: Session, seq: int, message: Message, qos: int, retain: bool,
               subscription_ids: tuple[int, ...], packet_id: int | None) -> None:
        """A QoS 1/2 delivery entered the session (``packet_id``: sent at once)."""
        ...

    def sent(self, session: Session, seq: int, packet_id: int) -> None:
        """A queued delivery went out under ``packet_id``."""
        ...

    def released(self, session: Session, seq: int) -> None:
        """PUBREC arrived for a QoS 2 delivery: PUBREL is what a resend sends now."""
        ...

    def done(self, session: Session, seq: int) -> None:
        """A delivery is complete (acknowledged, expired or refused by the client)."""
        ...

    def awaiting_release(self, session: Session, packet_id: int) -> None:
        """An inbound QoS 2 PUBLISH was accepted; ``packet_id`` waits for PUBREL."""
        ...

    def released_inbound(self, session: Session, packet_id: int) -> None: ...

    def refill(self, session: Session, after_seq: int, limit: int) -> None:
        """Load up to ``limit`` stored deliveries after ``after_seq`` that are not in
        memory; the journal hands them to :meth:`Session.refilled` later."""
        ...


class QueueFull(Protocol):
    """Told when a session's queue cap drops a delivery (counted, logged, never silent)."""

    def __call__(self, session: Session, message: Message) -> None: ...


_UNDECIDED: dict[str, bool] = {}
"""Shared by every session until its first decision; never written to (see allowed())."""
_DECISIONS_KEPT = 4096

UNFLUSHED_HIGH_WATER = 256 * 1024
"""Bytes written to a connection in this event-loop step (not yet handed to its socket)
past which the connection counts as congested: a publisher resumed after a pause may
deliver megabytes in one step (libuv reads up to 32 times per readiness event), before
the socket's own high-water mark could say so."""

STUCK_AFTER = 1.0
"""Seconds a congested subscriber may pace its publishers without making progress (a
quarter of its in-flight window acknowledged, or its socket drained); after that it is
stuck and holds nobody until it makes progress again."""

SERVED_RECENTLY = 1_000
"""A publisher whose last this many messages reached a session that keeps up (other than
the congested one) serves others: no congested subscriber holds it back."""

class Traffic:
    """Deliveries of every session of a node, in plain integers (``/metrics`` reads them
    at a scrape, on the event loop that writes them: no lock).

    :ivar messages_out: deliveries routed to subscribers, by their QoS (0, 1, 2): PUBLISH
        packets the node sends or queues for a client.
    :ivar bytes_out: their payload bytes.
    :ivar qos0_dropped: QoS 0 deliveries not written: the client is offline, not keeping
        up, or does not take a packet that large (or it expired).
    :ivar discarded: QoS 1/2 deliveries discarded when their turn came: expired, or
        larger than the client's Maximum Packet Size.
    """

    __slots__ = ("bytes_out", "discarded", "messages_out", "qos0_dropped")

    def __init__(self) -> None:
        self.messages_out = [0, 0, 0]
        self.bytes_out = 0
        self.qos0_dropped = 0
        self.discarded = 0


class QueueBudget:
    """The memory every session's queue may take together (payload bytes in memory).

    Sessions ``take`` and ``give`` as their queues grow and drain. While more than
    ``limit`` is taken, the broker holds back each connection that publishes
    (:meth:`hold`: it stops reading it, so TCP slows the client down); once the total is
    back under three quarters of the limit, every held publisher is let go at once.
    Everybody is held alike: no publisher is singled out for a subscriber it happens to
    share.
    """

    __slots__ = ("held", "holds", "limit", "low_water", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.low_water = limit * 3 // 4
        self.used = 0
        self.held: set[Link] = set()
        self.holds = 0  # publishers held so far (counted)

    def take(self, size: int) -> None:
        self.used += size

    def give(self, size: int) -> None:
        self.used -= size
        if self.held and self.used <= self.low_water:
            self.release()

    @property
    def over(self) -> bool:
        return self.used > self.limit

    def hold(self, publisher: Link) -> None:
        if publisher not in self.held:
            self.held.add(publisher)
            self.holds += 1
            publisher.hold()

    def release(self) -> None:
        held, self.held = self.held, set()
        for publisher in held:
            publisher.release()

    def forget(self, link: Link) -> None:
        """``link`` closed: it is no longer held."""
        self.held.discard(link)


Queued = tuple[Message, int, bool, tuple[int, ...], int]
"""A delivery waiting behind the in-flight window: message, QoS, retain flag, subscription
identifiers and its sequence number in the session (the journal's key)."""


class Outgoing:
    """An in-flight outbound QoS 1/2 message. ``released`` once PUBREC arrived (QoS 2)."""

    __slots__ = ("message", "qos", "released", "retain", "sent_at", "seq", "subscription_ids")

    def __init__(self, message: Message, qos: int, retain: bool,
                 subscription_ids: tuple[int, ...], seq: int = 0) -> None:
        self.seq = seq
        self.message = message
        self.qos = qos
        self.retain = retain
        self.subscription_ids = subscription_ids
        self.released = False
        self.sent_at = 0.0


class Session:
    """MQTT session state for one client id. See the module docstring."""

    # Slots: a broker holds one per client; a __dict__ would cost ~1 KB more each.
    __slots__ = (
        "_clock",
        "_decisions",
        "_expiry_timer",
        "_loaded_upto",
        "_next_id",
        "_pending_will",
        "_progress",
        "_refilling",
        "_seq",
        "_stuck",
        "_watch",
        "_will_timer",
        "authorization_failures",
        "budget",
        "bytes_sent",
        "client_id",
        "connection",
        "detached_at",
        "dropped",
        "expiry_interval",
        "high_water",
        "holding",
        "inbound_qos2",
        "inflight",
        "journal",
        "log_level",
        "low_water",
        "max_inflight",
        "max_queued",
        "max_queued_bytes",
        "max_stored",
        "memory_bytes",
        "message_log",
        "messages_received",
        "messages_sent",
        "permissions",
        "principal",
        "publish_allowed",
        "queue",
        "queue_full",
        "queued_bytes",
        "receive_allowed",
        "session_id",
        "spilled",
        "subscriptions",
        "topic_tally",
        "traffic",
        "will",
    )

    def __init__(self, client_id: str, principal: Principal, max_inflight: int,
                 max_queued: int, clock: Clock, *, max_stored: int = 0,
                 max_queued_bytes: int = 0, queue_full: QueueFull | None = None,
                 budget: QueueBudget | None = None, traffic: Traffic | None = None
                 ) -> None:
        """:param max_queued: deliveries kept in memory behind the in-flight window.
        :param max_stored: deliveries a persistent session (one with a journal) keeps in
            all, in memory and stored; 0: ``max_queued``.
        :param max_queued_bytes: payload bytes queued in all; 0: no byte cap.
        :param queue_full: told of each delivery a cap drops.
        :param budget: what the queues of every session may hold in memory together.
        :param traffic: the node's delivery counters, shared by every session."""
        self.client_id = client_id
        self.principal = principal
        self.session_id = str(uuid.uuid4())
        self._clock = clock
        self.subscriptions: dict[str, SubscriptionOptions] = {}
        self.expiry_interval = 0
        self.connection: Link | None = None
        self.permissions: SessionPermissions | None = None
        self.will: Will | None = None
        self._will_timer: Timer | None = None
        self._expiry_timer: Timer | None = None
        self.inflight: dict[int, Outgoing] = {}
        # QoS 1/2 deliveries waiting behind the in-flight window; created when needed
        # (an empty deque costs ~600 bytes, and most sessions never queue).
        self.queue: deque[Queued] | None = None
        self.inbound_qos2: set[int] | None = None  # QoS 2 ids awaiting PUBREL
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.max_stored = max_stored or max_queued
        self.max_queued_bytes = max_queued_bytes
        self.queue_full = queue_full
        self.budget = budget if budget is not None else QueueBudget(1 << 62)
        self.traffic = traffic if traffic is not None else Traffic()
        # Flow control (below): publishers this session paces, and whether it progresses.
        self.holding: set[Link] | None = None
        self.high_water = max(1, max_inflight)
        self.low_water = max(0, max_inflight // 4)
        self._progress = 0       # acknowledgements (and drained sockets) while holding
        self._stuck = False
        self._watch: Timer | None = None
        self.memory_bytes = 0  # payload bytes in ``queue`` (taken from the budget)
        self.dropped = 0
        # Durability (persistent sessions of a durable directory; None: memory only).
        self.journal: SessionJournal | None = None
        self._seq = 1                  # the next delivery's sequence number
        self.spilled = 0               # stored deliveries not in memory (after the queue)
        self.queued_bytes = 0          # payload bytes in the queue and spilled
        self._loaded_upto = 0          # the highest sequence number brought into memory
        self._refilling = False
        self.detached_at: float | None = None  # epoch seconds; None while live
        self._pending_will: tuple[Will, float] | None = None  # a delayed will, its delay
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
        # IoT logs (bastion.iotlogs): the level in force for this client, set at CONNECT
        # and when the levels change; the message path compares it with LOG_INFO and
        # calls message_log only below that (an unlogged session pays one comparison).
        self.log_level = LOG_DISABLED
        self.message_log: MessageLog = NO_MESSAGE_LOG
        self._next_id = 1
        self._decisions: dict[tuple[Action, str], bool] | None = None
        self.publish_allowed: dict[str, bool] = _UNDECIDED  # see allowed()
        self.receive_allowed: dict[str, bool] = _UNDECIDED

    # -- connections and timers ----------------------------------------------------------

    def attach(self, link: Link, principal: Principal, permissions: SessionPermissions,
               will: Will | None, expiry_interval: int) -> None:
        """A CONNECT for this session was accepted on ``link``: it becomes the live
        connection, with the principal, permissions, will and session expiry interval of
        that CONNECT. Pending will-delay and expiry timers are cancelled (a reconnect
        within the will delay sends no will). The caller detached any previous link."""
        self.cancel_timers()
        self.principal = principal
        self.set_permissions(permissions)
        self.will = will
        self.expiry_interval = expiry_interval
        self.connection = link
        self.detached_at = None

    def detach(self, link: Link) -> bool:
        """``link`` is gone (closed, taken over, dropped). Returns False when ``link`` is
        not this session's live connection (nothing to do). An offline session holds no
        publisher back."""
        if self.connection is not link:
            return False
        self.connection = None
        self.detached_at = self._clock.time()
        if self.holding:
            self.release_all()
        return True

    def take_will(self) -> Will | None:
        """The will of the connection that just detached; the session forgets it."""
        will, self.will = self.will, None
        return will

    def set_expiry_interval(self, seconds: int) -> None:
        """A new session expiry interval (MQTT 5 DISCONNECT may change it)."""
        self.expiry_interval = seconds

    def arm_will(self, delay: float, publish: Callable[[Session, Will], object],
                 will: Will, after: float | None = None) -> None:
        """Call ``publish(self, will)`` after ``delay`` seconds unless a connection
        attaches first (MQTT 5 will delay interval). ``after``: seconds left, when part of
        the delay has passed already (a restored session)."""
        if self._will_timer is not None:
            self._will_timer.cancel()
        self._pending_will = (will, delay)
        self._will_timer = self._clock.call_later(delay if after is None else after,
                                                  self._will_due, publish, will)

    def _will_due(self, publish: Callable[[Session, Will], object], will: Will) -> None:
        self._will_timer = None
        self._pending_will = None
        publish(self, will)

    @property
    def pending_will(self) -> tuple[Will, float] | None:
        """The delayed will waiting for its time, with its delay in seconds."""
        return self._pending_will

    def arm_expiry(self, expire: Callable[[Session], object],
                   after: float | None = None) -> None:
        """Call ``expire(self)`` when the session expiry interval has passed (never for
        :data:`NEVER_EXPIRES`) unless a connection attaches first. ``after``: seconds
        left, when part of the interval has passed already (a restored session)."""
        if self.expiry_interval >= NEVER_EXPIRES:
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        delay = self.expiry_interval if after is None else max(0.0, after)
        self._expiry_timer = self._clock.call_later(delay, self._expiry_due, expire)

    def _expiry_due(self, expire: Callable[[Session], object]) -> None:
        self._expiry_timer = None
        expire(self)

    @property
    def will_pending(self) -> bool:
        """A delayed will waits for its time."""
        return self._will_timer is not None

    def cancel_timers(self) -> None:
        """Cancel the will-delay and expiry timers."""
        for timer in (self._expiry_timer, self._will_timer):
            if timer is not None:
                timer.cancel()
        self._expiry_timer = self._will_timer = None
        self._pending_will = None

    def end(self) -> None:
        """The session is discarded: subscriptions, flow state and timers go."""
        self.subscriptions.clear()
        self.clear_flow()
        self.cancel_timers()
        if self.holding:
            self.release_all()

    # -- subscriptions, inbound QoS 2, counters -------------------------------------------

    def add_subscription(self, topic_filter: str, options: SubscriptionOptions) -> bool:
        """Record (or replace) a subscription. Returns whether ``topic_filter`` is new."""
        is_new = topic_filter not in self.subscriptions
        self.subscriptions[topic_filter] = options
        return is_new

    def remove_subscription(self, topic_filter: str) -> bool:
        """Forget a subscription. Returns whether it existed."""
        return self.subscriptions.pop(topic_filter, None) is not None

    def await_release(self, packet_id: int) -> None:
        """An inbound QoS 2 PUBLISH was accepted: ``packet_id`` waits for PUBREL."""
        pending = self.inbound_qos2
        if pending is None:
            pending = self.inbound_qos2 = set()
        pending.add(packet_id)
        if self.journal is not None:
            self.journal.awaiting_release(self, packet_id)

    def release_inbound(self, packet_id: int) -> bool:
        """PUBREL for ``packet_id``; returns whether it was awaited."""
        pending = self.inbound_qos2
        if pending is None or packet_id not in pending:
            return False
        pending.discard(packet_id)
        if self.journal is not None:
            self.journal.released_inbound(self, packet_id)
        return True

    def tally_topics(self, tally: TopicTally | None) -> None:
        """Count this session's messages per topic in ``tally`` from now on (``None``:
        stop) — Detect's TOPIC_FILTER dimensions."""
        self.topic_tally = tally

    def set_log(self, level: int, message_log: MessageLog) -> None:
        """Log this session at ``level`` (``LOG_*``), its messages in ``message_log``."""
        self.log_level = level
        self.message_log = message_log

    def count_sent(self, topic: str, size: int) -> None:
        """The client published ``size`` payload bytes on ``topic``."""
        self.messages_sent += 1
        self.bytes_sent += size
        if self.topic_tally is not None:
            self.topic_tally.sent(topic, size)

    def count_denied(self) -> None:
        """One authorization failure of this client."""
        self.authorization_failures += 1

    # -- authorization -------------------------------------------------------------------

    def allowed(self, action: Action, resource: str) -> bool:
        """Cached decision for ``action`` on ``resource``; no permissions means deny.

        Publish and receive decisions, asked once per message, are kept by topic in
        ``publish_allowed`` and ``receive_allowed``, which the broker's message path reads
        directly (no tuple key, no enum hash); until a first decision they share one empty
        dict, so an idle session pays nothing for them.
        """
        if action is Action.PUBLISH or action is Action.RECEIVE:
            publish = action is Action.PUBLISH
            cache = self.publish_allowed if publish else self.receive_allowed
            decision = cache.get(resource)
            if decision is None:
                decision = self._check(action, resource)
                if cache is _UNDECIDED:
                    cache = {}
                    if publish:
                        self.publish_allowed = cache
                    else:
                        self.receive_allowed = cache
                elif len(cache) > _DECISIONS_KEPT:
                    cache.clear()
                cache[resource] = decision
            return decision
        key = (action, resource)
        decisions = self._decisions
        if decisions is None:
            decisions = self._decisions = {}
        found = decisions.get(key)
        if found is None:
            found = self._check(action, resource)
            if len(decisions) > _DECISIONS_KEPT:
                decisions.clear()
            decisions[key] = found
        return found

    def _check(self, action: Action, resource: str) -> bool:
        permissions = self.permissions
        return permissions is not None and permissions.check(action, resource)

    def set_permissions(self, permissions: SessionPermissions | None) -> None:
        self.permissions = permissions
        self._decisions = None
        self.publish_allowed = self.receive_allowed = _UNDECIDED

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
        traffic = self.traffic
        traffic.messages_out[qos] += 1
        traffic.bytes_out += len(message.payload)
        if self.topic_tally is not None:
            self.topic_tally.received(message.topic, len(message.payload))
        if self.log_level <= LOG_INFO:
            self.message_log.publish_out(self, message.topic, qos)
        if qos == 0:
            if conn is None or not conn.write_qos0(message, retain, subscription_ids):
                self.dropped += 1
                traffic.qos0_dropped += 1
            return
        journal = self.journal
        seq = self._seq
        self._seq = seq + 1
        if (conn is not None and not self.queue and not self.spilled
                and len(self.inflight) < self.window()):
            pid = self._send_new(conn, message, qos, retain, subscription_ids, seq)
            if journal is not None and pid:
                journal.stored(self, seq, message, qos, retain, subscription_ids, pid)
            return
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        size = len(message.payload)
        if (len(queue) + self.spilled >= (self.max_stored if journal else self.max_queued)
                or (self.max_queued_bytes and self.queued_bytes + size > self.max_queued_bytes)):
            self.dropped += 1
            if self.queue_full is not None:
                self.queue_full(self, message)
            return
        self.queued_bytes += size
        if journal is not None:
            journal.stored(self, seq, message, qos, retain, subscription_ids, None)
            if self.spilled or len(queue) >= self.max_queued:
                self.spilled += 1  # stored only: memory holds max_queued per session
                return
        queue.append((message, qos, retain, subscription_ids, seq))
        self.memory_bytes += size
        self.budget.take(size)
        self._loaded_upto = seq

    def _send_new(self, conn: Link, message: Message, qos: int, retain: bool,
                  subscription_ids: tuple[int, ...], seq: int) -> int:
        """Write one delivery under a new packet id; returns the id, or 0 when the
        delivery is discarded (expired, or too large for the client)."""
        pid = self._allocate_id()
        data = message.encode_for(conn.protocol_version, qos, retain, pid, subscription_ids,
                                  self._clock.monotonic)
        if data is None or not conn.fits(data):
            # Expired while queued, or larger than the client's Maximum Packet Size: the
            # spec has the server discard it as if it had been delivered.
            self.dropped += 1
            self.traffic.discarded += 1
            return 0
        out = Outgoing(message, qos, retain, subscription_ids, seq)
        out.sent_at = self._clock.monotonic()
        self.inflight[pid] = out
        conn.write(data)
        return pid

    def pump(self) -> None:
        """Move queued messages into the in-flight window while it has room."""
        conn = self.connection
        if conn is None:
            return
        window = self.window()
        queue = self.queue
        journal = self.journal
        taken = 0
        while queue and len(self.inflight) < window:
            message, qos, retain, sub_ids, seq = queue.popleft()
            taken += len(message.payload)
            pid = self._send_new(conn, message, qos, retain, sub_ids, seq)
            if journal is not None:
                if pid:
                    journal.sent(self, seq, pid)
                else:
                    journal.done(self, seq)
        if taken:
            self.queued_bytes -= taken
            self.memory_bytes -= taken
            self.budget.give(taken)
        if self.spilled and journal is not None and not self._refilling and (
                queue is None or len(queue) <= self.max_queued // 2):
            self._refilling = True
            journal.refill(self, self._loaded_upto,
                           self.max_queued - (len(queue) if queue else 0))
        if self.holding:
            self.release_if_drained()

    def refilled(self, entries: list[Queued]) -> None:
        """Stored deliveries loaded back into memory (the journal's answer to
        ``refill``), in sequence order; ``[]`` when nothing was found."""
        self._refilling = False
        if not entries:
            self.spilled = 0  # the store holds none after all (discarded meanwhile)
            return
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        for entry in entries:
            if entry[4] <= self._loaded_upto:
                continue
            queue.append(entry)
            size = len(entry[0].payload)
            self.memory_bytes += size
            self.budget.take(size)
            self._loaded_upto = entry[4]
            self.spilled -= 1
        self.spilled = max(0, self.spilled)
        self.pump()

    def restore(self, seq: int, inflight: dict[int, Outgoing], queue: list[Queued],
                spilled: int, spilled_bytes: int, inbound_qos2: set[int]) -> None:
        """State read back from the journal after a restart (before any connection)."""
        self._seq = seq
        self.inflight = inflight
        self.queue = deque(queue) if queue else None
        self.spilled = spilled
        self.memory_bytes = sum(len(e[0].payload) for e in queue)
        self.budget.take(self.memory_bytes)
        self.queued_bytes = spilled_bytes + self.memory_bytes
        self._loaded_upto = max([e[4] for e in queue] + [o.seq for o in inflight.values()]
                                + [0])
        self.inbound_qos2 = inbound_qos2 or None

    # -- flow control --------------------------------------------------------------------
    #
    # Each session's queue is its own (see the module docstring). One exception keeps a
    # flood from costing messages where nobody else is at stake: a live subscriber that
    # cannot keep up (its QoS 1/2 queue behind the in-flight window is past the high-water
    # mark, or its socket's send buffer is) paces a connection publishing to it, by the
    # broker not reading that connection (TCP slows it down; PUBLISH packets already read
    # wait unprocessed, QoS 1/2 unacknowledged), but only when
    #
    # * the publisher serves nobody else: none of its last SERVED_RECENTLY messages reached
    #   another session that was keeping up (may_hold); a backend publishing to many
    #   devices is never held back by one of them;
    # * and the subscriber makes progress: a quarter of its in-flight window acknowledged
    #   (or its socket drained) every STUCK_AFTER seconds. A subscriber that does not is stuck: it lets its
    #   publishers go and holds nobody until it progresses again; meanwhile its queue takes
    #   what comes and drops at its cap.
    #
    # Deadlock freedom rests on one rule: a congested session's own connection is always
    # read (hold() resumes it, and so does a full send buffer), because draining it needs
    # its acknowledgements, and a client that publishes and subscribes from one thread may
    # sit in a blocking write until we read. An offline session holds nobody.

    def congested(self) -> bool:
        """Whether this session cannot keep up now (and is not stuck)."""
        conn = self.connection
        if conn is None or self._stuck:
            return False
        queue = self.queue
        if queue is not None and len(queue) >= self.high_water:
            return True
        return conn.paused or conn.unflushed >= UNFLUSHED_HIGH_WATER

    def may_hold(self, publisher: Link) -> bool:
        """Whether pacing ``publisher`` stalls nobody else (see flow control)."""
        served = publisher.served
        return (served is None or served is self
                or publisher.routed - publisher.served_at > SERVED_RECENTLY)

    def hold(self, publisher: Link) -> None:
        conn = self.connection
        if conn is not None:
            conn.keep_reading()  # a congested session's own connection is always read
        holding = self.holding
        if holding is None:
            holding = self.holding = set()
        if publisher is conn or publisher in holding:
            return
        holding.add(publisher)
        publisher.hold()
        if self._watch is None:
            self._progress = 0
            self._watch = self._clock.call_later(STUCK_AFTER, self._check_progress)

    def _check_progress(self) -> None:
        self._watch = None
        if not self.holding:
            return
        if self._progress >= max(1, self.low_water):
            self._progress = 0
            self._watch = self._clock.call_later(STUCK_AFTER, self._check_progress)
            return
        self._stuck = True  # it holds nobody until it makes progress again
        self.release_all()

    def _progressed(self, amount: int = 1) -> None:
        self._progress += amount
        if self._stuck:
            self._stuck = False

    def writable(self) -> None:
        """The connection's send buffer drained below its low-water mark."""
        self._progressed(max(1, self.low_water))
        if self.holding:
            self.release_if_drained()

    def release_if_drained(self) -> None:
        queue = self.queue
        if self.connection is not None and (
                (queue is not None and len(queue) > self.low_water)
                or self.connection.paused):
            return
        self.release_all()

    def release_all(self) -> None:
        holding, self.holding = self.holding, None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for publisher in holding or ():
            publisher.release()

    def acknowledge(self, packet_id: int) -> bool:
        """PUBACK or PUBCOMP from the client: the delivery is complete."""
        out = self.inflight.pop(packet_id, None)
        if out is None:
            return False
        self._progress += 1
        if self._stuck:
            self._stuck = False
        if self.journal is not None:
            self.journal.done(self, out.seq)
        self.pump()
        return True

    def received(self, packet_id: int) -> bool:
        """PUBREC from the client: QoS 2 delivery moves to the PUBREL step."""
        out = self.inflight.get(packet_id)
        if out is None or out.qos != 2:
            return False
        if not out.released and self.journal is not None:
            self.journal.released(self, out.seq)
        out.released = True
        return True

    def resend_inflight(self) -> None:
        """Called when a connection (re)attaches: resend PUBLISH (DUP) / PUBREL in order."""
        conn = self.connection
        if conn is None:
            return
        for pid, out in list(self.inflight.items()):
            out.sent_at = self._clock.monotonic()
            if out.released:
                conn.send_packet(Pubrel(pid))
                continue
            data = out.message.encode_for(conn.protocol_version, out.qos, out.retain, pid,
                                          out.subscription_ids, self._clock.monotonic,
                                          dup=True)
            if data is None:
                del self.inflight[pid]
                if self.journal is not None:
                    self.journal.done(self, out.seq)
                continue
            conn.write(data)
        self.pump()

    def clear_flow(self) -> None:
        self.inflight.clear()
        self.queue = None
        self.inbound_qos2 = None
        self.budget.give(self.memory_bytes)
        self.spilled = self.queued_bytes = self.memory_bytes = 0
