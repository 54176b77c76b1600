"""Which nodes serve the fleet now: each node's heartbeat in a key-value bucket.

Every node writes ``<name>_nodes[<node>]`` every :data:`HEARTBEAT` seconds: its
connections, sessions, version and start time. The bucket keeps an entry for
:data:`STALE_AFTER` seconds (NATS's own time-to-live), so a node that died without a word
disappears from it by itself; one that stops cleanly deletes its entry.
:func:`read_status` is what ``bastion cluster status`` shows.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Final

HEARTBEAT: Final = 5.0
"""Seconds between two heartbeats of a node."""
STALE_AFTER: Final = 3 * HEARTBEAT
"""A node's lease: seconds its heartbeat entry lives after it was written."""
FENCE_AFTER: Final = 2 * HEARTBEAT
"""Seconds after its last written heartbeat at which a node that cannot write another one
gives up its sessions: before its lease runs out and another node may take them."""


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node: str
    version: str
    started: float      # epoch seconds
    seen: float         # epoch seconds of its last heartbeat
    connections: int
    sessions: int

    def to_json(self) -> bytes:
        return json.dumps({"node": self.node, "version": self.version,
                           "started": self.started, "seen": self.seen,
                           "connections": self.connections,
                           "sessions": self.sessions}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> NodeStatus:
        raw = json.loads(data)
        return cls(str(raw["node"]), str(raw["version"]), float(raw["started"]),
                   float(raw["seen"]), int(raw["connections"]), int(raw["sessions"]))


@dataclass(slots=True)
class ClusterStatus:
    """What ``bastion cluster status`` reports."""

    nats_url: str
    nats_ok: bool = False
    nats_version: str = ""
    jetstream_ok: bool = False
    problem: str = ""
    nodes: list[NodeStatus] = field(default_factory=list)


async def nodes_bucket(nc: Any, name: str) -> Any:
    """The heartbeat bucket of cluster ``name`` (created when missing)."""
    from nats.js.api import KeyValueConfig

    return await nc.jetstream().create_key_value(
        KeyValueConfig(bucket=f"{name}_nodes", history=1, ttl=STALE_AFTER))


async def read_status(nats_url: str, name: str, timeout: float = 3.0) -> ClusterStatus:
    """Connect to ``nats_url`` and read cluster ``name``'s nodes; never raises for an
    unreachable NATS (the status says so)."""
    import nats

    status = ClusterStatus(nats_url)
    try:
        nc = await nats.connect(nats_url, connect_timeout=timeout, max_reconnect_attempts=0,
                                allow_reconnect=False)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        status.problem = f"NATS unreachable: {exc or type(exc).__name__}"
        return status
    try:
        status.nats_ok = True
        version = nc.connected_server_version
        status.nats_version = f"{version.major}.{version.minor}.{version.patch}"
        try:
            await nc.jetstream(timeout=timeout).account_info()
            status.jetstream_ok = True
            try:  # read only: a status check creates nothing
                bucket = await nc.jetstream(timeout=timeout).key_value(f"{name}_nodes")
            except Exception:  # noqa: BLE001 - no bucket: no node ever reported
                return status
            keys: list[str] = []
            with contextlib.suppress(Exception):  # no keys: an empty bucket
                keys = await bucket.keys()
            for key in sorted(keys):
                with contextlib.suppress(Exception):  # expired between keys() and get()
                    status.nodes.append(NodeStatus.from_json((await bucket.get(key)).value or b""))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            status.problem = f"JetStream: {exc or type(exc).__name__}"
    finally:
        await nc.close()
    now = time.time()
    status.nodes = [n for n in status.nodes if now - n.seen <= STALE_AFTER]
    return status
