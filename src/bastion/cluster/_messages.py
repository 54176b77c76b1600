"""Messages across nodes: what is published on one node reaches the subscribers on all.

Theory of operation
-------------------
Two paths, by what a message must survive:

* **QoS 1 and 2, and retained messages** go through the cluster's JetStream stream
  (:class:`~bastion.cluster._stream.MessageStream`): the publisher's acknowledgement
  waits for the stream's, every node reads the stream in order and delivers each message
  to its own sessions, and a node's position in the stream is committed with the
  deliveries it made. Nothing acknowledged is lost with a node.
* **QoS 0** goes over core NATS, at most once, as MQTT allows. Every node subscribes to
  the subjects of the topic filters its sessions subscribe to
  (:class:`~bastion.cluster.SubjectCodec` maps filters to subjects so that NATS's matching
  is MQTT's), once per filter however many sessions share it. A message published on a
  node is delivered to that node's subscribers as on a single node, then sent once on
  its topic's subject; the node's NATS connection has ``no_echo`` set, so it never comes
  back to it.

Every message is also sent on core NATS (retained ones under a second prefix) for the
shared subscriptions, which are balanced across the fleet by NATS queue groups: every
node with a member of ``$share/<group>/<filter>`` subscribes to the filter's subjects in
a queue group named after the whole shared filter, so NATS hands each message to one of
those nodes, which gives it to one of its members. These subscriptions use a second NATS
connection without ``no_echo``, since the node that published a message may be the one
chosen; nodes then route without their shared subscriptions. A shared subscription on
another node therefore gets a message at most once across the hop, whatever its QoS.

The wire form is the message as an MQTT 5 PUBLISH (every property survives; an expiry
becomes the interval left), framed with the publishing client's id (for MQTT 5 "no
local"; :func:`~bastion.cluster._stream.frame`). The messages one loop step publishes on
one topic go out as one NATS message of such frames, so NATS and its client pay their
per-message costs once per topic and step rather than once per message.

Subscriptions change on the event loop without waiting: a change marks what is wanted,
and one task brings the NATS subscriptions in line (so a subscribe and an unsubscribe of
one filter never race).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from functools import partial
from typing import Any

from ..broker import Broker, Message, QueueBudget, decode_message, encode_message
from ..clock import Clock
from ..mqtt import parse_shared_subscription
from ._stream import MessageStream, frame, pack, unpack
from ._subjects import SubjectCodec

log = logging.getLogger("bastion.cluster")

RELAY_BUDGET = 5_000
"""What may wait to go out on core NATS, in units of one per message plus one per KiB,
before the broker holds back each connection that publishes (as the queues' memory
budget does), until it is under three quarters of it: a node takes QoS 0 messages no
faster than it can pass them on. Reached before ``MAX_BACKLOG``."""
MAX_BACKLOG = 10_000
"""Messages waiting to go out on core NATS. Beyond it (publishers the budget cannot hold:
the API, Bastion's own services) a node drops the copies for the other nodes (counted, logged every ``DROP_LOG_INTERVAL`` seconds) rather than holding
them in memory: a node publishing faster than NATS takes keeps its memory, and the other
nodes' subscribers miss QoS 0 messages, as QoS 0 allows. (QoS 1 and 2 are held back
instead: their acknowledgement waits for the stream.)"""
DROP_LOG_INTERVAL = 10.0

STREAMED_FLAGS = 0x07
"""The PUBLISH fixed-header bits of a message that travels in the stream (QoS, retain)."""

Want = tuple[str, str, str]
"""A NATS subscription this node needs: (subject, queue group or "", shared filter or "")."""


class SharingNodes:
    """Which nodes have members of shared subscriptions now: a key per such node in the
    bucket ``<name>_shared``, watched by every node. A QoS 1 or 2 message travels in the
    stream; its copy on core NATS serves only the shared subscriptions' queue groups, so
    a node sends that copy only while some node has one.

    A node that dies with its key set leaves it behind: the others then send copies
    nobody takes, which costs them a little and loses nothing.
    """

    def __init__(self, nc: Any, name: str, node: str) -> None:
        self._nc = nc
        self._bucket_name = f"{name}_shared"
        self._node = node
        self._bucket: Any = None
        self._watcher: Any = None
        self._task: asyncio.Task[None] | None = None
        self._mine = False
        self.nodes: set[str] = set()

    async def start(self) -> None:
        from nats.js.api import KeyValueConfig

        self._bucket = await self._nc.jetstream().create_key_value(
            KeyValueConfig(bucket=self._bucket_name, history=1))
        self._watcher = await self._bucket.watchall()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            try:
                entry = await self._watcher.updates(timeout=3600)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - NATS away: the watcher resumes
                await asyncio.sleep(1.0)
                continue
            if entry is None:
                continue
            if entry.value:
                self.nodes.add(entry.key)
            else:
                self.nodes.discard(entry.key)

    async def set(self, mine: bool) -> None:
        """Say whether this node has members of shared subscriptions now."""
        if mine == self._mine or self._bucket is None:
            return
        if mine:
            await self._bucket.put(self._node, b"1")
            self.nodes.add(self._node)
        else:
            await self._bucket.delete(self._node)
        self._mine = mine

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for step in (self.set(False), self._watcher.stop() if self._watcher else None):
            if step is not None:
                try:
                    await asyncio.wait_for(step, timeout=2.0)
                except Exception:  # noqa: BLE001, S112 - the connection may be gone already
                    continue


def queue_group(share_filter: str) -> str:
    """The NATS queue group of a shared subscription (a valid token, one per filter)."""
    return "s" + base64.urlsafe_b64encode(share_filter.encode()).decode().rstrip("=")


class MessageRelay:
    """The broker's ``relay`` and its directory's ``interest`` (see the module docstring)."""

    def __init__(self, nc: Any, shared_nc: Any, codec: SubjectCodec, retained: SubjectCodec,
                 broker: Broker, clock: Clock, stream: MessageStream,
                 sharing: SharingNodes | None = None) -> None:
        """:param nc: the node's connection (``no_echo``); :param shared_nc: a second one,
        with echo, for the shared subscriptions' queue groups. :param codec: the subjects
        of messages; :param retained: of retained ones. :param stream: the cluster's
        message stream; :param sharing: which nodes have shared subscriptions (None:
        assume some do)."""
        self._nc = nc
        self._shared_nc = shared_nc
        self._codec = codec
        self._retained = retained
        self._broker = broker
        self._clock = clock
        self.stream = stream
        self._sharing = sharing
        self._wanted: dict[Want, int] = {}  # -> filters here that need it
        self._subscribed: dict[Want, Any] = {}
        self._reconciling: asyncio.Task[None] | None = None
        self._out: list[tuple[str, bytes]] = []  # (subject, frame)
        self._sending: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.received = 0
        self.dropped = 0
        self._backlog = 0
        self.budget = QueueBudget(RELAY_BUDGET)
        self._dropped_logged = (0.0, 0)  # when, and the count then

    # -- interest (the directory's filters) -----------------------------------------------

    def added(self, topic_filter: str) -> None:
        for want in self._wants(topic_filter):
            self._wanted[want] = self._wanted.get(want, 0) + 1
        self._reconcile_soon()

    def removed(self, topic_filter: str) -> None:
        for want in self._wants(topic_filter):
            count = self._wanted.get(want, 0) - 1
            if count > 0:
                self._wanted[want] = count
            else:
                self._wanted.pop(want, None)
        self._reconcile_soon()

    def _wants(self, topic_filter: str) -> list[Want]:
        shared = parse_shared_subscription(topic_filter)
        try:
            if shared is None:
                return [(s, "", "") for s in self._codec.encode_filter(topic_filter)]
            inner, queue = shared.topic_filter, queue_group(topic_filter)
            return [(s, queue, topic_filter)
                    for codec in (self._codec, self._retained)
                    for s in codec.encode_filter(inner)]
        except ValueError:
            return []

    @property
    def settled(self) -> bool:
        """Whether the NATS subscriptions match the filters subscribed here."""
        return self._reconciling is None and set(self._subscribed) == set(self._wanted)

    def _reconcile_soon(self) -> None:
        if self._reconciling is None:
            self._reconciling = asyncio.get_running_loop().create_task(self._reconcile())

    async def _reconcile(self) -> None:
        try:
            while True:
                missing = [s for s in self._wanted if s not in self._subscribed]
                extra = [s for s in self._subscribed if s not in self._wanted]
                if not missing and not extra:
                    break
                for want in missing:
                    subject, queue, share_filter = want
                    if queue:
                        self._subscribed[want] = await self._shared_nc.subscribe(
                            subject, queue=queue,
                            cb=partial(self._incoming_shared, share_filter))
                    else:
                        self._subscribed[want] = await self._nc.subscribe(
                            subject, cb=self._incoming)
                for want in extra:
                    await self._subscribed.pop(want).unsubscribe()
            await self._nc.flush()  # the server knows our interest
            await self._shared_nc.flush()
            if self._sharing is not None:
                await self._sharing.set(any(queue for _, queue, _ in self._subscribed))
        except Exception:
            log.exception("cluster: subscribing to the other nodes' messages failed")
        finally:
            self._reconciling = None
        if not self.settled:
            self._reconcile_soon()

    async def start(self) -> None:
        """Read the stream on from this node's position."""
        if self._sharing is not None:
            await self._sharing.start()
        await self.stream.start()

    async def close(self) -> None:
        self.budget.release()
        await self.stream.close()
        if self._sharing is not None:
            await self._sharing.close()
        if self._reconciling is not None:
            self._reconciling.cancel()
        for task in list(self._sending):
            task.cancel()
        for subscription in self._subscribed.values():
            try:
                await subscription.unsubscribe()
            except Exception:  # noqa: BLE001, S112 - the connection may be gone already
                continue
        self._subscribed.clear()

    # -- out and in -----------------------------------------------------------------------

    def streams(self, message: Message) -> bool:
        return self.stream.streams(message)

    def send(self, message: Message) -> None:
        try:
            codec = self._retained if message.retain else self._codec
            subject = codec.encode_topic(message.topic)
        except ValueError:
            return
        data = encode_message(message, self._clock)
        if self.stream.streams(message):
            self.stream.send(message, data)
            if self._sharing is not None and not self._sharing.nodes:
                return  # the copy on core NATS would serve no shared subscription
        if self._backlog >= MAX_BACKLOG:
            self._drop()
            return
        self._backlog += 1
        framed = frame(message.origin or "", data)
        self.budget.take(1 + (len(framed) >> 10))
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append((subject, framed))

    def _drop(self) -> None:
        self.dropped += 1
        now = self._clock.monotonic()
        logged_at, count = self._dropped_logged
        if now - logged_at >= DROP_LOG_INTERVAL:
            self._dropped_logged = (now, self.dropped)
            log.warning("cluster: NATS takes messages slower than they are published here; "
                        "%d copies for the other nodes dropped (%d in all; their QoS 0 "
                        "subscribers miss them)", self.dropped - count, self.dropped)

    def _flush(self) -> None:
        """Send what this loop step published: the messages of one topic together, as one
        NATS message of frames (the per-message costs of NATS and its client are paid
        once per topic and step)."""
        out, self._out = self._out, []
        if not out:
            return
        by_subject: dict[str, list[bytes]] = {}
        size = 0
        for subject, one in out:
            by_subject.setdefault(subject, []).append(one)
            size += 1 + (len(one) >> 10)
        task = asyncio.get_running_loop().create_task(
            self._publish(by_subject, len(out), size))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, by_subject: dict[str, list[bytes]], count: int, size: int
                       ) -> None:
        sent = 0
        try:
            for subject, frames in by_subject.items():
                for batch in pack(frames):
                    await self._nc.publish(subject, batch)
                sent += len(frames)
        except Exception as exc:  # noqa: BLE001 - NATS unreachable: local delivery stands
            self.dropped += count - sent
            log.warning("cluster: %d messages not relayed to the other nodes: %s",
                        count - sent, exc)
        finally:
            self.sent += sent
            self._backlog -= count
            self.budget.give(size)

    async def _incoming(self, msg: Any) -> None:
        publish = self._broker.publish_remote
        for message in self._decoded(msg, skip_streamed=True):
            self.received += 1
            publish(message)

    async def _incoming_shared(self, share_filter: str, msg: Any) -> None:
        deliver = self._broker.deliver_shared
        for message in self._decoded(msg):
            deliver(message, share_filter)

    def _decoded(self, msg: Any, skip_streamed: bool = False) -> list[Message]:
        """The messages of a batch; ``skip_streamed``: not those that travel in the stream
        (their copy here is for the shared subscriptions)."""
        messages: list[Message] = []
        try:
            for origin, data in unpack(msg.data):
                if skip_streamed and data and data[0] & STREAMED_FLAGS:
                    continue
                messages.append(decode_message(data, origin or None, self._clock))
        except Exception as exc:  # noqa: BLE001 - a malformed relay never stops the node
            log.warning("cluster: ignored what is left of a malformed batch on %s: %s",
                        msg.subject, exc)
        return messages
