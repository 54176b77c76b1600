"""Which nodes serve the fleet now: each node's heartbeat in a key-value bucket.

Every node writes ``<name>_nodes[<node>]`` every :attr:`Lease.heartbeat` seconds (a
third of the lease): its connections, sessions, version and start time. The bucket keeps
an entry for the lease (NATS's own time-to-live), so a node that died without a word
disappears from it by itself; one that stops cleanly deletes its entry.
:func:`read_status` is what ``bastion cluster status`` shows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Final

log = logging.getLogger("bastion.cluster")

DEFAULT_LEASE: Final = 15.0
"""Seconds a node's lease runs (``[cluster] lease``)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A node's lease: how long its heartbeat entry lives after it was written."""

    seconds: float = DEFAULT_LEASE

    @property
    def heartbeat(self) -> float:
        """Seconds between two heartbeats of a node."""
        return self.seconds / 3

    @property
    def fence(self) -> float:
        """Seconds after its last written heartbeat at which a node that cannot write
        another one gives up its sessions: before its lease runs out and another node may
        take them."""
        return self.seconds * 2 / 3


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


async def nodes_bucket(nc: Any, name: str, lease: Lease) -> Any:
    """The heartbeat bucket of cluster ``name`` (created when missing; every node of a
    cluster must use the same lease)."""
    from nats.js.api import KeyValueConfig

    js = nc.jetstream()
    try:
        return await js.create_key_value(
            KeyValueConfig(bucket=f"{name}_nodes", history=1, ttl=lease.seconds))
    except Exception as exc:  # noqa: BLE001 - it exists with another lease
        bucket = await js.key_value(f"{name}_nodes")
        log.warning("cluster %r: the heartbeat bucket keeps entries for another time than "
                    "this node's lease of %.0f s (%s); give every node the same "
                    "[cluster] lease", name, lease.seconds, exc)
        return bucket


async def read_status(nats_url: str, name: str, timeout: float = 3.0,
                      lease: Lease | None = None) -> ClusterStatus:
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
    stale = (lease or Lease()).seconds
    status.nodes = [n for n in status.nodes if now - n.seen <= stale]
    return status
