"""Events the broker emits and consumes, and the in-process bus that carries them.

Outbound (broker → services): a client connected, disconnected (with AWS IoT's disconnect
reason), was denied an action, subscribed or unsubscribed. Inbound (services → broker):
the security state of a principal changed, so live sessions must be re-authorized or
closed. The bus is an interface; the in-process implementation delivers synchronously in
publish order and isolates handler failures from the publisher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

log = logging.getLogger("bastion.events")


class DisconnectReason(str, Enum):
    """AWS IoT lifecycle-event disconnect reasons."""

    AUTH_ERROR = "AUTH_ERROR"
    CLIENT_INITIATED_DISCONNECT = "CLIENT_INITIATED_DISCONNECT"
    CLIENT_ERROR = "CLIENT_ERROR"
    CONNECTION_LOST = "CONNECTION_LOST"
    DUPLICATE_CLIENTID = "DUPLICATE_CLIENTID"
    FORBIDDEN_ACCESS = "FORBIDDEN_ACCESS"
    MQTT_KEEP_ALIVE_TIMEOUT = "MQTT_KEEP_ALIVE_TIMEOUT"
    SERVER_ERROR = "SERVER_ERROR"
    SERVER_INITIATED_DISCONNECT = "SERVER_INITIATED_DISCONNECT"
    API_INITIATED_DISCONNECT = "API_INITIATED_DISCONNECT"
    THROTTLED = "THROTTLED"


@dataclass(frozen=True, slots=True)
class ClientConnected:
    client_id: str
    certificate_id: str
    source_ip: str
    source_port: int
    session_id: str
    protocol_version: int
    clean_start: bool
    timestamp: float


@dataclass(frozen=True, slots=True)
class ClientDisconnected:
    client_id: str
    certificate_id: str
    session_id: str
    reason: DisconnectReason
    client_initiated: bool
    timestamp: float


@dataclass(frozen=True, slots=True)
class ConnectRefused:
    client_id: str
    certificate_id: str
    source_ip: str
    reason: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class AuthorizationDenied:
    client_id: str
    certificate_id: str
    action: str
    resource: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class Subscribed:
    client_id: str
    certificate_id: str
    session_id: str
    topic_filters: tuple[str, ...]
    timestamp: float


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    client_id: str
    certificate_id: str
    session_id: str
    topic_filters: tuple[str, ...]
    timestamp: float


@dataclass(frozen=True, slots=True)
class PrincipalChanged:
    """Inbound: re-authorize every live session of this certificate (or drop it).

    ``drop`` closes the sessions at once (certificate revoked or deactivated);
    otherwise their permissions are rebuilt and decision caches cleared.
    """

    certificate_id: str
    drop: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AllPrincipalsChanged:
    """Inbound: a change that may affect any session (e.g. a group policy changed)."""

    reason: str = ""


Event = (
    ClientConnected
    | ClientDisconnected
    | ConnectRefused
    | AuthorizationDenied
    | Subscribed
    | Unsubscribed
    | PrincipalChanged
    | AllPrincipalsChanged
)
Handler = Callable[[Event], None]


class EventBus(Protocol):
    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber of its type. Never raises."""
        ...

    def subscribe(self, event_type: type, handler: Handler) -> Callable[[], None]:
        """Register ``handler`` for ``event_type``; returns a function that unsubscribes."""
        ...


class InProcessBus:
    """Synchronous in-process bus: handlers run inside ``publish``, in order.

    A handler that raises is logged and skipped; the publisher never sees the error.
    Handlers that need to do I/O schedule it themselves.
    """

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}

    def publish(self, event: Event) -> None:
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)

    def subscribe(self, event_type: type, handler: Handler) -> Callable[[], None]:
        handlers = self._handlers.setdefault(event_type, [])
        handlers.append(handler)

        def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

