"""One lifecycle for every long-running part of Bastion.

Theory of operation
-------------------
A :class:`Component` is something that lives as long as the process serves: a listener,
the API server, a scheduler, the detect loop, the alert dispatcher, the connection
journal, the store. It has three steps, all run by :class:`Lifecycle`, never by its own
constructor:

* ``start()`` acquires what it needs (binds a socket, recovers state) and returns when the
  component is ready for the next one to rely on it;
* ``run()`` is its background work, if any (a scheduler's rounds), run as a task of one
  :class:`asyncio.TaskGroup`; the default has none and returns at once;
* ``stop()`` releases everything (closes sockets, flushes batches). It is called while
  ``run()`` may still be going, so a component can end its own work gracefully (the API
  lets requests in flight finish); a ``run()`` still going after ``stop()`` returned is
  cancelled.

:meth:`Lifecycle.start` starts the components in list order; :meth:`Lifecycle.stop` stops
the started ones in reverse order (the API goes before the services it calls, the store
last). A component whose ``run()`` fails is logged with its name and the whole lifecycle
stops cleanly — nothing dies silently; :meth:`Lifecycle.wait` returns the failure so the
process can exit non-zero. A ``start()`` that fails stops what had started and raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

log = logging.getLogger("bastion.lifecycle")


class Component:
    """Base of a long-running part; override what applies.

    :ivar name: how logs name it.
    """

    name: str = "component"

    async def start(self) -> None:
        """Acquire resources; return when ready."""

    async def run(self) -> None:
        """Background work until cancelled (default: none)."""

    async def stop(self) -> None:
        """Release resources and end ``run`` gracefully if it can (called once; a ``run``
        still going afterwards is cancelled)."""


async def run_in_rounds(round_: Callable[[], Awaitable[datetime | None]],
                        wake: asyncio.Event, *, interval: float,
                        now: Callable[[], datetime], what: str,
                        after: Callable[[], None] | None = None) -> None:
    """A background component's loop, until cancelled: run ``round_``, then sleep until
    ``wake`` is set, or until the moment the round returned (as ``now`` counts), or
    ``interval`` seconds, whichever comes first. A round that raises is logged (as ``what``
    failed) and the loop goes on; ``after`` runs after every round, failed or not.
    """
    while True:
        wake.clear()
        delay = interval
        try:
            due = await round_()
            if due is not None:
                delay = min(delay, max(0.05, (due - now()).total_seconds()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", what)
        if after is not None:
            after()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)


class ComponentFailed(RuntimeError):
    """A component's background work raised; the lifecycle stopped because of it."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"component {name!r} failed: {error!r}")
        self.name = name
        self.error = error


class Lifecycle:
    """Starts, supervises and stops an ordered list of components.

    :param components: in start order.
    """

    def __init__(self, components: Sequence[Component]) -> None:
        self.components: tuple[Component, ...] = tuple(components)
        self._started: list[Component] = []
        self._runs: dict[int, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._stop_requested: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self.failure: ComponentFailed | None = None

    @property
    def started(self) -> tuple[Component, ...]:
        """The components started so far, in start order."""
        return tuple(self._started)

    async def start(self) -> None:
        """Start every component in order and supervise their background work.

        :raises RuntimeError: already started.
        :raises Exception: whatever a component's ``start()`` raised (the ones started
            before it are stopped first, in reverse order).
        """
        if self._supervisor is not None:
            raise RuntimeError("the lifecycle is already started")
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._supervisor = loop.create_task(self._supervise(), name="bastion-lifecycle")
        try:
            await asyncio.shield(self._ready)
        except BaseException:
            await asyncio.shield(self._supervisor)
            raise

    async def stop(self) -> None:
        """Stop the started components in reverse order (idempotent)."""
        if self._supervisor is None or self._stop_requested is None:
            return
        self._stop_requested.set()
        await asyncio.shield(self._supervisor)

    async def wait(self) -> ComponentFailed | None:
        """Return when the lifecycle has stopped (by :meth:`stop` or a failure); the
        failure, if one caused it."""
        if self._stopped is None:
            raise RuntimeError("the lifecycle is not started")
        await self._stopped.wait()
        return self.failure

    async def _supervise(self) -> None:
        assert self._ready is not None and self._stop_requested is not None
        try:
            async with asyncio.TaskGroup() as group:
                try:
                    for component in self.components:
                        await component.start()
                        self._started.append(component)
                        self._runs[id(component)] = group.create_task(
                            self._run(component), name=f"bastion-{component.name}")
                except BaseException as error:  # noqa: BLE001 - handed to start()
                    if not self._ready.done():
                        self._ready.set_exception(error)
                    self._stop_requested.set()
                else:
                    self._ready.set_result(None)
                await self._stop_requested.wait()
                await self._stop_all()
        finally:
            assert self._stopped is not None
            if not self._ready.done():
                self._ready.set_exception(RuntimeError("the lifecycle stopped while starting"))
            self._stopped.set()

    async def _run(self, component: Component) -> None:
        try:
            await component.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.critical("%s failed; stopping Bastion", component.name, exc_info=True)
            if self.failure is None:
                self.failure = ComponentFailed(component.name, error)
            assert self._stop_requested is not None
            self._stop_requested.set()

    async def _stop_all(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("stopping %s failed", component.name)
            run = self._runs.pop(id(component), None)
            if run is not None and not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
