"""IndexKeeper: the long-running part of the fleet index.

It builds the index when the configuration asks for a (re)build — at start, and after
UpdateIndexingConfiguration — and applies the changes the bus reported, each time in a
worker thread so that the event loop never waits on the store. Every :data:`REFRESH`
seconds it re-reads the configuration and the dynamic groups (another node's). Changes are applied at
most :data:`SETTLE` seconds after they were noted (a burst of events is read back in one
batch); a query applies whatever is still noted before it answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from bastion.events import EventBus
from bastion.lifecycle import Component

from ._service import FleetIndex

log = logging.getLogger("bastion.index")

SETTLE: Final = 0.02
REFRESH: Final = 30.0
"""Seconds between re-reads of the configuration and the dynamic groups from the store
(in a cluster, what another node changed)."""


class IndexKeeper(Component):
    """Keeps ``index`` built and up to date from ``bus`` (see the module docstring)."""

    name = "fleet-index"

    def __init__(self, index: FleetIndex, bus: EventBus) -> None:
        self._index = index
        self._bus = bus
        self._wake_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._unsubscribe = self._index.subscribe(self._bus, self._wake)
        self._wake_event.set()  # build at once if the configuration asks for it

    def _wake(self) -> None:
        loop, event = self._loop, self._wake_event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        assert self._wake_event is not None
        event = self._wake_event
        loop = asyncio.get_running_loop()
        next_refresh = loop.time() + REFRESH
        while True:
            try:
                await asyncio.wait_for(event.wait(), max(0.0, next_refresh - loop.time()))
            except TimeoutError:
                pass
            else:
                await asyncio.sleep(SETTLE)
                event.clear()
            if loop.time() >= next_refresh:
                await self._round(self._index.refresh)
                next_refresh = loop.time() + REFRESH
            if self._index.needs_build:  # also retries a build that failed (store down)
                await self._round(self._index.rebuild)
            await self._round(self._index.flush)

    @staticmethod
    async def _round(work: Callable[[], None]) -> None:
        try:
            await asyncio.to_thread(work)
        except Exception:  # a failed round is retried on the next event
            log.exception("index: applying changes failed")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
