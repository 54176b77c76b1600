"""The jobs service's background task: timers, rollout, registry events.

Theory of operation
-------------------
A component of the running Bastion (:class:`bastion.lifecycle.Component`): its ``run``
is the one task. It subscribes to the registry's membership events on the bus. Each round
it applies the registry events received since the last round (in arrival order), then runs :meth:`JobService.run_due`, both in a
worker thread (they use the database). It then sleeps until the next round: at most
``interval`` seconds (real time), less when the service reports earlier work, and no
longer once :meth:`JobScheduler.poke` or a new event wakes it. Timers are judged by the
*service's* clock, so a test advances a fake clock and pokes the scheduler instead of
waiting. A failing round is logged and retried at the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

from bastion.events import EventBus
from bastion.lifecycle import Component, run_in_rounds
from bastion.registry import ThingDeleted, ThingGroupDeleted, ThingGroupMembershipChanged

from ._service import JobService

log = logging.getLogger("bastion.jobs")

_REGISTRY_EVENTS = (ThingGroupMembershipChanged, ThingGroupDeleted, ThingDeleted)


class JobScheduler(Component):
    """Runs the upkeep of ``service`` in the background.

    :param bus: where the registry's membership events come from.
    :param interval: the longest sleep between two rounds, in seconds.
    :raises ValueError: ``interval`` is not positive.
    """

    name = "jobs-scheduler"

    def __init__(self, service: JobService, bus: EventBus, *, interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._service = service
        self._bus = bus
        self._interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._events: deque[object] = deque()
        self._unsubscribe: list[Callable[[], None]] = []
        self.rounds = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = [self._bus.subscribe(kind, self._accept)
                             for kind in _REGISTRY_EVENTS]

    async def stop(self) -> None:
        """Stop listening (the lifecycle then cancels :meth:`run`; a round's database work
        in a worker thread finishes)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def poke(self) -> None:
        """Run a round now (any thread) — e.g. after a test advanced the clock."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._set_wake)

    def _accept(self, event: object) -> None:
        self._events.append(event)
        self._set_wake()

    def _set_wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """The scheduler's rounds, until cancelled."""
        self._loop = asyncio.get_running_loop()
        await run_in_rounds(self._round, self._wake, interval=self._interval,
                            now=self._service.now, what="jobs upkeep round",
                            after=self._counted)

    def _counted(self) -> None:
        self.rounds += 1

    async def _round(self) -> datetime | None:
        while self._events:
            event = self._events.popleft()
            try:
                await asyncio.to_thread(self._service.on_registry_event, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("jobs: applying %s failed", type(event).__name__)
        return await asyncio.to_thread(self._service.run_due)
