"""The event bus protocol and its in-process implementation.

Theory of operation
-------------------
Subscribers name the event *type* they want (a class; a subscriber of a base class also
gets its subclasses) and are called with each event of that type, on the bus's event
loop. Publishers may be anywhere:

* on the loop's own thread (the broker, the schedulers): the handlers run at once, inside
  ``publish``, in subscription order — the broker's events cost no loop round trip;
* on any other thread (a service call running in a worker thread, a CLI command): the
  event is handed to the loop with ``call_soon_threadsafe`` and delivered there. Events
  one thread publishes are delivered in the order it published them;
* before the bus is bound to a loop, or after that loop closed: delivered at once in the
  publisher's thread (a CLI command has no loop; nothing live listens to it).

A handler that raises is logged and skipped: a publisher never sees a consumer's error,
and one broken consumer never starves the others. Handlers must not block: one that needs
I/O schedules it (a task, a worker thread).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

log = logging.getLogger("bastion.events")

E = TypeVar("E")
Handler = Callable[[Any], None]
EventSink = Callable[[object], None]
"""Where a service hands its events: the bus's :meth:`EventBus.publish`."""


class EventBus(Protocol):
    """What publishers and subscribers need of a bus."""

    def publish(self, event: object) -> None:
        """Deliver ``event`` to every subscriber of its type (or a base of it). Safe from
        any thread; never raises for a subscriber's failure."""
        ...

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]
                  ) -> Callable[[], None]:
        """Call ``handler`` with every event of ``event_type``, on the bus's loop.
        Returns a function that unsubscribes (idempotent)."""
        ...


class InProcessBus:
    """The bus of one process (see the module docstring).

    :param loop: the loop handlers run on; :meth:`bind` sets it later.
    """

    __slots__ = ("_handlers", "_lock", "_loop", "_loop_thread", "_routes")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[type, tuple[Handler, ...]] = {}
        # Resolved per concrete event type (its own and its bases' handlers), rebuilt
        # after every (un)subscribe; publish reads it without the lock.
        self._routes: dict[type, tuple[Handler, ...]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        if loop is not None:
            self.bind(loop)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` from now on. Call from the loop's own thread.

        :raises RuntimeError: already bound to another loop that is still open.
        """
        if self._loop is not None and self._loop is not loop and not self._loop.is_closed():
            raise RuntimeError("the bus is bound to another running loop")
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]
                  ) -> Callable[[], None]:
        if not isinstance(event_type, type):
            raise TypeError(f"event_type must be a class, not {event_type!r}")
        with self._lock:
            self._handlers[event_type] = (*self._handlers.get(event_type, ()), handler)
            self._routes = {}

        def unsubscribe() -> None:
            with self._lock:
                current = self._handlers.get(event_type, ())
                if handler in current:
                    index = current.index(handler)
                    remaining = current[:index] + current[index + 1:]
                    if remaining:
                        self._handlers[event_type] = remaining
                    else:
                        del self._handlers[event_type]
                    self._routes = {}

        return unsubscribe

    def publish(self, event: object) -> None:
        loop = self._loop
        if (loop is None or threading.get_ident() == self._loop_thread
                or loop.is_closed()):
            self._deliver(event)
            return
        try:
            loop.call_soon_threadsafe(self._deliver, event)
        except RuntimeError:  # the loop closed between the check and the call
            log.debug("%s dropped: the event loop has stopped", type(event).__name__)

    def _route(self, event_type: type) -> tuple[Handler, ...]:
        with self._lock:
            handlers: list[Handler] = []
            for base in event_type.__mro__:
                handlers.extend(self._handlers.get(base, ()))
            route = tuple(handlers)
            self._routes[event_type] = route
            return route

    def _deliver(self, event: object) -> None:
        kind = type(event)
        route = self._routes.get(kind)
        if route is None:
            route = self._route(kind)
        for handler in route:
            try:
                handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, kind.__name__)
