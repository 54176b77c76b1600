"""How often one address may try to sign in.

Every sign-in attempt, successful or not, takes one slot of its source address's window:
at most ``attempts`` per ``window`` seconds (a sliding window of attempt times). An
attempt over the limit is refused before the secret is looked at, answered ``429`` with
a ``Retry-After``, and trailed. Kept in memory, per process; at most
:data:`MAX_ADDRESSES` addresses are tracked (past that, the stalest are forgotten).
Used from the event loop only.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

from bastion.clock import Clock

MAX_ADDRESSES: Final = 10_000


class SignInLimiter:
    """A sliding window of sign-in attempts per source address.

    :raises ValueError: ``attempts`` < 1 or ``window`` not positive.
    """

    def __init__(self, clock: Clock, *, attempts: int, window: float) -> None:
        if attempts < 1 or window <= 0:
            raise ValueError("attempts must be at least 1 and window positive")
        self._clock = clock
        self._attempts = attempts
        self._window = window
        self._seen: dict[str, deque[float]] = {}

    def take(self, source_ip: str) -> float | None:
        """Count one attempt from ``source_ip``.

        :returns: ``None`` when it is allowed; else the seconds until the next attempt
            would be (the refused attempt is not counted).
        """
        now = self._clock.monotonic()
        times = self._seen.get(source_ip)
        if times is None:
            if len(self._seen) >= MAX_ADDRESSES:
                self._forget_stalest(now)
            times = self._seen[source_ip] = deque()
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) >= self._attempts:
            return max(1.0, math.ceil(self._window - (now - times[0])))
        times.append(now)
        return None

    def _forget_stalest(self, now: float) -> None:
        for address in [a for a, times in self._seen.items()
                        if not times or now - times[-1] >= self._window]:
            del self._seen[address]
        while len(self._seen) >= MAX_ADDRESSES:
            stalest = min(self._seen, key=lambda a: self._seen[a][-1] if self._seen[a] else 0.0)
            del self._seen[stalest]
