"""The threat watch of ``bastion serve``: flushes findings (store, alerts) every second
and verifies the trail every ``verify_interval`` seconds, in worker threads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bastion.lifecycle import Component, run_in_rounds

from ._service import ThreatService

log = logging.getLogger("bastion.threats")

TrailCheck = Callable[[], tuple[bool, str | None, int | None]]
"""Verifies the trail: (intact?, reason, first broken sequence)."""


class ThreatWatch(Component):
    """See the module docstring.

    :param verify_trail: ``None``: the trail is not verified.
    :raises ValueError: ``verify_interval`` is not positive.
    """

    name = "threat-watch"

    def __init__(self, service: ThreatService, *, verify_trail: TrailCheck | None,
                 verify_interval: float = 3600.0, flush_interval: float = 1.0) -> None:
        if verify_interval <= 0 or flush_interval <= 0:
            raise ValueError("intervals must be positive")
        self.service = service
        self._verify = verify_trail
        self.verify_interval = verify_interval
        self.flush_interval = flush_interval
        self._wake = asyncio.Event()
        self._verified_at: datetime | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.service.load)

    async def run(self) -> None:
        await run_in_rounds(self._round, self._wake, interval=self.flush_interval,
                            now=lambda: datetime.now(UTC), what="threat watch")

    async def _round(self) -> datetime | None:
        await asyncio.to_thread(self.service.flush)
        now = datetime.now(UTC)
        verify = self._verify
        if verify is not None and (self._verified_at is None or now - self._verified_at
                                   >= timedelta(seconds=self.verify_interval)):
            self._verified_at = now
            ok, reason, sequence = await asyncio.to_thread(verify)
            if not ok:
                log.error("the trail failed verification: %s", reason)
            self.service.trail_checked(ok, reason, sequence)
        return None

    def poke(self) -> None:
        """Verify and flush now (tests, and the CLI's ``trail verify`` results)."""
        self._verified_at = None
        self._wake.set()

    async def stop(self) -> None:
        await asyncio.to_thread(self.service.flush)
