"""The cluster's message stream: what a QoS 1 (or 2) or retained message must survive.

Theory of operation
-------------------
Core NATS delivers at most once: a node that dies, or is cut off, loses what was on its
way to it. So every QoS >= 1 or retained message published on any node also goes into one
JetStream stream, ``<name>_msgs`` (file storage, subjects ``<name>.js.>``), and:

* **One loop step, one stream message.** The QoS >= 1 and retained messages published
  on a node during one event-loop step travel together, framed (:func:`pack`: origin and
  encoded PUBLISH of each, up to ``BATCH_BYTES``), on the subject ``<name>.js.<node>``:
  JetStream and the Python client then pay their per-message costs once per batch.
* **The publisher's acknowledgement waits for the stream's.** A batch is sent with
  ``publish_async`` and a ``Nats-Msg-Id`` (``<node>.<boot>.<n>``), and the commit of the
  session journal gathering when its first message came is *held* until the stream has
  it (``GroupCommit.hold``): PUBACK, PUBREC and the API's Publish answer wait for both. A
  batch that gets no acknowledgement is sent again with the same id (JetStream drops
  the duplicate) until it does.
* **Every node reads the whole stream, in order** (an ordered push consumer), and delivers
  each message of each batch to its own sessions: all of them for another node's message; for its own,
  only the persistent ones, since the node routed it to the others when it was published
  (``Broker.publish`` with :meth:`MessageStream.streams`). A persistent session therefore
  gets every QoS >= 1 message from the stream, even one published next to it.
* **The position is written with the deliveries.** The sequence number of the last
  message applied goes into the same journal commit as the deliveries it made (the
  journal's ``cursor`` op, table ``mqtt_stream_cursors``). A node that restarts after
  ``kill -9`` reads its sessions and its position from the same transaction's result and
  reads the stream on from there: what it delivered is not delivered twice, what it had
  not written is delivered again.
* **A session moving between nodes catches up.** The node giving a session up says where
  it was in the stream at that moment (a dead node's stored position stands in); the node
  adopting it reads the stream from there up to its own position, and delivers those
  messages to that session alone (:meth:`MessageStream.catch_up`). If the previous owner
  was ahead, the messages it already delivered are skipped for that session when this
  node reaches them (:meth:`MessageStream.skip_until`).

QoS 0 messages do not go through the stream (core NATS only, at most once, as MQTT
allows). Shared subscriptions are balanced on core NATS queue groups and stay at most
once across the hop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..broker import Broker, GroupCommit, Message, SessionRecords, decode_message
from ..clock import Clock
from ._subjects import SubjectCodec

log = logging.getLogger("bastion.cluster")

NODE_HEADER = "Bastion-Node"
BATCH_BYTES = 512 * 1024
"""The most one stream message carries (NATS's default limit is 1 MiB); one MQTT message
bigger than that goes alone."""
_FRAME = struct.Struct("!HI")


def frame(origin: str, data: bytes) -> bytes:
    """One message in a batch: its origin (client id) and its encoded PUBLISH."""
    raw = origin.encode()
    return _FRAME.pack(len(raw), len(data)) + raw + data


def pack(frames: list[bytes]) -> list[bytes]:
    """The stream messages that carry ``frames``, each at most ``BATCH_BYTES`` unless a
    single frame is bigger."""
    batches: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for one in frames:
        if current and size + len(one) > BATCH_BYTES:
            batches.append(b"".join(current))
            current, size = [], 0
        current.append(one)
        size += len(one)
    if current:
        batches.append(b"".join(current))
    return batches


def peek_topic(data: bytes) -> str | None:
    """The topic of an encoded PUBLISH, read without decoding the rest (None: not a
    well-formed start of one)."""
    offset = 1
    for _ in range(4):  # the remaining length, 1 to 4 bytes
        if offset >= len(data):
            return None
        offset += 1
        if not data[offset - 1] & 0x80:
            break
    if offset + 2 > len(data):
        return None
    size = int.from_bytes(data[offset:offset + 2], "big")
    try:
        return data[offset + 2:offset + 2 + size].decode()
    except UnicodeDecodeError:
        return None


def unpack(batch: bytes) -> Iterator[tuple[str, bytes]]:
    """(origin, encoded PUBLISH) of each message of a batch.

    :raises ValueError: the batch is cut short.
    """
    view = memoryview(batch)
    offset, end = 0, len(batch)
    while offset < end:
        if end - offset < _FRAME.size:
            raise ValueError("a batch cut inside a frame header")
        origin_size, data_size = _FRAME.unpack_from(view, offset)
        offset += _FRAME.size
        if end - offset < origin_size + data_size:
            raise ValueError("a batch cut inside a frame")
        origin = bytes(view[offset:offset + origin_size]).decode()
        offset += origin_size
        yield origin, bytes(view[offset:offset + data_size])
        offset += data_size
ACK_WAIT = 5.0
"""Seconds to wait for the stream's acknowledgement before publishing again."""
FETCH_WAIT = 5.0
"""Seconds a catch-up read waits for the next message before giving up."""


class MessageStream:
    """One node's side of the stream (see the module docstring).

    :param commit: the session journal (None without durable sessions: acknowledgements
        then do not wait, and the position is not kept).
    :param records: where the position is read back at start.
    """

    def __init__(self, nc: Any, name: str, node: str, broker: Broker, clock: Clock,
                 commit: GroupCommit | None, records: SessionRecords | None, *,
                 max_age: float, max_bytes: int) -> None:
        self._nc = nc
        self._js: Any = nc.jetstream()
        self.stream = f"{name}_msgs"
        self._codec = SubjectCodec(f"{name}.js")
        self._node = node
        self._broker = broker
        self._clock = clock
        self._commit = commit
        self._records = records
        self._max_age = max_age
        self._max_bytes = max_bytes
        self._boot = uuid.uuid4().hex[:8]
        self._count = 0
        self._subject = f"{self._codec.prefix}.{node}"
        self._out: list[bytes] = []
        self._hold: int | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._subscription: Any = None
        self._watching: dict[str, list[Message]] = {}  # client id -> read while adopting
        self._skip: dict[str, int] = {}  # client id -> delivered up to here by its old node
        self._written_at = 0
        self._warned = 0.0
        self.applied = 0
        """The sequence number of the last message delivered here."""
        self.published = 0
        self.delivered = 0

    # -- start and stop -------------------------------------------------------------------

    async def start(self) -> None:
        """Create the stream if needed and read it on from this node's stored position (a
        node new to the cluster starts at the end)."""
        from nats.js.api import ConsumerConfig, DeliverPolicy, DiscardPolicy, StreamConfig

        config = StreamConfig(name=self.stream, subjects=[f"{self._codec.prefix}.>"],
                              max_age=self._max_age, max_bytes=self._max_bytes,
                              discard=DiscardPolicy.OLD, duplicate_window=120.0)
        try:
            info = await self._js.add_stream(config)
        except Exception as exc:  # noqa: BLE001 - it exists with other limits: take them on
            log.info("cluster: updating stream %s (%s)", self.stream, exc)
            info = await self._js.update_stream(config)
        first, last = int(info.state.first_seq), int(info.state.last_seq)
        cursor = None
        if self._records is not None:
            cursor = await asyncio.to_thread(self._records.stream_cursor, self._node)
        if cursor is None:
            start = last + 1
        elif cursor > last:
            log.warning("cluster: stream %s ends at %d, before this node's position %d "
                        "(was it deleted?); reading on from its end", self.stream, last,
                        cursor)
            start = last + 1
        else:
            start = cursor + 1
            if start < first:
                log.error("cluster: %d messages for this node's persistent sessions expired "
                          "from stream %s before it came back (stream_max_age, "
                          "stream_max_bytes)", first - start, self.stream)
                start = first
            elif start <= last:
                log.info("cluster: replaying %d messages of stream %s from %d",
                         last - start + 1, self.stream, start)
        self.applied = start - 1
        self._note_position(write=True)
        self._subscription = await self._js.subscribe(
            f"{self._codec.prefix}.>", stream=self.stream, cb=self._delivered,
            ordered_consumer=True, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=start))

    async def close(self) -> None:
        if self._subscription is not None:
            try:
                await asyncio.wait_for(self._subscription.unsubscribe(), timeout=2.0)
            except Exception:  # noqa: BLE001, S110 - the connection may be gone already
                pass
        for task in list(self._sending):
            task.cancel()

    # -- out --------------------------------------------------------------------------------

    @staticmethod
    def streams(message: Message) -> bool:
        return message.qos > 0 or message.retain

    def send(self, message: Message, data: bytes) -> None:
        """Put ``message`` (encoded as ``data``) in the stream; the acknowledgements of
        what is being recorded now wait until it is there. The messages of one loop step
        travel together, as one stream message (:func:`pack`)."""
        if not self._out:
            self._hold = self._commit.hold() if self._commit is not None else None
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(frame(message.origin or "", data))

    def _flush(self) -> None:
        frames, self._out = self._out, []
        hold, self._hold = self._hold, None
        if not frames:
            return
        task = asyncio.get_running_loop().create_task(
            self._publish(pack(frames), hold, len(frames)))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, batches: list[bytes], hold: int | None, count: int) -> None:
        waiting: list[tuple[Any, bytes, dict[str, str]]] = []
        for batch in batches:
            self._count += 1
            headers = {NODE_HEADER: self._node,
                       "Nats-Msg-Id": f"{self._node}.{self._boot}.{self._count}"}
            try:
                future = await self._js.publish_async(self._subject, batch,
                                                      headers=dict(headers))
            except Exception:  # noqa: BLE001 - sent again below
                future = None
            waiting.append((future, batch, headers))
        for future, batch, headers in waiting:
            stored = False
            if future is not None:
                try:
                    await asyncio.wait_for(future, ACK_WAIT)
                    stored = True
                except Exception:  # noqa: BLE001, S110 - sent again below
                    pass
            if not stored:
                await self._until_stored(self._subject, batch, headers)
        self.published += count
        if hold is not None and self._commit is not None:
            self._commit.release(hold)

    async def _until_stored(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        delay = 0.1
        while True:
            try:
                await self._js.publish(subject, data, headers=dict(headers), timeout=ACK_WAIT)
                return
            except Exception as exc:  # noqa: BLE001 - NATS away: its acknowledgement waits
                now = time.monotonic()
                if now - self._warned > 10.0:
                    self._warned = now
                    log.warning("cluster: the message stream does not acknowledge (%s); "
                                "acknowledgements to publishers wait", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # -- in ---------------------------------------------------------------------------------

    def _decode(self, msg: Any, wanted: Callable[[str], bool] | None = None
                ) -> list[Message]:
        """The messages of a batch; with ``wanted``, only the retained ones and those whose
        topic it accepts (the others are not decoded at all)."""
        messages: list[Message] = []
        try:
            for origin, data in unpack(msg.data):
                if wanted is not None and not data[0] & 0x01:  # not retained
                    topic = peek_topic(data)
                    if topic is not None and not wanted(topic):
                        continue
                messages.append(decode_message(data, origin or None, self._clock))
        except Exception as exc:  # noqa: BLE001 - a malformed message never stops the node
            log.warning("cluster: ignored what is left of a malformed batch on %s (%d "
                        "messages read): %s", msg.subject, len(messages), exc)
        return messages

    async def _delivered(self, msg: Any) -> None:
        seq = int(msg.metadata.sequence.stream)
        own = (msg.headers or {}).get(NODE_HEADER) == self._node
        if own and not self._watching and not getattr(self._broker.directory,
                                                      "persistent", 0):
            self.applied = seq  # its own batch, and no persistent session to give it to
            self._note_position()
            return
        skip = self._skipped(seq)
        publish = self._broker.publish_remote
        directory = self._broker.directory
        wanted = None if self._watching else directory.wants
        for message in self._decode(msg, wanted):
            for watched in self._watching.values():
                watched.append(message)
            if skip is None:
                publish(message, own=own)
            else:
                publish(message, own=own, skip=skip)
            self.delivered += 1
        self.applied = seq
        self._note_position()

    def _skipped(self, seq: int) -> frozenset[str] | None:
        if not self._skip:
            return None
        skip = frozenset(cid for cid, until in self._skip.items() if seq <= until)
        for cid in [cid for cid, until in self._skip.items() if seq >= until]:
            del self._skip[cid]
        return skip or None

    def _note_position(self, write: bool = False) -> None:
        if self._commit is not None:
            self._commit.note_cursor(self._node, self.applied, write=write)
            if write:
                self._written_at = self.applied

    def keep_position(self) -> None:
        """Write the position down if it moved without a commit carrying it (called about
        once a second, so a restart replays little)."""
        if self.applied != self._written_at:
            self._note_position(write=True)

    # -- sessions moving between nodes -------------------------------------------------------

    async def stored_position(self, node: str) -> int | None:
        """Where ``node`` (dead, or not answering) last wrote it was in the stream."""
        if self._records is None:
            return None
        return await asyncio.to_thread(self._records.stream_cursor, node)

    async def catch_up(self, client_id: str, after: int,
                       adopt: Callable[[], bool]) -> None:
        """Adopt ``client_id``'s session (``adopt``, False: nothing to adopt) and deliver
        to it every message after ``after`` (where its previous node left it) up to what
        this node delivered when ``adopt`` ran; the adoption happens in the same loop step
        as the end of the read, so no message falls between."""
        watched: list[Message] = []
        self._watching[client_id] = watched
        try:
            upto = self.applied
            read = await self._read(after + 1, upto) if after < upto else []
        finally:
            self._watching.pop(client_id, None)
        if not adopt():
            return
        if after > self.applied:
            self._skip[client_id] = after
        broker = self._broker
        for message in (*read, *watched):
            broker.publish_remote(message, only=client_id)

    async def _read(self, start: int, end: int) -> list[Message]:
        """Messages ``start`` to ``end`` of the stream, decoded."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        subscription = await self._js.subscribe(
            f"{self._codec.prefix}.>", stream=self.stream, ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=start))
        out: list[Message] = []
        try:
            while True:
                try:
                    msg = await subscription.next_msg(timeout=FETCH_WAIT)
                except Exception:  # noqa: BLE001 - removed from the stream meanwhile
                    log.error("cluster: stream %s ended at message %d while reading up to "
                              "%d for a session moving here", self.stream,
                              start + len(out) - 1, end)
                    break
                seq = int(msg.metadata.sequence.stream)
                if seq > end:
                    break
                out.extend(self._decode(msg))
                if seq >= end:
                    break
        finally:
            try:
                await subscription.unsubscribe()
            except Exception:  # noqa: BLE001, S110 - the connection may be gone already
                pass
        return out
