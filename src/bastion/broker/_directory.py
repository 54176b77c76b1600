"""The session directory: live sessions, their subscriptions, routing and retained messages.

Theory of operation
-------------------
The broker keeps no session, subscription or retained message of its own: it asks a
:class:`SessionDirectory`. Today's implementation, :class:`MemorySessionDirectory`, keeps
everything in this process; a durable one (SQLite/PostgreSQL) or a clustered one (NATS
JetStream) goes behind the same interface without touching the connection code, which
only ever sees :class:`~bastion.broker._session.Session` objects and a
:class:`Router`.

The message path runs one way through it::

    MQTTConnection -> Broker (limits, iot:Publish) -> Router.route -> Session.deliver
                                                                   -> its Link (bytes)

:meth:`Router.route` is the one call per message: it matches the topic, merges the
overlapping subscriptions of one session, checks ``iot:Receive`` from each session's
decision cache and hands one delivery to each session's queue. Each session's queue is
its own and bounded; a recipient that cannot keep up paces the publishing link only when
that link serves nobody else (see ``_session``, flow control).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from ..clock import Clock
from ._limits import BrokerLimits
from ._message import Message, SubscriptionOptions
from ._plugs import Action, Principal
from ._retained import RetainedStore
from ._session import Link, QueueBudget, QueueFull, Session, Traffic
from ._subscriptions import SubscriptionIndex

__all__ = ["MemorySessionDirectory", "RetainedMessages", "Router", "SessionDirectory"]

Denied = Callable[[Session, Action, str], None]
"""Told when a session may not receive a message on a topic (``iot:Receive`` denied)."""


class RetainedMessages(Protocol):
    """At most one retained message per topic name."""

    def get(self, topic: str) -> Message | None: ...

    def set(self, topic: str, message: Message) -> None: ...

    def delete(self, topic: str) -> bool:
        """Returns whether a message was retained on ``topic``."""
        ...

    def match(self, topic_filter: str) -> list[tuple[str, Message]]:
        """``(topic, message)`` for every retained topic ``topic_filter`` matches; a
        wildcard at the first level never matches a topic starting with ``$``."""
        ...

    def keep(self, topic: str, message: Message) -> None:
        """Retain ``message`` that another cluster node retained (and wrote down)."""
        ...

    def drop(self, topic: str) -> bool:
        """Forget what another cluster node deleted."""
        ...

    def topics(self, prefix: str | None = None, *, after: str | None = None,
               limit: int | None = None) -> list[str]:
        """Retained topics in ascending order (paged listing).

        :raises ValueError: ``limit`` is smaller than 1.
        """
        ...

    def __len__(self) -> int: ...


class Interest(Protocol):
    """Told when the first session subscribes to a topic filter and when the last one
    leaves it (a cluster node subscribes to the other nodes' messages for exactly these)."""

    def added(self, topic_filter: str) -> None: ...

    def removed(self, topic_filter: str) -> None: ...


class Router(Protocol):
    """Hands a published message to every session subscribed to its topic."""

    def route(self, message: Message, publisher: Link | None,
              which: Callable[[Session], bool] | None = None) -> bool:
        """Deliver ``message`` to the sessions whose subscriptions match its topic (only
        those ``which`` accepts, when given).

        One delivery per session, however many of its subscriptions match: the highest
        granted QoS (capped by the message's), every subscription identifier, retain as
        published if any matching subscription asks for it. A subscription with no local
        skips the message's own origin. Each shared subscription group gets it once.
        ``iot:Receive`` is checked per session; a denial is reported, not delivered.
        ``publisher`` (None for messages the broker originates) is paced by a recipient
        that cannot keep up only when it serves nobody else (``Session.may_hold``).

        :returns: whether any subscription matched (MQTT 5 "no matching subscribers").
        """
        ...

    def wants(self, topic: str) -> bool:
        """Whether any session here subscribes to ``topic``."""
        ...


class SessionDirectory(Router, Protocol):
    """Every session of the broker by client id, with subscriptions and retained messages.

    What an implementation must guarantee:

    * **One session per client id.** :meth:`open` returns the session to attach a new
      connection to. The caller has already detached any live connection of that client
      id (takeover: the new connection wins, as in AWS IoT); a clustered directory must
      claim the client id cluster-wide here, so that a connection on another node is
      taken over too.
    * **Session present.** :meth:`open` resumes the existing session, with its
      subscriptions, in-flight and queued messages, only when the CONNECT did not ask
      for a clean start *and* the certificate is the one that owned the session; else the
      old session is discarded (never hand one principal's messages to another) and a new
      one is created. The flag it returns is the CONNACK's "session present".
    * **Expiry.** Sessions are discarded only by :meth:`discard`; the broker calls it when
      a session's expiry interval passes with no connection attached (or at once for an
      interval of 0, or when a principal is dropped). :meth:`discard` of a session that is
      no longer the client id's current one removes that session's subscriptions only.
    * **Retained messages.** :attr:`retained` holds at most one message per topic;
      matching follows MQTT topic-filter rules including the ``$`` rule (``#`` and ``+``
      at the first level do not match ``$``-topics). Expiry of retained messages is the
      reader's business (``Message.expires_at``).
    * **Routing** as described on :meth:`Router.route`, with subscriptions exactly those
      recorded by :meth:`subscribe`/:meth:`unsubscribe` of live (not discarded) sessions.
    """

    @property
    def sessions(self) -> Mapping[str, Session]:
        """Every session (live or waiting to expire) by client id; read-only."""
        ...

    @property
    def retained(self) -> RetainedMessages: ...

    @property
    def budget(self) -> QueueBudget:
        """What the queues of every session hold in memory together, against its limit."""
        ...

    @property
    def traffic(self) -> Traffic:
        """The deliveries of every session, counted."""
        ...

    def get(self, client_id: str) -> Session | None: ...

    def open(self, client_id: str, principal: Principal, *,
             clean_start: bool) -> tuple[Session, bool]:
        """The session for a CONNECT of ``principal`` as ``client_id``, and whether it
        existed before ("session present"). See the class docstring."""
        ...

    def discard(self, session: Session) -> None:
        """Forget ``session``: its subscriptions, queued messages and timers go."""
        ...

    def hand_over(self, session: Session) -> None:
        """Drop ``session`` from this node's memory but keep what the store holds of it:
        another node of the cluster takes it over and reads it back."""
        ...

    def subscribe(self, session: Session, topic_filter: str,
                  options: SubscriptionOptions) -> bool:
        """Subscribe (or re-subscribe) ``session``. Returns whether the filter is new to it.

        :raises RemoteProtocolError: ``topic_filter`` is malformed.
        """
        ...

    def unsubscribe(self, session: Session, topic_filter: str) -> bool:
        """Returns whether ``session`` had subscribed to ``topic_filter``."""
        ...

    def subscription_count(self) -> int:
        """Subscriptions of every session together."""
        ...

    def filters(self) -> list[str]:
        """Every topic filter some session subscribes to (each once)."""
        ...

    interest: Interest | None
    """Told of the filters as they come and go (None: nobody asks)."""

    share_here: bool
    """Whether :meth:`route` serves shared subscriptions (False in a cluster, which serves
    them across its nodes through :meth:`deliver_shared`)."""

    def deliver_shared(self, message: Message, share_filter: str) -> bool:
        """Deliver ``message`` to this node's next member of ``share_filter``."""
        ...

    def save(self, session: Session) -> None:
        """``session``'s connection came or went, or its expiry or will changed: a durable
        directory writes it down (a persistent one from now on; one whose expiry became 0
        is forgotten)."""
        ...

    def pending(self) -> int | None:
        """The commit that makes every change so far durable; ``None`` when all is (always,
        in memory). Acknowledgements wait for it (see :meth:`when_durable`)."""
        ...

    def when_durable(self, number: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the loop once commit ``number`` is durable."""
        ...


class MemorySessionDirectory:
    """The :class:`SessionDirectory` of one process: dicts, a subscription trie and a
    retained-message trie, all in memory. Nothing survives a restart."""

    __slots__ = ("_budget", "_clock", "_denied", "_filters", "_index", "_limits",
                 "_queue_full", "_retained", "_sessions", "_traffic", "interest", "share_here")

    def __init__(self, limits: BrokerLimits, clock: Clock, denied: Denied,
                 queue_full: QueueFull | None = None) -> None:
        """:param denied: told of every ``iot:Receive`` denial while routing.
        :param queue_full: told of every delivery a session's queue cap drops."""
        self._limits = limits
        self._clock = clock
        self._denied = denied
        self._queue_full = queue_full
        self._budget = QueueBudget(limits.queue_memory_budget_bytes)
        self._traffic = Traffic()
        self._sessions: dict[str, Session] = {}
        # Keyed by the session object itself: a match needs no lookup by client id.
        self._index: SubscriptionIndex[Session, SubscriptionOptions] = SubscriptionIndex()
        self._retained: RetainedStore[Message] = RetainedStore()
        self._filters: dict[str, int] = {}  # topic filter -> sessions subscribed to it
        self.interest: Interest | None = None
        # False in a cluster: shared subscriptions are served across the nodes
        # (deliver_shared), not by routing here.
        self.share_here = True

    @property
    def sessions(self) -> Mapping[str, Session]:
        return self._sessions

    @property
    def retained(self) -> RetainedStore[Message]:
        return self._retained

    @property
    def budget(self) -> QueueBudget:
        return self._budget

    @property
    def traffic(self) -> Traffic:
        return self._traffic

    def get(self, client_id: str) -> Session | None:
        return self._sessions.get(client_id)

    def open(self, client_id: str, principal: Principal, *,
             clean_start: bool) -> tuple[Session, bool]:
        existing = self._sessions.get(client_id)
        if existing is not None:
            if existing.connection is not None:
                raise RuntimeError(f"session {client_id!r} still has a live connection")
            if not clean_start and existing.principal.identity == principal.identity:
                return existing, True
            self.discard(existing)
        session = self._new_session(client_id, principal)
        self._sessions[client_id] = session
        return session, False

    def _new_session(self, client_id: str, principal: Principal) -> Session:
        limits = self._limits
        return Session(client_id, principal, limits.max_inflight_messages,
                       limits.max_queued_messages, self._clock,
                       max_stored=limits.max_stored_messages,
                       max_queued_bytes=limits.max_queued_bytes, queue_full=self._queue_full,
                       budget=self._budget, traffic=self._traffic)

    def hand_over(self, session: Session) -> None:
        self.discard(session)  # nothing is stored: the other node starts afresh

    def save(self, session: Session) -> None:
        return None  # nothing outlives this process

    def pending(self) -> int | None:
        return None

    def when_durable(self, number: int, callback: Callable[[], None]) -> None:
        callback()

    def discard(self, session: Session) -> None:
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]
        self._index.remove_all(session)
        for topic_filter in session.subscriptions:
            self._left(topic_filter)
        session.end()

    def subscribe(self, session: Session, topic_filter: str,
                  options: SubscriptionOptions) -> bool:
        self._index.add(topic_filter, session, options)
        is_new = session.add_subscription(topic_filter, options)
        if is_new:
            count = self._filters.get(topic_filter, 0)
            self._filters[topic_filter] = count + 1
            if not count and self.interest is not None:
                self.interest.added(topic_filter)
        return is_new

    def unsubscribe(self, session: Session, topic_filter: str) -> bool:
        if not session.remove_subscription(topic_filter):
            return False
        self._index.remove(topic_filter, session)
        self._left(topic_filter)
        return True

    def _left(self, topic_filter: str) -> None:
        count = self._filters.get(topic_filter, 0) - 1
        if count > 0:
            self._filters[topic_filter] = count
            return
        self._filters.pop(topic_filter, None)
        if self.interest is not None:
            self.interest.removed(topic_filter)

    def subscription_count(self) -> int:
        return len(self._index)

    def filters(self) -> list[str]:
        return list(self._filters)

    def deliver_shared(self, message: Message, share_filter: str) -> bool:
        """Deliver ``message`` to this node's next member of the shared subscription
        ``share_filter`` (the cluster chose this node for it). Returns whether one got it."""
        member = self._index.pick(share_filter)
        if member is None:
            return False
        session, opts = member
        topic = message.topic
        if not session.allowed(Action.RECEIVE, topic):
            self._denied(session, Action.RECEIVE, topic)
            return False
        session.deliver(message, min(opts.qos, message.qos),
                        message.retain and opts.retain_as_published,
                        (opts.subscription_id,) if opts.subscription_id else ())
        return True

    def wants(self, topic: str) -> bool:
        """Whether any session here subscribes to ``topic`` (shared ones only where this
        directory routes them)."""
        return bool(self._index.match(topic, self.share_here))

    def route(self, message: Message, publisher: Link | None,
              which: Callable[[Session], bool] | None = None) -> bool:
        matches = self._index.match(message.topic, self.share_here)
        if not matches:
            return False
        if which is not None:
            matches = [match for match in matches if which(match[0])]
            if not matches:
                return True
        topic = message.topic
        origin = message.origin
        if len(matches) == 1:  # the common case, without the merging below
            session, opts = matches[0]
            if not (opts.no_local and session.client_id == origin):
                allowed = session.receive_allowed.get(topic)
                if allowed is None:
                    allowed = session.allowed(Action.RECEIVE, topic)
                if allowed:
                    session.deliver(message, min(opts.qos, message.qos),
                                    message.retain and opts.retain_as_published,
                                    (opts.subscription_id,) if opts.subscription_id else ())
                else:
                    self._denied(session, Action.RECEIVE, topic)
            if publisher is not None:
                routed = publisher.routed = publisher.routed + 1
                if not session.congested():
                    publisher.served, publisher.served_at = session, routed
                elif session.may_hold(publisher):
                    session.hold(publisher)
            return True
        merged: dict[Session, tuple[int, bool, list[int]]] = {}
        for session, opts in matches:
            if opts.no_local and session.client_id == origin:
                continue
            entry = merged.get(session)
            sub_id = [opts.subscription_id] if opts.subscription_id else []
            if entry is None:
                merged[session] = (opts.qos, opts.retain_as_published, sub_id)
            else:
                entry[2].extend(sub_id)
                merged[session] = (max(entry[0], opts.qos),
                                   entry[1] or opts.retain_as_published, entry[2])
        congested: list[Session] = []
        keeping_up: Session | None = None
        for session, (sub_qos, rap, sub_ids) in merged.items():
            if not session.allowed(Action.RECEIVE, topic):
                self._denied(session, Action.RECEIVE, topic)
                continue
            session.deliver(message, min(sub_qos, message.qos), message.retain and rap,
                            tuple(sub_ids))
            if publisher is not None:
                if session.congested():
                    congested.append(session)
                else:
                    keeping_up = session
        if publisher is not None:
            routed = publisher.routed = publisher.routed + 1
            if keeping_up is not None:  # it serves someone who keeps up: nobody holds it
                publisher.served, publisher.served_at = keeping_up, routed
            else:
                for session in congested:
                    if session.may_hold(publisher):
                        session.hold(publisher)
        return True
