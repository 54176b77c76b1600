"""The MQTT broker: listeners, sessions, routing, and its plug points.

Layers, each importing only those below it::

    _listener                          sockets -> connections
    _websocket                         MQTT over WebSocket (the HTTP upgrade, frames)
    _proxy, _proxy_header              behind a load balancer: the PROXY v2 header
    _broker                            CONNECT, packets, security events (ConnectionHost)
    _connection                        one network connection (asyncio.Protocol)
    _durable                           DurableSessionDirectory, GroupCommit (journal)
    _directory                         SessionDirectory / Router, MemorySessionDirectory
    _session, _lifecycle               per-client state (talks to a Link protocol)
    _subscriptions, _retained, _keepalive, _tls
    _message, _plugs, _limits, _events    (time: bastion.clock)
"""

from __future__ import annotations

from ._broker import Broker, BrokerStats, MessageTap, Ownership, Relay, ReservedTopicHandler
from ._connection import ConnectionHost, MQTTConnection
from ._directory import (
    Interest,
    MemorySessionDirectory,
    RetainedMessages,
    Router,
    SessionDirectory,
)
from ._durable import (
    DurableSessionDirectory,
    GroupCommit,
    Op,
    SessionRecords,
    Snapshot,
    StoredDelivery,
    StoredRetained,
    StoredSession,
    StoredSubscription,
    decode_message,
    encode_message,
)
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
from ._message import Message, SubscriptionOptions
from ._plugs import (
    LOG_DEBUG,
    LOG_DISABLED,
    LOG_ERROR,
    LOG_INFO,
    LOG_WARN,
    NO_MESSAGE_LOG,
    AcceptVerifiedCertificates,
    Action,
    AllowAll,
    AuthenticationError,
    Authenticator,
    Authorizer,
    DenyAll,
    KeyIdentity,
    MessageLog,
    Principal,
    RefuseAll,
    SessionPermissions,
    TopicTally,
    UpgradeAuthenticator,
    UpgradeRefused,
)
from ._proxy import ProxyTrust
from ._session import Link, QueueBudget, Session

__all__ = [
    "LOG_DEBUG",
    "LOG_DISABLED",
    "LOG_ERROR",
    "LOG_INFO",
    "LOG_WARN",
    "NO_MESSAGE_LOG",
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
    "ConnectionHost",
    "DenyAll",
    "DisconnectReason",
    "DurableSessionDirectory",
    "Event",
    "GroupCommit",
    "Interest",
    "KeyIdentity",
    "Link",
    "ListenerConfig",
    "MQTTConnection",
    "MemorySessionDirectory",
    "Message",
    "MessageLog",
    "MessageTap",
    "Op",
    "Ownership",
    "Principal",
    "ProxyTrust",
    "QueueBudget",
    "RefuseAll",
    "Relay",
    "ReservedTopicHandler",
    "RetainedMessages",
    "Router",
    "Session",
    "SessionDirectory",
    "SessionPermissions",
    "SessionRecords",
    "Snapshot",
    "StoredDelivery",
    "StoredRetained",
    "StoredSession",
    "StoredSubscription",
    "Subscribed",
    "SubscriptionOptions",
    "Timer",
    "TopicTally",
    "Unsubscribed",
    "UpgradeAuthenticator",
    "UpgradeRefused",
    "bound_port",
    "decode_message",
    "encode_message",
    "start_listener",
]
