"""The MQTT broker: listeners, sessions, routing, and its plug points."""

from __future__ import annotations

from ._broker import Broker, BrokerStats, ReservedTopicHandler
from ._events import (
    AuthorizationDenied,
    ClientConnected,
    ClientDisconnected,
    ConnectRefused,
    DisconnectReason,
    Event,
    Subscribed,
    Unsubscribed,
)
from ._limits import BrokerLimits
from ._listener import ListenerConfig, bound_port, start_listener
from ._plugs import (
    AcceptVerifiedCertificates,
    Action,
    AllowAll,
    AuthenticationError,
    Authenticator,
    Authorizer,
    Principal,
    SessionPermissions,
    TopicTally,
)
from ._session import Message, Session

__all__ = [
    "AcceptVerifiedCertificates",
    "Action",
    "AllowAll",
    "AuthenticationError",
    "Authenticator",
    "AuthorizationDenied",
    "Authorizer",
    "Broker",
    "BrokerLimits",
    "BrokerStats",
    "ClientConnected",
    "ClientDisconnected",
    "ConnectRefused",
    "DisconnectReason",
    "Event",
    "ListenerConfig",
    "Message",
    "Principal",
    "ReservedTopicHandler",
    "Session",
    "SessionPermissions",
    "Subscribed",
    "TopicTally",
    "Unsubscribed",
    "bound_port",
    "start_listener",
]
