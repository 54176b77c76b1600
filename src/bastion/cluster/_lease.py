"""A node's lease, renewed from a thread of its own.

The lease (``<name>_nodes[<node>]``, see :mod:`._status`) is what keeps other nodes from
taking this node's sessions. Renewed on the node's event loop, it failed whenever that
loop was busy for longer than a third of the lease: 17,000 connections closing at once on
a 2-core machine held the loop for seconds, the renewal came late, and the node fenced
itself (gave up every session) although nothing was wrong with it or with NATS.

:class:`LeaseKeeper` renews it from a thread with its own event loop and its own NATS
connection, so a busy event loop does not cost the node its lease. A wedged one still
does: the keeper renews only while the node's event loop has turned (:meth:`turned`)
within the last whole lease. A loop that has not turned for that long is taken as stuck;
the keeper lets the lease run out so that other nodes can take the sessions over, and the
node fences itself the moment its loop turns again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

from ._status import Lease, NodeStatus, nodes_bucket

log = logging.getLogger("bastion.cluster")

RETRY = 1.0
"""Seconds between two attempts after a renewal failed."""

PUT_TIMEOUT = 2.0
"""Seconds one renewal may take before it counts as failed."""


class LeaseKeeper:
    """Writes ``status()`` to the heartbeat bucket every :attr:`Lease.heartbeat` seconds
    (every :data:`RETRY` after a failure) from a thread of its own.

    :param status: what the entry says (called in the keeper's thread: it must only read).
    :param monotonic: the clock :attr:`renewed` and :meth:`turned` are read on.
    """

    def __init__(self, nats_url: str, name: str, node: str, lease: Lease,
                 status: Callable[[], NodeStatus], monotonic: Callable[[], float]) -> None:
        self._nats_url = nats_url
        self._name = name
        self._node = node
        self._lease = lease
        self._status = status
        self._monotonic = monotonic
        self.renewed = 0.0  # monotonic time of the last renewal NATS acknowledged
        self._turned = monotonic()
        self._stuck = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()

    def turned(self) -> None:
        """The node's event loop is turning (it calls this about every second)."""
        self._turned = self._monotonic()

    async def start(self) -> None:
        """Start the thread; returns once the lease is written, or raises why it could not
        be (NATS unreachable, JetStream off)."""
        self._thread = threading.Thread(target=self._run, name=f"lease-{self._node}",
                                        daemon=True)
        self._thread.start()
        try:
            await asyncio.wrap_future(self._started)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Delete the entry (the node leaves now, not when its lease runs out) and end the
        thread; bounded, so a node cut off from NATS still stops."""
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # its loop has ended already
                pass
        if thread is not None:
            await asyncio.to_thread(thread.join, PUT_TIMEOUT + 3.0)

    # -- in the keeper's thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to start(); the thread ends
            if not self._started.done():
                self._started.set_exception(exc)
            else:
                log.warning("cluster: the lease keeper stopped: %s", exc)

    async def _main(self) -> None:
        import nats

        self._loop = asyncio.get_running_loop()
        self._stopping = stopping = asyncio.Event()
        connecting = asyncio.ensure_future(nats.connect(
            self._nats_url, name=f"bastion-{self._node}-lease", max_reconnect_attempts=-1,
            ping_interval=3, max_outstanding_pings=2))
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait((connecting, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not connecting.done():  # stopped before NATS was reached
            connecting.cancel()
            raise ConnectionError(f"NATS at {self._nats_url} was not reached")
        nc: Any = connecting.result()
        try:
            bucket = await nodes_bucket(nc, self._name, self._lease)
            await self._renew(bucket)
            self._started.set_result(None)
            while not stopping.is_set():
                late = self._monotonic() - self.renewed
                wait = self._lease.heartbeat - late if late < self._lease.heartbeat else RETRY
                try:
                    await asyncio.wait_for(stopping.wait(), timeout=max(wait, 0.05))
                    break
                except TimeoutError:
                    pass
                if self._loop_stuck():
                    continue
                try:
                    await asyncio.wait_for(self._renew(bucket), timeout=PUT_TIMEOUT)
                except Exception as exc:  # noqa: BLE001 - NATS away: the next one may do
                    log.debug("cluster: renewing the lease failed: %s", exc)
            try:
                await asyncio.wait_for(bucket.delete(self._node), timeout=PUT_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - it runs out by itself
                log.debug("cluster: deleting the lease failed: %s", exc)
        finally:
            try:
                await asyncio.wait_for(nc.close(), timeout=PUT_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - the process ends it anyway
                log.debug("cluster: closing the lease connection failed: %s", exc)

    def _loop_stuck(self) -> bool:
        silent = self._monotonic() - self._turned
        stuck = silent > self._lease.seconds
        if stuck and not self._stuck:
            log.warning("cluster: this node's event loop has not turned for %.0f s; its "
                        "lease is left to run out so that other nodes can take its "
                        "sessions", silent)
        elif self._stuck and not stuck:
            log.warning("cluster: the event loop turns again; the lease is renewed")
        self._stuck = stuck
        return stuck

    async def _renew(self, bucket: Any) -> None:
        await bucket.put(self._node, self._status().to_json())
        self.renewed = self._monotonic()
