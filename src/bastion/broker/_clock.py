"""The broker's one source of time: wall clock, monotonic clock and timers.

Every timer of the broker (CONNECT deadline, keep-alive, will delay, session expiry, the
slow-reader grace) and every deadline it compares (message expiry) goes through one
:class:`Clock`, handed to the :class:`~bastion.broker.Broker`. In production it is
:class:`LoopClock`, the running event loop's clock; tests hand a clock they move by hand,
so that an hour of session expiry takes no time at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol


class TimerHandle(Protocol):
    """A pending timer; cancelling one that already ran or was cancelled is a no-op."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time for records, monotonic time for deadlines, and timers on the latter."""

    def wall(self) -> float:
        """Epoch seconds (event timestamps, when a retained message was stored)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; ``call_at`` deadlines use it."""
        ...

    def call_later(self, delay: float, callback: Callable[..., object],
                   *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the event loop ``delay`` seconds from now."""
        ...

    def call_at(self, when: float, callback: Callable[..., object],
                *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the event loop once ``monotonic()`` reaches ``when``."""
        ...


class LoopClock:
    """The running event loop's clock: ``monotonic`` is ``loop.time()`` (outside a running
    loop, ``time.monotonic()``, the same clock for asyncio's loops), timers are the loop's."""

    __slots__ = ()

    @staticmethod
    def wall() -> float:
        return time.time()

    @staticmethod
    def monotonic() -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    @staticmethod
    def call_later(delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    @staticmethod
    def call_at(when: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        return asyncio.get_running_loop().call_at(when, callback, *args)
