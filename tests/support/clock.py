"""A clock tests move by hand, for code that waits with a
:class:`bastion.defender.audit.Clock` (the audit scheduler)."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta


class ManualClock:
    """``now()`` is whatever the test set; ``sleep_until`` returns when the test moves the
    clock past the deadline (or the sleeper is woken). Thread-safe: the test thread moves
    it while the app's loop sleeps on it."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._sleepers: list[tuple[datetime, asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.sleeping = threading.Event()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment
            due = [s for s in self._sleepers if s[0] <= moment]
            self._sleepers = [s for s in self._sleepers if s[0] > moment]
        for _, loop, event in due:
            loop.call_soon_threadsafe(event.set)

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event) -> None:
        event = asyncio.Event()
        with self._lock:
            if deadline <= self._now:
                return
            self._sleepers.append((deadline, asyncio.get_running_loop(), event))
        self.sleeping.set()
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            with self._lock:
                self._sleepers = [s for s in self._sleepers if s[2] is not event]
