"""A :class:`bastion.clock.Clock` that tests move by hand.

Wall time and monotonic time advance together: :meth:`ManualClock.advance` moves both,
:meth:`ManualClock.set` moves the wall time anywhere and the monotonic time forward by as
much as the wall time went forward (never backward). A coroutine sleeping on the clock
wakes when a move takes it past its deadline, whichever thread made the move. Timers
(``call_later``/``call_at``) run inside the move that passes their deadline, in deadline
order, with the clock standing at that deadline: move a clock with timers from the event
loop's thread (the broker's in-memory harness does).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(eq=False, slots=True)
class _Sleeper:
    wall: datetime | None        # wakes when now() reaches it, or
    monotonic: float | None      # when monotonic() reaches it
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event


class _Timer:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object],
                 args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """``now()`` is whatever the test set; sleepers return when the test moves the clock
    past their deadline (or their ``wake`` event is set). Thread-safe: the test thread
    moves it while an app's loop sleeps on it.

    :param start: the initial wall time (aware); default: the current time, to the second.
    :param tick: when set, every :meth:`now` and :meth:`time` read first advances the
        clock by this much (a clock whose readings are all distinct).
    :param monotonic: where the monotonic time starts (the broker, like a real monotonic
        clock, never sees 0: it uses 0 for "not set").
    :raises ValueError: ``start`` is naive, or ``tick`` is negative.
    """

    def __init__(self, start: datetime | None = None, *,
                 tick: timedelta | None = None, monotonic: float = 0.0) -> None:
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("the start of a ManualClock must be timezone-aware")
        if tick is not None and tick < timedelta(0):
            raise ValueError("tick must not be negative")
        self._now = start.astimezone(UTC)
        self._monotonic = float(monotonic)
        self._tick = tick
        self._lock = threading.Lock()
        self._sleepers: list[_Sleeper] = []
        self._timers: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()
        self.sleeping = threading.Event()
        """Set whenever a coroutine starts sleeping on this clock."""

    # -- reading ---------------------------------------------------------------------------

    def now(self) -> datetime:
        if self._tick is not None:
            self.advance(self._tick)
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.now().timestamp()

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    # -- moving ----------------------------------------------------------------------------

    def set(self, moment: datetime) -> None:
        """Move the wall time to ``moment`` (aware; may be earlier). The monotonic time
        moves forward by as much as the wall time did, and never backward.

        :raises ValueError: ``moment`` is naive.
        """
        if moment.tzinfo is None:
            raise ValueError("a ManualClock is set to timezone-aware times only")
        with self._lock:
            forward = max((moment - self._now).total_seconds(), 0.0)
            target = self._monotonic + forward
        self._run_timers(target)
        with self._lock:
            due = self._move_to(moment)
        for sleeper in due:
            _wake(sleeper)

    def advance(self, delta: timedelta | float) -> None:
        """Move wall and monotonic time forward by ``delta`` (a timedelta, or seconds).

        :raises ValueError: ``delta`` is negative.
        """
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("a ManualClock only advances; use set() to move the wall back")
        if self._timers:
            with self._lock:
                target = self._monotonic + delta.total_seconds()
            self._run_timers(target)
            with self._lock:
                due = self._move_to(self._now + timedelta(seconds=target - self._monotonic))
        else:
            with self._lock:  # read and move at once: concurrent advances all count
                due = self._move_to(self._now + delta)
        for sleeper in due:
            _wake(sleeper)

    def _run_timers(self, until: float) -> None:
        """Run, in deadline order, every timer due by monotonic time ``until`` (and the
        timers they set, if due by then), the clock standing at each one's deadline."""
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > until:
                    return
                when, _, timer = heapq.heappop(self._timers)
                if timer.cancelled:
                    continue
                due = self._move_to(self._now + timedelta(
                    seconds=max(when - self._monotonic, 0.0)))
            for sleeper in due:
                _wake(sleeper)
            timer.callback(*timer.args)

    # -- timers ----------------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> _Timer:
        with self._lock:
            when = self._monotonic + delay
        return self.call_at(when, callback, *args)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> _Timer:
        timer = _Timer(when, callback, args)
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def pending(self) -> list[float]:
        """Deadlines of the timers neither run nor cancelled, soonest first."""
        with self._lock:
            return sorted(t.when for _, _, t in self._timers if not t.cancelled)

    def _move_to(self, moment: datetime) -> list[_Sleeper]:
        """Move the clock (the lock held); returns the sleepers now due, to wake."""
        forward = (moment - self._now).total_seconds()
        self._now = moment.astimezone(UTC)
        self._monotonic += max(forward, 0.0)
        due = [s for s in self._sleepers if self._is_due(s)]
        self._sleepers = [s for s in self._sleepers if not self._is_due(s)]
        return due

    def _is_due(self, sleeper: _Sleeper) -> bool:
        if sleeper.wall is not None:
            return sleeper.wall <= self._now
        assert sleeper.monotonic is not None
        return sleeper.monotonic <= self._monotonic

    # -- waiting ---------------------------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        with self._lock:
            deadline = self._monotonic + seconds
        await self._wait(_Sleeper(None, deadline, asyncio.get_running_loop(),
                                  asyncio.Event()), None)

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event | None = None
                          ) -> None:
        if deadline.tzinfo is None:
            raise ValueError("sleep_until needs a timezone-aware deadline")
        await self._wait(_Sleeper(deadline, None, asyncio.get_running_loop(),
                                  asyncio.Event()), wake)

    async def _wait(self, sleeper: _Sleeper, wake: asyncio.Event | None) -> None:
        with self._lock:
            if self._is_due(sleeper):
                return
            self._sleepers.append(sleeper)
        self.sleeping.set()
        waiters = [asyncio.ensure_future(sleeper.event.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            with self._lock:
                self._sleepers = [s for s in self._sleepers if s is not sleeper]

    def sleepers(self) -> int:
        """How many coroutines are sleeping on this clock now."""
        with self._lock:
            return len(self._sleepers)


def _wake(sleeper: _Sleeper) -> None:
    with contextlib.suppress(RuntimeError):  # its loop has closed: nobody to wake
        sleeper.loop.call_soon_threadsafe(sleeper.event.set)
