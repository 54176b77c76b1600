"""The rotation keeper of ``bastion serve``: the sweep, the graces, and the events.

Theory of operation
-------------------
A component (:class:`bastion.lifecycle.Component`); its ``run`` is one task. It takes
two kinds of news, on the event loop, without touching the database there:

* :meth:`RotationKeeper.certificate_connected` — the composition root forwards the
  broker's ``ClientConnected`` events (services do not import the broker); only a
  certificate the service awaits (a new certificate not seen yet) is queued;
* the jobs service's :class:`~bastion.jobs.JobExecutionsChanged` — a thing's pending
  executions changed (one of them may have ended): the thing is queued.

Each round applies the queued news, then :meth:`RotationService.run_due` (open
rotations reconciled with their jobs, graces that ended acted on), then the sweep when
it is due — all in worker threads. It sleeps until the next grace ends, the next sweep
is due, ``interval`` passes, or news or :meth:`poke` wakes it. Times are the service
clock's, so a test moves a hand-moved clock and pokes instead of waiting days.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

from bastion.events import EventBus
from bastion.jobs import JobExecutionsChanged
from bastion.lifecycle import Component, run_in_rounds

from ._service import RotationService
from ._sweep import FleetSweep

log = logging.getLogger("bastion.rotation")


class RotationKeeper(Component):
    """Runs the sweep and the graces of ``service`` in the background.

    :param sweep: the sweep (``None``: no sweep, the graces and events only).
    :param interval: the longest sleep between two rounds, in seconds.
    :raises ValueError: ``interval`` is not positive.
    """

    name = "rotation-keeper"

    def __init__(self, service: RotationService, bus: EventBus, *,
                 sweep: FleetSweep | None, interval: float = 60.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._service = service
        self._bus = bus
        self._sweep = sweep
        self._interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._connected: deque[str] = deque()
        self._things: deque[str] = deque()
        self._unsubscribe: Callable[[], None] | None = None
        self.rounds = 0
        self.round_done = asyncio.Event()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._bus.subscribe(JobExecutionsChanged, self._jobs_changed)
        await asyncio.to_thread(self._service.refresh_awaited)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def poke(self) -> None:
        """Run a round now (any thread) — e.g. after a test moved the clock."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def certificate_connected(self, certificate_id: str) -> None:
        """A certificate connected (on the loop): queued if a rotation awaits it."""
        if self._service.awaits(certificate_id):
            self._connected.append(certificate_id)
            self._wake.set()

    def _jobs_changed(self, event: object) -> None:
        if isinstance(event, JobExecutionsChanged):
            self._things.append(event.thing_name)
            self._wake.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        await run_in_rounds(self._round, self._wake, interval=self._interval,
                            now=self._service.now, what="rotation round",
                            after=self._counted)

    def _counted(self) -> None:
        self.rounds += 1
        self.round_done.set()

    async def _round(self) -> datetime | None:
        service = self._service
        while self._connected:
            certificate_id = self._connected.popleft()
            await asyncio.to_thread(service.certificate_connected, certificate_id,
                                    service.now())
        things = set()
        while self._things:
            things.add(self._things.popleft())
        for thing in sorted(things):
            await asyncio.to_thread(service.reconcile_thing, thing)
        wake = [await asyncio.to_thread(service.run_due)]
        if self._sweep is not None:
            await asyncio.to_thread(self._sweep.sweep_if_due)
            wake.append(await asyncio.to_thread(self._sweep.next_sweep))
        known = [w for w in wake if w is not None]
        return min(known) if known else None
