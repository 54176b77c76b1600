"""This node in a cluster: its NATS connection, its part in the session registry, and the
security events it shares with the other nodes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..broker import (
    Broker,
    DurableSessionDirectory,
    Principal,
    SessionPermissions,
    SessionRecords,
)
from ..config import ClusterConfig
from ..events import EventBus
from ..lifecycle import Component
from ..mqtt import ReasonCode
from ._events import RELAYED, decode_event, encode_event
from ._lease import LeaseKeeper
from ._messages import MessageRelay, SharingNodes
from ._registry import SessionRegistry
from ._status import Lease, NodeStatus, nodes_bucket
from ._stream import MessageStream
from ._subjects import SubjectCodec

log = logging.getLogger("bastion.cluster")


async def _bounded(steps: list[Coroutine[Any, Any, Any]], timeout: float) -> None:
    """Run ``steps`` together for at most ``timeout`` seconds (a node cut off from NATS
    still stops); what has not finished by then is cancelled, failures are ignored."""
    if not steps:
        return
    tasks = [asyncio.ensure_future(step) for step in steps]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class ClusterNode(Component):
    """Connects to the cluster's NATS, makes the broker claim every client id in the
    session registry before it opens a session (``Broker.ownership``), and relays the
    registry's security events between this node's bus and the other nodes'.

    :param records: where the directory's sessions are stored (``None`` without durable
        sessions: a session taken over from another node then starts afresh).
    :param resync: re-check every live session against the registry; called when the
        node reaches NATS again after losing it (events sent meanwhile never came).
    """

    name = "cluster"

    def __init__(self, broker: Broker, config: ClusterConfig,
                 records: SessionRecords | None, bus: EventBus,
                 resync: Callable[[], object]) -> None:
        self._broker = broker
        self._config = config
        self._records = records
        self._bus = bus
        self._resync = resync
        self.node = config.node
        self._lease = Lease(config.lease)
        self._nc: Any = None
        self._shared_nc: Any = None  # echo on: the shared subscriptions' queue groups
        self.registry: SessionRegistry | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: list[Callable[[], None]] = []
        self._relaying: object | None = None  # the remote event being published here
        self.relay: MessageRelay | None = None
        self._nodes: Any = None  # the heartbeat bucket, read to tell whether a node lives
        self._keeper: LeaseKeeper | None = None
        self._started = 0.0
        self.fenced = False  # sessions given up: this node could not renew its lease

    @property
    def _events_subject(self) -> str:
        return f"{self._config.name}.ev"

    async def start(self) -> None:
        import nats

        # A loop too busy to answer NATS's pings for a few seconds (thousands of
        # connections closing at once) is not a dead server: the connection is given up
        # only after about a lease without a pong. Whether this node may keep its
        # sessions meanwhile is the lease's business (renewed from its own thread).
        self._nc = await nats.connect(self._config.nats_url, name=f"bastion-{self.node}",
                                      max_reconnect_attempts=-1, no_echo=True,
                                      ping_interval=max(1.0, self._lease.heartbeat),
                                      max_outstanding_pings=3,
                                      reconnected_cb=self._reconnected,
                                      disconnected_cb=self._disconnected)
        self.registry = SessionRegistry(self._nc, self._config.name, self.node)
        await self.registry.start(self._hand_over, self._lost, self._alive)
        await self._nc.subscribe(self._events_subject, cb=self._remote_event)
        self._unsubscribe = [self._bus.subscribe(kind, self._local_event)
                             for kind in RELAYED]
        broker = self._broker
        name = self._config.name
        await self._sweep()
        self._shared_nc = await nats.connect(self._config.nats_url,
                                             name=f"bastion-{self.node}-shared",
                                             max_reconnect_attempts=-1)
        directory = broker.directory
        commit = directory.commit if isinstance(directory, DurableSessionDirectory) else None
        stream = MessageStream(self._nc, name, self.node, broker, broker.clock, commit,
                               self._records, max_age=self._config.stream_max_age,
                               max_bytes=self._config.stream_max_bytes)
        relay = self.relay = MessageRelay(self._nc, self._shared_nc,
                                          SubjectCodec(f"{name}.msg"),
                                          SubjectCodec(f"{name}.ret"), broker, broker.clock,
                                          stream, SharingNodes(self._nc, name, self.node))
        await relay.start()
        broker.directory.interest = relay
        broker.directory.share_here = False
        for topic_filter in broker.directory.filters():  # sessions restored at start
            relay.added(topic_filter)
        broker.relay = relay
        broker.ownership = self
        self._nodes = await nodes_bucket(self._nc, self._config.name, self._lease)
        self._started = broker.clock.time()
        self._keeper = LeaseKeeper(self._config.nats_url, name, self.node, self._lease,
                                   self._status, broker.clock.monotonic)
        await self._keeper.start()
        log.info("cluster %r: node %r on %s", self._config.name, self.node,
                 self._config.nats_url)

    async def _sweep(self) -> None:
        """Sessions read back from the store at start: give up those another node owns now
        (it adopted them while this node was away) and claim those nobody owns."""
        registry = self.registry
        assert registry is not None
        broker = self._broker

        async def settle(client_id: str) -> None:
            owner, _ = await registry.owner(client_id)
            if owner is None:
                await registry.claim(client_id)
            elif owner.node != self.node:
                log.info("client %r is owned by node %r now", client_id, owner.node)
                broker.give_up(client_id)

        held = list(broker.directory.sessions)
        for start in range(0, len(held), 64):
            await asyncio.gather(*(settle(client_id) for client_id in held[start:start + 64]))

    async def run(self) -> None:
        """Every second: tell the lease keeper the loop turns, and give up every session
        when the lease has not been renewed for two thirds of it (take them again once it
        is)."""
        clock = self._broker.clock
        keeper = self._keeper
        assert keeper is not None
        while True:
            await asyncio.sleep(1.0)
            keeper.turned()
            late = clock.monotonic() - keeper.renewed
            if not self.fenced and late > self._lease.fence:
                self._fence()
            elif self.fenced and late < self._lease.fence:
                self.fenced = False
                log.warning("cluster: lease renewed; this node accepts devices again")
            if self.relay is not None:
                self.relay.stream.keep_position()

    def _status(self) -> NodeStatus:
        """This node's heartbeat entry (read in the lease keeper's thread)."""
        from .. import __version__

        broker = self._broker
        return NodeStatus(self.node, __version__, self._started, broker.clock.time(),
                          len(broker.connections), len(broker.sessions))

    def _fence(self) -> None:
        """The lease is about to run out and cannot be renewed: another node may soon
        take any of this node's sessions. Give them all up first (connections closed with
        0x9C, use another server; what the store holds stays for the next owner)."""
        self.fenced = True
        broker = self._broker
        held = list(broker.sessions)
        log.warning("cluster: could not renew this node's lease for %.0f s; giving up "
                    "its %d sessions", self._lease.fence, len(held))
        for client_id in held:
            broker.give_up(client_id, ReasonCode.USE_ANOTHER_SERVER)

    async def _alive(self, node: str) -> bool:
        """Whether ``node``'s lease still runs (its heartbeat entry exists and is fresh)."""
        try:
            entry = await self._nodes.get(node)
        except Exception:  # noqa: BLE001 - no entry: no lease
            return False
        try:
            seen = NodeStatus.from_json(entry.value or b"").seen
        except (ValueError, KeyError):
            return False
        return self._broker.clock.time() - seen <= self._lease.seconds

    async def stop(self) -> None:
        """Leave the cluster; every step is bounded, so a node cut off still stops."""
        broker = self._broker
        broker.ownership = None
        broker.relay = None
        broker.directory.interest = None
        broker.directory.share_here = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._tasks:  # the releases of the sessions the listeners just closed
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        leaving = [self.relay.close() if self.relay is not None else None,
                   self.registry.stop() if self.registry is not None else None,
                   self._keeper.stop() if self._keeper is not None else None]
        await _bounded([step for step in leaving if step is not None], 3.0)
        await _bounded([connection.close()
                        for connection in (self._shared_nc, self._nc)
                        if connection is not None], 3.0)

    @property
    def connected(self) -> bool:
        """Whether the node reaches the cluster's NATS now (its readiness)."""
        return self._nc is not None and bool(self._nc.is_connected)

    # -- Broker.ownership ------------------------------------------------------------------

    async def claim(self, client_id: str, principal: Principal,
                    permissions: SessionPermissions) -> None:
        assert self.registry is not None
        previous = await self.registry.claim(client_id)
        if previous is None or previous.node == self.node or self._records is None:
            return
        directory = self._broker.directory
        if not isinstance(directory, DurableSessionDirectory):
            return
        snapshot = await asyncio.to_thread(
            self._records.load, self._broker.limits.max_queued_messages, client_id)
        if not snapshot.sessions:
            return
        relay = self.relay
        position = previous.position
        if position is None and relay is not None:  # it did not answer: its stored one
            position = await relay.stream.stored_position(previous.node)

        def adopt() -> bool:
            """Bring the session here; True when it is the connecting certificate's (else
            the CONNECT replaces it and nothing need reach it)."""
            ours = False
            for session in directory.adopt(snapshot):
                if session.principal.identity == principal.identity:
                    session.set_permissions(permissions)
                    ours = True
            return ours

        if relay is None or position is None:
            adopt()
            return
        await relay.stream.catch_up(client_id, position, adopt)

    def released(self, client_id: str) -> None:
        if self.registry is None or self.fenced:
            return  # fenced: the key goes to whoever claims it once the lease has run out
        task = asyncio.get_running_loop().create_task(self._release(client_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, client_id: str) -> None:
        assert self.registry is not None
        try:
            await self.registry.release(client_id)
        except Exception as exc:  # noqa: BLE001 - the next claim overwrites the key anyway
            log.debug("cluster: releasing client %r failed: %s", client_id, exc)

    # -- events ---------------------------------------------------------------------------

    def _local_event(self, event: object) -> None:
        if event is self._relaying or self._nc is None:
            return  # it came from another node: it is not sent back
        task = asyncio.get_running_loop().create_task(
            self._nc.publish(self._events_subject, encode_event(event)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _remote_event(self, msg: Any) -> None:
        try:
            event = decode_event(msg.data)
        except ValueError as exc:
            log.warning("ignored a malformed cluster event: %s", exc)
            return
        self._relaying = event
        try:
            self._bus.publish(event)
        finally:
            self._relaying = None

    async def _disconnected(self) -> None:
        log.warning("cluster: NATS is unreachable; new CONNECTs are refused until it is back")

    async def _reconnected(self) -> None:
        log.info("cluster: NATS reachable again; re-checking every live session")
        self._resync()

    # -- asked by the registry ---------------------------------------------------------------

    async def _hand_over(self, client_id: str) -> int:
        """Another node claimed ``client_id``: give it up and let the journal finish.
        Returns where this node was in the message stream when it gave the session up:
        the new owner delivers to it what comes after."""
        self._broker.give_up(client_id)
        position = self.relay.stream.applied if self.relay is not None else 0
        directory = self._broker.directory
        if isinstance(directory, DurableSessionDirectory) and directory.commit is not None:
            await directory.commit.drain()
        return position

    def _lost(self, client_id: str, node: str) -> None:
        if self._broker.directory.get(client_id) is not None:
            log.info("client %r is owned by node %r now", client_id, node)
            self._broker.give_up(client_id)
