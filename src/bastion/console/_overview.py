"""The overview's numbers, live.

Theory of operation
-------------------
:class:`Overview` answers :meth:`Overview.sample` on the event loop: the connections open
now and the message rates come from the :class:`~._live.LiveFleet` (plain counters, no
database), each rate the growth of a counter since the previous sample divided by the
seconds between them. Deliveries are counted per session: only sessions connected at both
samples contribute (a session that went away takes its count with it, and one that has
just connected — perhaps a persistent session with a long history — starts counting at
the next sample), so a reconnect is never taken for a burst. The database figures — active Detect violations, open audit findings by
severity, certificates expiring within 30 days — are read in a worker thread at most
every :data:`STORED_TTL` seconds and reused in between, so that any number of open
overview pages, each sampling every 2 s, cost the database one read per interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bastion.clock import Clock
from bastion.services import Services

from ._live import ConnectedClient, LiveFleet
from ._views import StoredFigures, stored_figures

STORED_TTL: Final = 10.0
"""Seconds the database figures are reused."""
SHOWN_CLIENTS: Final = 50
"""Connected clients the overview lists by client id."""


@dataclass(frozen=True, slots=True)
class OverviewSample:
    connected: int
    clients: tuple[ConnectedClient, ...]
    messages_in_per_second: float
    messages_out_per_second: float
    stored: StoredFigures

    def to_json(self) -> dict[str, Any]:
        """What the live stream sends (every string goes through ``textContent``)."""
        return {
            "connected": self.connected,
            "clients": [{"clientId": c.client_id, "sourceIp": c.source_ip}
                        for c in self.clients],
            "messagesIn": round(self.messages_in_per_second, 1),
            "messagesOut": round(self.messages_out_per_second, 1),
            "activeViolations": self.stored.active_violations,
            "findings": self.stored.findings_by_severity,
            "expiringCertificates": self.stored.expiring_certificates,
        }


class Overview:
    """The overview's sampler (see the module docstring). Used on the event loop."""

    def __init__(self, services: Services, live: LiveFleet, clock: Clock) -> None:
        self._services = services
        self._live = live
        self._clock = clock
        self._last: tuple[float, int, Mapping[str, int]] | None = None
        self._rates = (0.0, 0.0)
        self._stored: StoredFigures | None = None
        self._stored_at = 0.0
        self._reading: asyncio.Task[StoredFigures] | None = None

    async def sample(self) -> OverviewSample:
        """The numbers now.

        :raises bastion.store.StoreError: the database failed (first read only; later a
            failed refresh keeps the previous figures).
        """
        now = self._clock.monotonic()
        clients = self._live.connected()
        totals = self._live.totals()
        last = self._last
        if last is None or now - last[0] >= 1.0:
            if last is not None:
                span = now - last[0]
                before = last[2]
                delivered = sum(max(0, count - before[client]) for client, count
                                in totals.delivered.items() if client in before)
                self._rates = (max(0, totals.received - last[1]) / span, delivered / span)
            self._last = (now, totals.received, totals.delivered)
        stored = await self._stored_figures(now)
        return OverviewSample(len(clients), tuple(clients[:SHOWN_CLIENTS]), self._rates[0],
                              self._rates[1], stored)

    async def _stored_figures(self, now: float) -> StoredFigures:
        if self._stored is not None and now - self._stored_at < STORED_TTL:
            return self._stored
        if self._reading is None or self._reading.done():
            self._reading = asyncio.get_running_loop().create_task(asyncio.to_thread(
                stored_figures, self._services, self._clock.now()))
        try:
            self._stored = await asyncio.shield(self._reading)
        except Exception:
            if self._stored is None:
                raise
        self._stored_at = now
        return self._stored
