"""The MQTT broker: listeners, sessions, routing, and its plug points.

Layers, each importing only those below it::

    _listener                          sockets -> connections
    _broker                            CONNECT, packets, security events (ConnectionHost)
    _connection                        one network connection (asyncio.Protocol)
    _directory                         SessionDirectory / Router, MemorySessionDirectory
    _session, _lifecycle               per-client state (talks to a Link protocol)
    _subscriptions, _retained, _keepalive, _tls
    _message, _plugs, _clock, _limits, _events
"""

from __future__ import annotations

from ._broker import Broker, BrokerStats, ReservedTopicHandler
from ._clock import Clock, LoopClock, TimerHandle
from ._connection import ConnectionHost, MQTTConnection
from ._directory import MemorySessionDirectory, RetainedMessages, Router, SessionDirectory
from ._events import (
    AllPrincipalsChanged,
    AuthorizationDenied,
    ClientConnected,
    ClientDisconnected,
    ConnectRefused,
    DisconnectReason,
    Event,
    EventBus,
    InProcessBus,
    PrincipalChanged,
    Subscribed,
    Unsubscribed,
)
from ._limits import BrokerLimits
from ._listener import ListenerConfig, bound_port, start_listener
from ._message import Message, SubscriptionOptions
from ._plugs import (
    AcceptVerifiedCertificates,
    Action,
    AllowAll,
    AuthenticationError,
    Authenticator,
    Authorizer,
    DenyAll,
    Principal,
    RefuseAll,
    SessionPermissions,
    TopicTally,
)
from ._session import Link, Session

__all__ = [
    "AcceptVerifiedCertificates",
    "Action",
    "AllPrincipalsChanged",
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
    "Clock",
    "ConnectRefused",
    "ConnectionHost",
    "DenyAll",
    "DisconnectReason",
    "Event",
    "EventBus",
    "InProcessBus",
    "Link",
    "ListenerConfig",
    "LoopClock",
    "MQTTConnection",
    "MemorySessionDirectory",
    "Message",
    "Principal",
    "PrincipalChanged",
    "RefuseAll",
    "ReservedTopicHandler",
    "RetainedMessages",
    "Router",
    "Session",
    "SessionDirectory",
    "SessionPermissions",
    "Subscribed",
    "SubscriptionOptions",
    "TimerHandle",
    "TopicTally",
    "Unsubscribed",
    "bound_port",
    "start_listener",
]
