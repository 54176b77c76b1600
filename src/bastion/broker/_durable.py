"""Durable sessions: persistent sessions and retained messages that survive a crash.

Theory of operation
-------------------
:class:`DurableSessionDirectory` is the in-memory directory plus a journal. Memory stays
the working copy (routing never reads a database); every change that must survive a
``kill -9`` is also written down as one :data:`Op`:

* a persistent session (expiry interval > 0): its owner, expiry, will and when its
  connection ended; its subscriptions; each QoS 1/2 delivery from the moment it enters the
  session until the client acknowledges it (with its packet id once sent, and the PUBREL
  step of QoS 2); the inbound QoS 2 packet ids waiting for PUBREL;
* every retained message.

A session with expiry 0 ends with its connection anyway; it writes nothing.

:class:`GroupCommit` collects the ops of one event-loop step and hands them, as one
transaction, to a writer thread that owns the database connection (:class:`SessionRecords`,
implemented over SQLite or PostgreSQL in ``bastion.sessions``). While the writer commits,
the next step's ops gather behind it, so a busy broker writes many changes per commit.
What the broker *acknowledges* waits for the commit that makes it durable: the broker
asks :meth:`GroupCommit.pending` for the commit its reply depends on and sends the reply
(PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK) from :meth:`GroupCommit.when_durable`. A
delivery made and acknowledged before its commit cancels out with it (no write at all).

Memory holds at most ``max_queued`` deliveries per session; a persistent session's
deliveries beyond that are stored only (``Session.spilled``) and read back a page at a
time as the queue drains (:meth:`GroupCommit.refill`, through the same writer thread, so
a read always sees every earlier write).

After a restart :meth:`DurableSessionDirectory.restore` rebuilds the sessions from a
:class:`Snapshot`; the broker then re-binds their permissions and arms their timers.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from ..clock import Clock
from ..mqtt import MQTT_5, Properties, Publish, RetainHandling, Will, decode, encode_publish
from ._directory import Denied, MemorySessionDirectory
from ._limits import BrokerLimits
from ._message import Message, SubscriptionOptions, message_properties
from ._plugs import Principal
from ._retained import RetainedStore
from ._session import Outgoing, Queued, QueueFull, Session

log = logging.getLogger("bastion.broker.durable")

__all__ = [
    "DurableSessionDirectory",
    "GroupCommit",
    "Op",
    "SessionRecords",
    "Snapshot",
    "StoredDelivery",
    "StoredRetained",
    "StoredSession",
    "StoredSubscription",
]

# -- the vocabulary of the journal ---------------------------------------------------------

SESSION = "session"
"""(client_id, session_id, certificate_id, source_ip, source_port, expiry_interval,
detached_at | None, will | None, will_delay): insert or replace the session row."""
FORGET = "forget"
"""(client_id,): delete the session, its subscriptions, deliveries and inbound ids."""
SUBSCRIBE = "subscribe"
"""(client_id, topic_filter, qos, no_local, retain_as_published, retain_handling,
subscription_id | None): insert or replace."""
UNSUBSCRIBE = "unsubscribe"
"""(client_id, topic_filter)."""
STORE = "store"
"""(client_id, seq, message, qos, retain, subscription_ids, packet_id | None, size)."""
SENT = "sent"
"""(packet_id, client_id, seq)."""
RELEASED = "released"
"""(client_id, seq): PUBREC arrived."""
DONE = "done"
"""(client_id, seq): delete the delivery."""
AWAIT = "await"
"""(client_id, packet_id): an inbound QoS 2 id waits for PUBREL."""
RELEASE = "release"
"""(client_id, packet_id)."""
RETAIN = "retain"
"""(topic, message, received_at): insert or replace."""
UNRETAIN = "unretain"
"""(topic,)."""
CURSOR = "cursor"
"""(node, seq): the last message of the cluster's stream this node has applied (see
``bastion.cluster``), written with the deliveries it made."""

Op = tuple[str, tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class StoredSession:
    client_id: str
    session_id: str
    certificate_id: str
    source_ip: str
    source_port: int
    expiry_interval: int
    detached_at: float | None  # epoch seconds; None: it was live when Bastion stopped
    will: bytes | None
    will_delay: int


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    client_id: str
    topic_filter: str
    qos: int
    no_local: bool
    retain_as_published: bool
    retain_handling: int
    subscription_id: int | None


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    client_id: str
    seq: int
    message: bytes
    qos: int
    retain: bool
    subscription_ids: str
    packet_id: int | None
    released: bool


@dataclass(frozen=True, slots=True)
class StoredRetained:
    topic: str
    message: bytes
    received_at: float


@dataclass(slots=True)
class Snapshot:
    """Everything stored, as read at start. ``deliveries`` holds at most the first
    ``per_session`` of each session; ``totals`` counts all of them:
    ``client_id -> (count, payload bytes, highest seq)``."""

    sessions: list[StoredSession] = field(default_factory=list)
    subscriptions: list[StoredSubscription] = field(default_factory=list)
    deliveries: list[StoredDelivery] = field(default_factory=list)
    totals: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    inbound: list[tuple[str, int]] = field(default_factory=list)
    retained: list[StoredRetained] = field(default_factory=list)


class SessionRecords(Protocol):
    """The database side. Every method but :meth:`load` is called from the one writer
    thread of a :class:`GroupCommit`."""

    def load(self, per_session: int, client_id: str | None = None) -> Snapshot:
        """Everything stored (``client_id``: only that client's session, no retained
        messages), with at most ``per_session`` unsent deliveries of each session."""
        ...

    def apply(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` in order, in one transaction, and commit."""
        ...

    def page(self, client_id: str, after_seq: int, limit: int) -> list[StoredDelivery]:
        """Unsent deliveries of ``client_id`` after ``after_seq``, in order."""
        ...

    def stream_cursor(self, node: str) -> int | None:
        """The last cluster stream message ``node`` applied (written with :data:`CURSOR`);
        None if it never wrote one."""
        ...

    def close(self) -> None: ...


# -- messages as bytes -----------------------------------------------------------------------

def encode_message(message: Message, clock: Clock) -> bytes:
    """``message`` as an MQTT 5 PUBLISH: every property survives; an expiry deadline
    becomes the interval left (read back against the clock of the next start)."""
    if message.expires_at is None:  # the bytes MQTT 5 subscribers get (cached)
        return message.encoded(MQTT_5, message.qos, message.retain)
    props = message.properties
    left = max(1, int(message.expires_at - clock.monotonic()))
    props = Properties(
        payload_format_indicator=props.payload_format_indicator,
        content_type=props.content_type, response_topic=props.response_topic,
        correlation_data=props.correlation_data, user_properties=props.user_properties,
        message_expiry_interval=left)
    return encode_publish(message.topic, message.payload, message.qos, message.retain,
                          1 if message.qos else None, MQTT_5, props)


def decode_message(data: bytes, origin: str | None, clock: Clock,
                   stored_at: float | None = None) -> Message:
    """The message :func:`encode_message` wrote. ``stored_at`` (epoch seconds): when it
    was written, so that the time Bastion was down counts against its expiry."""
    packet = decode(data, MQTT_5)
    assert isinstance(packet, Publish)
    props = packet.properties
    expires_at = None
    if props.message_expiry_interval is not None:
        down = 0.0 if stored_at is None else max(0.0, clock.time() - stored_at)
        expires_at = clock.monotonic() + props.message_expiry_interval - down
    return Message(packet.topic, packet.payload, packet.qos, packet.retain,
                   message_properties(props), origin, expires_at)


def _encode_will(will: Will) -> bytes:
    props = will.properties
    return encode_publish(will.topic, will.payload, will.qos, will.retain,
                          1 if will.qos else None, MQTT_5, Properties(
                              payload_format_indicator=props.payload_format_indicator,
                              content_type=props.content_type,
                              response_topic=props.response_topic,
                              correlation_data=props.correlation_data,
                              user_properties=props.user_properties,
                              message_expiry_interval=props.message_expiry_interval))


def _decode_will(data: bytes, delay: int) -> Will:
    packet = decode(data, MQTT_5)
    assert isinstance(packet, Publish)
    props = packet.properties
    return Will(packet.topic, packet.payload, packet.qos, packet.retain, Properties(
        payload_format_indicator=props.payload_format_indicator,
        content_type=props.content_type, response_topic=props.response_topic,
        correlation_data=props.correlation_data, user_properties=props.user_properties,
        message_expiry_interval=props.message_expiry_interval,
        will_delay_interval=delay or None))


# -- group commit ----------------------------------------------------------------------------

class _Apply(NamedTuple):
    ops: list[Op]
    number: int


class _Page(NamedTuple):
    session: Session
    after_seq: int
    limit: int


RETRY_SECONDS = (0.05, 0.2, 1.0, 5.0)


class GroupCommit:
    """The journal: ops of one loop step, committed together by a writer thread.

    ``pending()`` names the commit that will make everything recorded so far durable
    (``None``: all of it is); ``when_durable(n, callback)`` calls back on the loop once
    commit ``n`` is done. A failed commit is retried (the database may be locked or the
    disk full for a while) and logged; nothing waiting for it is acknowledged until it
    succeeds.

    Something outside the database can be made part of a commit's durability: a
    :meth:`hold` taken now delays :meth:`when_durable` of the commit gathering now (and of
    every later one) until it is released (a cluster node holds the commit for the
    acknowledgement of its message stream). :meth:`note_cursor` records a position that
    goes in the next commit that writes anything (or in one of its own when asked to).
    A commit with nothing to write never reaches the writer thread: it is done at once
    when the writer is idle (a node whose holds take commits with nothing in them
    otherwise paid a thread round trip, and a database write for the position, for each
    loop step).
    """

    def __init__(self, records: SessionRecords, clock: Clock,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._records = records
        self._clock = clock
        self._loop = loop
        self._ops: list[Op | None] = []
        self._stores: dict[tuple[str, int], int] = {}  # (client, seq) -> index in _ops
        self._number = 1          # the commit the gathering ops will go in
        self._durable = 0         # the last commit done and no longer held
        self._written = 0         # the last commit the writer finished
        self._submitted = 0       # the last commit handed to the writer
        self._holds: dict[int, int] = {}  # commit -> holds not yet released
        self._cursor: tuple[str, int] | None = None  # noted, not yet submitted
        self._cursor_due = False  # the noted position must go in the next commit
        self._scheduled = False
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._jobs: queue.SimpleQueue[_Apply | _Page | None] = queue.SimpleQueue()
        self._idle = asyncio.Event()
        self._idle.set()
        self.commits = 0
        self.ops_written = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._write_loop, name="bastion-sessions",
                                        daemon=True)
        self._thread.start()

    # -- on the loop ----------------------------------------------------------------------

    def add(self, kind: str, params: tuple[object, ...]) -> None:
        ops = self._ops
        if kind == DONE:
            index = self._stores.pop((params[0], params[1]), None)  # type: ignore[arg-type]
            if index is not None:  # stored and completed before any commit: neither
                ops[index] = None
                return
        elif kind == SENT:
            index = self._stores.get((params[1], params[2]))  # type: ignore[arg-type]
            if index is not None:
                stored = ops[index]
                assert stored is not None
                p = stored[1]
                ops[index] = (STORE, (*p[:6], params[0], p[7]))
                return
        elif kind == STORE:
            self._stores[(params[0], params[1])] = len(ops)  # type: ignore[index]
        elif kind == FORGET:
            client_id = params[0]
            for key in [k for k in self._stores if k[0] == client_id]:
                del self._stores[key]
        ops.append((kind, params))
        if not self._scheduled:
            self._scheduled = True
            self._idle.clear()
            self._loop.call_soon(self._submit)

    def hold(self) -> int:
        """Hold the commit gathering now (and so every later one) until :meth:`release`."""
        if not self._ops:
            self._ops.append(None)  # an empty commit, so that there is one to hold
            if not self._scheduled:
                self._scheduled = True
                self._idle.clear()
                self._loop.call_soon(self._submit)
        number = self._number
        self._holds[number] = self._holds.get(number, 0) + 1
        return number

    def release(self, number: int) -> None:
        count = self._holds.get(number, 0) - 1
        if count > 0:
            self._holds[number] = count
        else:
            self._holds.pop(number, None)
            self._advance()

    def note_cursor(self, node: str, seq: int, *, write: bool = False) -> None:
        """Record ``seq`` as ``node``'s stream position in the next commit; ``write``:
        make one now for it if nothing else is gathering."""
        self._cursor = (node, seq)
        self._cursor_due = self._cursor_due or write
        if write and not self._ops:
            self._ops.append(None)
            if not self._scheduled:
                self._scheduled = True
                self._idle.clear()
                self._loop.call_soon(self._submit)

    def pending(self) -> int | None:
        """The commit that makes everything recorded so far durable; None: it is."""
        if self._ops:
            return self._number
        if self._submitted > self._durable:
            return self._submitted
        return None

    def when_durable(self, number: int, callback: Callable[[], None]) -> None:
        if number <= self._durable:
            callback()
        else:
            self._waiters.append((number, callback))

    def refill(self, session: Session, after_seq: int, limit: int) -> None:
        """Read stored deliveries of ``session`` back (see ``Session.refilled``)."""
        self._submit(force=True)
        self._jobs.put(_Page(session, after_seq, limit))

    async def drain(self) -> None:
        """Until everything recorded so far is durable."""
        while self._ops or self._submitted > self._durable:
            self._submit()
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        await self.drain()
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self._records.close()

    def _submit(self, force: bool = False) -> None:
        self._scheduled = False
        if not self._ops or (self._submitted > self._written and not force):
            return  # the writer is busy: these ops join the next commit
        ops = [op for op in self._ops if op is not None]
        # The position goes with what is written (deliveries up to it, atomically), or
        # when asked for; alone, it waits: replaying from an older position after a
        # crash delivers nothing that commits since did not record (every change to a
        # session writes the position with it).
        if self._cursor is not None and (ops or self._cursor_due):
            ops.append((CURSOR, self._cursor))
            self._cursor = None
            self._cursor_due = False
        number = self._number
        self._number += 1
        self._ops = []
        self._stores = {}
        idle = self._submitted <= self._written
        self._submitted = number
        if not ops and idle:
            self._committed(number, 0)  # nothing to write and nothing before it
            return
        self._jobs.put(_Apply(ops, number))

    def _committed(self, number: int, count: int) -> None:
        self._written = number
        self.commits += 1
        self.ops_written += count
        self._advance()
        if self._ops:
            self._submit()

    def _advance(self) -> None:
        """Make durable every commit written and held by nobody (in order)."""
        number = self._written
        if self._holds:
            number = min(number, min(self._holds) - 1)
        if number > self._durable:
            self._durable = number
            waiters = self._waiters
            if waiters:
                ready = [cb for n, cb in waiters if n <= number]
                self._waiters = [(n, cb) for n, cb in waiters if n > number]
                for callback in ready:
                    try:
                        callback()
                    except Exception:
                        log.exception("a durable-commit callback failed")
        if not self._ops and self._submitted <= self._durable:
            self._idle.set()

    def _paged(self, session: Session, rows: list[StoredDelivery]) -> None:
        entries: list[Queued] = []
        for row in rows:
            message = decode_message(row.message, None, self._clock)
            entries.append((message, row.qos, row.retain, _sub_ids(row.subscription_ids),
                            row.seq))
        session.refilled(entries)

    # -- on the writer thread ---------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if isinstance(job, _Apply):
                if job.ops:
                    self._apply(job.ops)
                self._call(self._committed, job.number, len(job.ops))
                continue
            try:
                rows = self._records.page(job.session.client_id, job.after_seq, job.limit)
            except Exception:
                log.exception("reading stored deliveries of %r failed", job.session.client_id)
                rows = []
            self._call(self._paged, job.session, rows)

    def _apply(self, ops: list[Op]) -> None:
        attempt = 0
        while True:
            try:
                self._records.apply(ops)
                if attempt:
                    log.warning("session journal: commit succeeded after %d retries", attempt)
                return
            except Exception:
                self.failures += 1
                log.exception("session journal: commit of %d changes failed; retrying "
                              "(nothing waiting for it is acknowledged meanwhile)", len(ops))
                time.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _sub_ids(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",")) if text else ()


class _SessionJournal:
    """What a persistent session writes (``Session.journal``), turned into ops."""

    __slots__ = ("_add", "_clock", "_commit")

    def __init__(self, commit: GroupCommit, clock: Clock) -> None:
        self._commit = commit
        self._add = commit.add
        self._clock = clock

    def stored(self, session: Session, seq: int, message: Message, qos: int, retain: bool,
               subscription_ids: tuple[int, ...], packet_id: int | None) -> None:
        self._add(STORE, (session.client_id, seq, encode_message(message, self._clock), qos,
                          retain, ",".join(map(str, subscription_ids)), packet_id,
                          len(message.payload)))

    def sent(self, session: Session, seq: int, packet_id: int) -> None:
        self._add(SENT, (packet_id, session.client_id, seq))

    def released(self, session: Session, seq: int) -> None:
        self._add(RELEASED, (session.client_id, seq))

    def done(self, session: Session, seq: int) -> None:
        self._add(DONE, (session.client_id, seq))

    def awaiting_release(self, session: Session, packet_id: int) -> None:
        self._add(AWAIT, (session.client_id, packet_id))

    def released_inbound(self, session: Session, packet_id: int) -> None:
        self._add(RELEASE, (session.client_id, packet_id))

    def refill(self, session: Session, after_seq: int, limit: int) -> None:
        self._commit.refill(session, after_seq, limit)


class _JournaledRetained(RetainedStore[Message]):
    """The retained store, writing each change to the journal."""

    __slots__ = ("_directory",)

    def __init__(self, directory: DurableSessionDirectory) -> None:
        super().__init__()
        self._directory = directory

    def set(self, topic: str, message: Message) -> None:
        super().set(topic, message)
        directory = self._directory
        if directory.commit is not None:
            directory.commit.add(RETAIN, (topic, encode_message(message, directory.clock),
                                          message.received_at))

    def delete(self, topic: str) -> bool:
        found = super().delete(topic)
        directory = self._directory
        if found and directory.commit is not None:
            directory.commit.add(UNRETAIN, (topic,))
        return found


class DurableSessionDirectory(MemorySessionDirectory):
    """The in-memory directory, journaled (see the module docstring).

    Until :meth:`open_journal` it behaves as :class:`MemorySessionDirectory`.
    """

    __slots__ = ("_journal", "clock", "commit", "persistent")

    def __init__(self, limits: BrokerLimits, clock: Clock, denied: Denied,
                 queue_full: QueueFull | None = None) -> None:
        super().__init__(limits, clock, denied, queue_full)
        self.clock = clock
        self.commit: GroupCommit | None = None
        self._journal: _SessionJournal | None = None
        self.persistent = 0
        """Sessions written down (persistent ones) held here now."""
        self._retained = _JournaledRetained(self)

    def _journaled(self, session: Session, journal: _SessionJournal | None) -> None:
        """Set ``session.journal``, counting the persistent sessions."""
        if (session.journal is None) != (journal is None):
            self.persistent += 1 if journal is not None else -1
        session.journal = journal

    def open_journal(self, commit: GroupCommit) -> None:
        self.commit = commit
        self._journal = _SessionJournal(commit, self.clock)

    def pending(self) -> int | None:
        return None if self.commit is None else self.commit.pending()

    def when_durable(self, number: int, callback: Callable[[], None]) -> None:
        assert self.commit is not None
        self.commit.when_durable(number, callback)

    def save(self, session: Session) -> None:
        commit = self.commit
        if commit is None or self._sessions.get(session.client_id) is not session:
            return
        if session.expiry_interval == 0:
            if session.journal is not None:  # was persistent; not any more
                self._journaled(session, None)
                commit.add(FORGET, (session.client_id,))
            return
        if session.journal is None:
            self._journaled(session, self._journal)
        will, delay = session.will, (session.will.properties.will_delay_interval or 0) \
            if session.will is not None else 0
        pending = session.pending_will
        if will is None and pending is not None:
            will, delay = pending[0], int(pending[1])
        principal = session.principal
        commit.add(SESSION, (session.client_id, session.session_id, principal.identity,
                             principal.source_ip, principal.source_port,
                             session.expiry_interval, session.detached_at,
                             None if will is None else _encode_will(will), delay))

    def discard(self, session: Session) -> None:
        current = self._sessions.get(session.client_id) is session
        super().discard(session)
        if current and session.journal is not None and self.commit is not None:
            self.commit.add(FORGET, (session.client_id,))
        self._journaled(session, None)

    def hand_over(self, session: Session) -> None:
        self._journaled(session, None)  # from now on nothing of it is written here
        MemorySessionDirectory.discard(self, session)

    def adopt(self, snapshot: Snapshot) -> list[Session]:
        """Sessions another node handed over (or left behind), read back from the store
        as :meth:`restore` does (``snapshot`` holds no retained messages); what this node
        still had of them in memory is dropped first (the store is the truth)."""
        for row in snapshot.sessions:
            stale = self._sessions.get(row.client_id)
            if stale is not None and stale.connection is None:
                self.hand_over(stale)
        return self.restore(snapshot)

    def subscribe(self, session: Session, topic_filter: str,
                  options: SubscriptionOptions) -> bool:
        is_new = super().subscribe(session, topic_filter, options)
        if session.journal is not None and self.commit is not None:
            self.commit.add(SUBSCRIBE, (
                session.client_id, topic_filter, options.qos, options.no_local,
                options.retain_as_published, int(options.retain_handling),
                options.subscription_id))
        return is_new

    def unsubscribe(self, session: Session, topic_filter: str) -> bool:
        found = super().unsubscribe(session, topic_filter)
        if found and session.journal is not None and self.commit is not None:
            self.commit.add(UNSUBSCRIBE, (session.client_id, topic_filter))
        return found

    def restore(self, snapshot: Snapshot) -> list[Session]:
        """Rebuild the stored sessions and retained messages (before any connection).
        Returns the sessions; each has no permissions until the broker binds them, and
        ``detached_at`` set (to now for one that was live when Bastion stopped)."""
        clock = self.clock
        now = clock.time()
        for row in snapshot.retained:
            message = decode_message(row.message, None, clock, row.received_at)
            if message.expires_at is not None and message.expires_at <= clock.monotonic():
                continue
            message.received_at = row.received_at
            RetainedStore.set(self._retained, row.topic, message)
        limits = self._limits
        by_client: dict[str, Session] = {}
        for srow in snapshot.sessions:
            principal = Principal.of_identity(srow.certificate_id, srow.source_ip,
                                              srow.source_port)
            session = self._new_session(srow.client_id, principal)
            session.session_id = srow.session_id
            session.expiry_interval = min(srow.expiry_interval, limits.max_session_expiry)
            session.detached_at = srow.detached_at if srow.detached_at is not None else now
            if srow.will is not None:
                session.will = _decode_will(srow.will, srow.will_delay)
            self._journaled(session, self._journal)
            self._sessions[srow.client_id] = session
            by_client[srow.client_id] = session
        for sub in snapshot.subscriptions:
            found = by_client.get(sub.client_id)
            if found is not None:
                options = SubscriptionOptions(sub.qos, sub.no_local, sub.retain_as_published,
                                              RetainHandling(sub.retain_handling),
                                              sub.subscription_id)
                MemorySessionDirectory.subscribe(self, found, sub.topic_filter, options)
        inflight: dict[str, dict[int, Outgoing]] = {}
        queued: dict[str, list[Queued]] = {}
        for drow in snapshot.deliveries:
            if drow.client_id not in by_client:
                continue
            message = decode_message(drow.message, None, clock)
            sub_ids = _sub_ids(drow.subscription_ids)
            if drow.packet_id is not None:
                out = Outgoing(message, drow.qos, drow.retain, sub_ids, drow.seq)
                out.released = drow.released
                inflight.setdefault(drow.client_id, {})[drow.packet_id] = out
            else:
                queued.setdefault(drow.client_id, []).append(
                    (message, drow.qos, drow.retain, sub_ids, drow.seq))
        inbound: dict[str, set[int]] = {}
        for client_id, packet_id in snapshot.inbound:
            inbound.setdefault(client_id, set()).add(packet_id)
        for client_id, session in by_client.items():
            count, size, highest = snapshot.totals.get(client_id, (0, 0, 0))
            flight = inflight.get(client_id, {})
            waiting = queued.get(client_id, [])
            loaded_bytes = sum(len(e[0].payload) for e in waiting) + sum(
                len(o.message.payload) for o in flight.values())
            session.restore(highest + 1, flight, waiting,
                            max(0, count - len(flight) - len(waiting)),
                            max(0, size - loaded_bytes), inbound.get(client_id, set()))
        return list(by_client.values())
