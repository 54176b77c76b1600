"""The event bus: how a state change travels from the service that made it to everything
that must react (live sessions, caches, schedulers, lifecycle topics, the journal).

One bus carries every event: the registry's security changes (certificate status, policy
versions and attachments, group membership, CA status, things deleted), the broker's
session events (connected, disconnected, denied), shadow and jobs announcements. Events
are frozen dataclasses defined by the package that owns the change; the bus only knows
their types. :class:`EventBus` is the plug point: :class:`InProcessBus` serves one
process, and a cluster puts a bus over NATS behind the same protocol.
"""

from __future__ import annotations

from ._bus import EventBus, EventSink, Handler, InProcessBus

__all__ = ["EventBus", "EventSink", "Handler", "InProcessBus"]
