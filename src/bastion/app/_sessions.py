"""The durable-sessions component: reads the stored sessions back, then runs the journal."""

from __future__ import annotations

import asyncio
import logging

from ..broker import Broker, DurableSessionDirectory, GroupCommit
from ..config import SessionsConfig
from ..lifecycle import Component
from ..sessions import SqlSessionRecords
from ..store import Store

log = logging.getLogger("bastion.sessions")


class DurableSessions(Component):
    """Start: load what the store holds (persistent sessions, their subscriptions and
    deliveries, retained messages) into the broker's directory, bind the restored sessions'
    permissions and arm their timers, then journal every change. Stop: wait until the
    journal has written everything (after the listeners closed every connection)."""

    name = "sessions"

    def __init__(self, broker: Broker, store: Store, config: SessionsConfig) -> None:
        directory = broker.directory
        if not isinstance(directory, DurableSessionDirectory):
            raise TypeError("durable sessions need the broker built with a "
                            "DurableSessionDirectory")
        self._broker = broker
        self._directory = directory
        self.records = SqlSessionRecords(store.engine, synchronous=config.synchronous)
        self.commit: GroupCommit | None = None

    async def start(self) -> None:
        broker = self._broker
        snapshot = await asyncio.to_thread(self.records.load,
                                           broker.limits.max_queued_messages)
        self.commit = GroupCommit(self.records, broker.clock, asyncio.get_running_loop())
        self._directory.open_journal(self.commit)
        sessions = self._directory.restore(snapshot)
        await broker.resume_stored(sessions)
        if sessions or snapshot.retained:
            log.info("restored %d persistent sessions (%d kept), %d stored deliveries and "
                     "%d retained messages", len(sessions), len(broker.sessions),
                     sum(count for count, _, _ in snapshot.totals.values()),
                     len(broker.retained))

    async def stop(self) -> None:
        if self.commit is not None:
            await self.commit.close()
