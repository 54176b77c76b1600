"""The audit scheduler of ``bastion serve``: starts scheduled audits when they are due and
refreshes CRL sources when theirs are, then sleeps until the next of either (or until a
schedule changes). Blocking work runs in worker threads; the loop itself never blocks.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bastion.clock import Clock
from bastion.lifecycle import Component

from ._schedule import MAX_WAIT
from ._service import AuditService

log = logging.getLogger("bastion.defender.audit")


class AuditScheduler(Component):
    """Scheduled audits and CRL refreshes: a component of the running Bastion.

    :param clock: what time it is and how to wait (a hand-moved clock in tests).
    :param max_wait: the longest sleep, so a schedule written by another node is seen.
    """

    name = "audit-scheduler"

    def __init__(self, service: AuditService, clock: Clock, *,
                 max_wait: timedelta = MAX_WAIT) -> None:
        self._service = service
        self._clock = clock
        self._max_wait = max_wait
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rounds = 0
        self.round_done = asyncio.Event()

    def wake(self) -> None:
        """Look at the schedules again now (thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._service.schedule_changed = self.wake

    async def stop(self) -> None:
        """Stop (the lifecycle then cancels :meth:`run`) and wait for the check running
        now, in its worker thread."""
        self._service.schedule_changed = lambda: None
        await asyncio.to_thread(self._service.close)

    async def run(self) -> None:
        service = self._service
        while True:
            self._wake.clear()
            now = self._clock.now()
            try:
                started = await asyncio.to_thread(service.run_due, now)
                for task_id in started:
                    log.info("scheduled audit task %s started", task_id)
                await asyncio.to_thread(service.crls.refresh, only_due=True)
                upcoming = [t for t in (await asyncio.to_thread(service.next_scheduled_run),
                                        await asyncio.to_thread(service.crls.next_due))
                            if t is not None]
            except Exception:
                log.exception("the audit scheduler failed; retrying later")
                upcoming = []
            self.rounds += 1
            self.round_done.set()
            deadline = min([now + self._max_wait, *upcoming])
            await self._clock.sleep_until(deadline, self._wake)
