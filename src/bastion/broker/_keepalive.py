"""Keep-alive deadlines of every connection on one timer.

A timer per connection costs each idle connection about half a kilobyte (the loop's timer
handle, its callback and arguments); a broker holding 100,000 idle devices would spend
~50 MB on them. :class:`KeepAliveWheel` instead files each connection under the whole
second its deadline falls in and keeps one loop timer, for the earliest second that has
connections. When a second comes due, each of its connections is asked
(:meth:`Watched.keep_alive_due`) whether it has really been silent that long; one that
heard from its client since re-files itself under its new deadline. A deadline is
therefore checked up to one second late, which MQTT's "one and a half times the
keep-alive" allows for.
"""

from __future__ import annotations

import math
from typing import Protocol

from ..clock import Clock, SystemClock, Timer


class Watched(Protocol):
    keep_alive_slot: int
    """The second this connection is filed under; 0 when not filed."""

    def keep_alive_due(self) -> None:
        """Its second has come: close if silent too long, or ``watch`` again."""


class KeepAliveWheel:
    """Connections by the second (``clock.monotonic()``) of their keep-alive deadline."""

    __slots__ = ("_buckets", "_clock", "_due_at", "_handle")

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._buckets: dict[int, set[Watched]] = {}
        self._handle: Timer | None = None
        self._due_at = 0

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def watch(self, conn: Watched, deadline: float) -> None:
        """File ``conn`` under ``deadline`` (a ``clock.monotonic()`` value), replacing its
        filing."""
        if conn.keep_alive_slot:
            self.unwatch(conn)
        slot = max(1, math.ceil(deadline))
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = set()
        bucket.add(conn)
        conn.keep_alive_slot = slot
        if self._handle is None or slot < self._due_at:
            self._schedule(slot)

    def unwatch(self, conn: Watched) -> None:
        slot = conn.keep_alive_slot
        if not slot:
            return
        conn.keep_alive_slot = 0
        bucket = self._buckets.get(slot)
        if bucket is not None:
            bucket.discard(conn)
            if not bucket:
                del self._buckets[slot]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._buckets.clear()

    def _schedule(self, slot: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._due_at = slot
        self._handle = self._clock.call_at(slot, self._tick)

    def _tick(self) -> None:
        self._handle = None
        now = self._clock.monotonic()
        buckets = self._buckets
        for slot in sorted(slot for slot in buckets if slot <= now):
            for conn in buckets.pop(slot):
                if conn.keep_alive_slot != slot:
                    continue  # unwatched or filed elsewhere by an earlier call of this tick
                conn.keep_alive_slot = 0
                conn.keep_alive_due()  # may watch() again, under a later second
        if buckets and self._handle is None:
            self._schedule(min(buckets))
