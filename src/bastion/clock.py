"""The one clock every Bastion service reads time from.

A :class:`Clock` answers three questions and does two kinds of waiting:

* ``now()`` — wall time as an aware UTC :class:`~datetime.datetime` (stored dates,
  certificate validity, schedules, signatures);
* ``time()`` — the same wall time as epoch seconds (MQTT payload timestamps, detect's
  metric windows);
* ``monotonic()`` — seconds that never go backward, for measuring intervals and caches
  (unrelated to the wall time's origin);
* ``sleep(seconds)`` — wait a monotonic interval;
* ``sleep_until(deadline, wake)`` — wait until a wall time, or until ``wake`` is set
  (a scheduler re-reads its schedules then);
* ``call_later(delay, callback)`` / ``call_at(when, callback)`` — timers on the event
  loop, on the monotonic time (the broker's CONNECT deadline, keep-alive, will delay,
  session expiry).

:class:`SystemClock` is the real one, and every service defaults to it. Tests pass a
clock they move by hand (``tests/support/clock.py``), so no test sleeps to let time
pass; the broker's in-memory test harness fires an hour of timers in a millisecond.

This module imports nothing from Bastion, so every package can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time as _time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["Clock", "SystemClock", "Timer"]


class Timer(Protocol):
    """A pending timer; cancelling one that already ran or was cancelled does nothing."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """What time it is, and waiting for a time. Implementations are thread-safe."""

    def now(self) -> datetime:
        """Wall time, timezone-aware, in UTC."""
        ...

    def time(self) -> float:
        """Wall time as seconds since the epoch (the same instant as :meth:`now`)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never smaller than an earlier answer."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on :meth:`monotonic` (at once if ≤ 0)."""
        ...

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event | None = None
                          ) -> None:
        """Return when :meth:`now` reaches ``deadline`` (at once if it has), or earlier
        when ``wake`` is set. ``deadline`` must be timezone-aware."""
        ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run ``callback(*args)`` on the running event loop ``delay`` seconds (monotonic)
        from now. Call from the loop's thread."""
        ...

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run ``callback(*args)`` on the running event loop once :meth:`monotonic`
        reaches ``when``. Call from the loop's thread."""
        ...


class SystemClock:
    """The real clock: the system's UTC wall time and its monotonic clock."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event | None = None
                          ) -> None:
        delay = (deadline - self.now()).total_seconds()
        if delay <= 0:
            return
        if wake is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)

    def call_later(self, delay: float, callback: Callable[..., object],
                   *args: Any) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Timer:
        # The loop's own clock may have another origin than time.monotonic (uvloop's is
        # libuv's): convert to a delay on ours.
        return asyncio.get_running_loop().call_later(when - _time.monotonic(), callback,
                                                     *args)

    def __repr__(self) -> str:
        return "SystemClock()"
