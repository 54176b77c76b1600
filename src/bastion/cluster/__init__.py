"""Cluster mode: several Bastion nodes serving one fleet on one NATS (JetStream) and one
PostgreSQL. See ``docs/cluster.md``."""

from __future__ import annotations

from ._node import ClusterNode
from ._registry import (
    HANDOVER_TIMEOUT,
    ClusterUnavailable,
    Owner,
    SessionRegistry,
    client_of,
    session_key,
)

__all__ = [
    "HANDOVER_TIMEOUT",
    "ClusterNode",
    "ClusterUnavailable",
    "Owner",
    "SessionRegistry",
    "client_of",
    "session_key",
]
