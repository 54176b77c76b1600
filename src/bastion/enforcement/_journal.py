"""The connection journal: every session's certificate, client id, address and lifetime,
written to the store in batches off the event loop.

AWS IoT allows one certificate to be used by several client ids at once and flags it in
the audit (DEVICE_CERTIFICATE_SHARED_CHECK); Bastion does the same. The journal is what
the audit reads; in addition, a certificate seen on two live client ids at once is logged
as a warning here the moment it happens.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..broker import ClientConnected, ClientDisconnected
from ..clock import Clock, SystemClock
from ..events import EventBus
from ..lifecycle import Component
from ..store import ConnectionSessionRow, Store

log = logging.getLogger("bastion.enforcement")



@dataclass(frozen=True, slots=True)
class _Closed:
    connection_id: str
    when: datetime
    reason: str


class ConnectionJournal(Component):
    """Consumes the broker's connect/disconnect events (on the loop) and persists them.

    :param clock: dates the sessions a previous run left open (their events carry their
        own times).
    """

    name = "connection-journal"

    def __init__(self, store: Store, bus: EventBus, *, node: str | None = None,
                 flush_interval: float = 0.5, clock: Clock | None = None) -> None:
        self._store = store
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.node = node or socket.gethostname()
        self._interval = flush_interval
        self._pending: list[ConnectionSessionRow | _Closed] = []
        self._open: dict[tuple[str, str], str] = {}  # (client id, session id) → connection
        self._live: defaultdict[str, set[str]] = defaultdict(set)
        self.shared_certificates_seen = 0
        self._bus = bus
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._ran_out = asyncio.Event()
        self._running = False
        self._writing = asyncio.Lock()
        self._unsubscribe: list[Callable[[], None]] = []

    async def start(self) -> None:
        """Close sessions a previous run of this node left open, then listen."""
        def recover() -> None:
            with self._store.transaction() as uow:
                uow.connections.close_all_open(self.node, self._clock.now(),
                                               "SERVER_ERROR")
        await asyncio.to_thread(recover)
        self._unsubscribe = [self._bus.subscribe(ClientConnected, self._connected),
                             self._bus.subscribe(ClientDisconnected, self._disconnected)]

    async def stop(self) -> None:
        """Stop listening, let the writer finish its batch, write what is left."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._stopping.set()
        self._wake.set()
        if self._running:
            await self._ran_out.wait()  # never cancelled mid-write: a thread's write can't be
        try:
            await self.flush()
        except Exception:
            log.exception("writing the connection journal at shutdown failed")

    def _connected(self, event: ClientConnected) -> None:
        # A key principal (MQTT over WebSocket, SigV4) has no certificate to share.
        live = self._live[event.certificate_id] if event.certificate_id else set()
        live.add(event.client_id)
        if len(live) == 2:  # once per episode of sharing, not on every further connect
            self.shared_certificates_seen += 1
            log.warning("certificate %s is in use by several client ids at once: %s",
                        event.certificate_id, ", ".join(sorted(live)))
        connection_id = str(uuid.uuid4())
        self._open[(event.client_id, event.session_id)] = connection_id
        self._pending.append(ConnectionSessionRow(
            connection_id, event.session_id, event.client_id, event.certificate_id,
            event.source_ip, self.node, datetime.fromtimestamp(event.timestamp, UTC), None,
            None))
        self._wake.set()

    def _disconnected(self, event: ClientDisconnected) -> None:
        live = self._live.get(event.certificate_id)
        if live is not None:
            live.discard(event.client_id)
            if not live:
                del self._live[event.certificate_id]
        connection_id = self._open.pop((event.client_id, event.session_id), None)
        if connection_id is not None:
            self._pending.append(_Closed(connection_id,
                                         datetime.fromtimestamp(event.timestamp, UTC),
                                         event.reason.value))
        self._wake.set()

    async def run(self) -> None:
        """Write batches until :meth:`stop`."""
        self._running = True
        try:
            await self._flush_until_stopped()
        finally:
            self._ran_out.set()

    async def _flush_until_stopped(self) -> None:
        while not self._stopping.is_set():
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("writing the connection journal failed; will retry")
            try:  # gather what arrives meanwhile into one batch; stop ends the wait
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            except TimeoutError:
                pass

    async def flush(self) -> None:
        """Write everything pending (in a worker thread), one batch at a time."""
        async with self._writing:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception:
                self._pending[:0] = batch  # the transaction rolled back: keep them
                raise

    def _write(self, batch: list[ConnectionSessionRow | _Closed]) -> None:
        # Every row opened in the batch first, then every close: a close refers to a row
        # of this batch or an earlier one, never a later one.
        opened = [item for item in batch if not isinstance(item, _Closed)]
        closed = [(item.connection_id, item.when, item.reason)
                  for item in batch if isinstance(item, _Closed)]
        with self._store.transaction() as uow:
            uow.connections.opened(*opened)
            uow.connections.closed(*closed)
