"""This node in a cluster: its NATS connection and its part in the session registry."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..broker import Broker, DurableSessionDirectory, SessionRecords
from ..config import ClusterConfig
from ..lifecycle import Component
from ._registry import SessionRegistry

log = logging.getLogger("bastion.cluster")


class ClusterNode(Component):
    """Connects to the cluster's NATS and makes the broker claim every client id in the
    session registry before it opens a session (``Broker.ownership``).

    :param records: where the directory's sessions are stored (``None`` without durable
        sessions: a session taken over from another node then starts afresh).
    """

    name = "cluster"

    def __init__(self, broker: Broker, config: ClusterConfig,
                 records: SessionRecords | None) -> None:
        self._broker = broker
        self._config = config
        self._records = records
        self.node = config.node
        self._nc: Any = None
        self.registry: SessionRegistry | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        import nats

        self._nc = await nats.connect(self._config.nats_url, name=f"bastion-{self.node}",
                                      max_reconnect_attempts=-1)
        self.registry = SessionRegistry(self._nc, self._config.name, self.node)
        await self.registry.start(self._hand_over, self._lost)
        self._broker.ownership = self
        log.info("cluster %r: node %r on %s", self._config.name, self.node,
                 self._config.nats_url)

    async def stop(self) -> None:
        self._broker.ownership = None
        if self._tasks:  # the releases of the sessions the listeners just closed
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        if self.registry is not None:
            await self.registry.stop()
        if self._nc is not None:
            await self._nc.close()

    @property
    def connected(self) -> bool:
        """Whether the node reaches the cluster's NATS now (its readiness)."""
        return self._nc is not None and bool(self._nc.is_connected)

    # -- Broker.ownership ------------------------------------------------------------------

    async def claim(self, client_id: str) -> None:
        assert self.registry is not None
        previous = await self.registry.claim(client_id)
        if previous is None or previous.node == self.node or self._records is None:
            return
        directory = self._broker.directory
        if not isinstance(directory, DurableSessionDirectory):
            return
        snapshot = await asyncio.to_thread(
            self._records.load, self._broker.limits.max_queued_messages, client_id)
        if snapshot.sessions:
            directory.adopt(snapshot)

    def released(self, client_id: str) -> None:
        if self.registry is None:
            return
        task = asyncio.get_running_loop().create_task(self.registry.release(client_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- asked by the registry ---------------------------------------------------------------

    async def _hand_over(self, client_id: str) -> None:
        """Another node claimed ``client_id``: give it up and let the journal finish."""
        self._broker.give_up(client_id)
        directory = self._broker.directory
        if isinstance(directory, DurableSessionDirectory) and directory.commit is not None:
            await directory.commit.drain()

    def _lost(self, client_id: str, node: str) -> None:
        if self._broker.directory.get(client_id) is not None:
            log.info("client %r is owned by node %r now", client_id, node)
            self._broker.give_up(client_id)
