"""Events the broker publishes on the bus (:mod:`bastion.events`): a client connected,
disconnected (with AWS IoT's disconnect reason), was refused or denied an action,
subscribed or unsubscribed. The lifecycle topics, the connection journal and Detect
consume them. Security changes travel the other way as the registry's own events, which
:mod:`bastion.enforcement` applies to live sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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
    """A CONNECT was refused. ``reason`` is Bastion's words; ``kind`` says whose fault in
    AWS's disconnect-reason words (``AUTH_ERROR``: the identity or its ``iot:Connect``,
    ``CLIENT_ERROR``: the packet, ``SERVER_ERROR``: the registry was unreachable)."""

    client_id: str
    certificate_id: str
    source_ip: str
    reason: str
    timestamp: float
    source_port: int = 0
    kind: DisconnectReason = DisconnectReason.CLIENT_ERROR


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


Event = (
    ClientConnected
    | ClientDisconnected
    | ConnectRefused
    | AuthorizationDenied
    | Subscribed
    | Unsubscribed
)
