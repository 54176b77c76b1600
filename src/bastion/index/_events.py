"""Events the fleet index publishes for the other nodes of a cluster.

A node's index learns of shadow changes from the shadow service's events and of
connections from its broker's — both local to that node. So that every node's index
follows every device, the index restates each such change as one of these small events,
which the cluster relays (``bastion.cluster``); a node ignores its own (``origin``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThingShadowChanged:
    """A shadow of ``thing_name`` changed or was deleted: read it back from the store.
    ``shadow_name`` is ``""`` for the classic shadow."""

    origin: str
    thing_name: str
    shadow_name: str


@dataclass(frozen=True, slots=True)
class ThingConnectivityChanged:
    """The client ``client_id`` connected or disconnected (``timestamp`` in epoch
    milliseconds; ``reason`` AWS's disconnect reason, ``""`` while connected — the
    cluster's wire carries plain strings)."""

    origin: str
    client_id: str
    connected: bool
    timestamp: int
    reason: str
