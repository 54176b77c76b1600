"""The jobs service's background task: timers, rollout, registry events.

Theory of operation
-------------------
One asyncio task per running Bastion. Each round it applies the registry events received
since the last round (in arrival order), then runs :meth:`JobService.run_due`, both in a
worker thread (they use the database). It then sleeps until the next round: at most
``interval`` seconds (real time), less when the service reports earlier work, and no
longer once :meth:`JobScheduler.poke` or a new event wakes it. Timers are judged by the
*service's* clock, so a test advances a fake clock and pokes the scheduler instead of
waiting. A failing round is logged and retried at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime

from bastion.registry import ThingDeleted, ThingGroupDeleted, ThingGroupMembershipChanged

from ._service import JobService

log = logging.getLogger("bastion.jobs")

_REGISTRY_EVENTS = (ThingGroupMembershipChanged, ThingGroupDeleted, ThingDeleted)


class JobScheduler:
    """Runs the upkeep of ``service`` in the background.

    :param interval: the longest sleep between two rounds, in seconds.
    :raises ValueError: ``interval`` is not positive.
    """

    def __init__(self, service: JobService, *, interval: float = 1.0,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._service = service
        self._interval = interval
        self._loop = loop
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._events: deque[object] = deque()
        self.rounds = 0

    def start(self) -> None:
        """Run :meth:`run` as a task of the running loop (or use :meth:`run` directly in a
        task of your own, e.g. ``broker.spawn(scheduler.run())``).

        :raises RuntimeError: no running loop, or already started.
        """
        if self._task is not None:
            raise RuntimeError("the job scheduler is already running")
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self.run(), name="bastion-jobs")

    async def stop(self) -> None:
        """Stop the task (a round in progress finishes its database work first)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def publish(self, event: object) -> None:
        """An event sink (any thread): registry events that concern jobs are queued for
        the next round, which starts at once; others are ignored."""
        if not isinstance(event, _REGISTRY_EVENTS):
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._accept, event)

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
        while True:
            self._wake.clear()
            delay = self._interval
            try:
                next_due = await self._round()
                if next_due is not None:
                    seconds = (next_due - self._service.now()).total_seconds()
                    delay = min(delay, max(0.05, seconds))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("jobs upkeep round failed; retrying")
            self.rounds += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

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
