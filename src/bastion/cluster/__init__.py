"""Cluster mode: several Bastion nodes serving one fleet on one NATS (JetStream) and one
PostgreSQL. See ``docs/cluster.md``.

* :class:`ClusterNode` (a component): the node's NATS connection, its part in the
  session registry (:class:`SessionRegistry`: who owns each client id, the handover), the
  registry's security events relayed between nodes, and messages across nodes
  (:class:`MessageRelay`).
* :class:`FleetDetect` (a component): Detect across nodes. Every node forwards its
  datapoints on a JetStream stream; the holder of the ``detect`` lease
  (:class:`LeaderLease`) evaluates them all.
* :class:`SubjectCodec`: MQTT topics and filters as NATS subjects, so that NATS's matching
  is MQTT's::

      codec = SubjectCodec("bastion.msg")
      codec.encode_topic("$aws/things/x/shadow/update")  # "bastion.msg.d.aws.things.x.shadow.update"
      codec.encode_filter("sport/#")        # ("bastion.msg.t.sport", "bastion.msg.t.sport.>")
"""

from __future__ import annotations

from ._detect import FleetDetect
from ._leader import LeaderLease, leader_bucket
from ._messages import MessageRelay
from ._node import ClusterNode
from ._registry import (
    HANDOVER_TIMEOUT,
    ClusterUnavailable,
    Owner,
    SessionRegistry,
    client_of,
    session_key,
)
from ._status import ClusterStatus, Lease, NodeStatus, read_status
from ._subjects import DEFAULT_SUBJECT_PREFIX, SubjectCodec

__all__ = [
    "DEFAULT_SUBJECT_PREFIX",
    "HANDOVER_TIMEOUT",
    "ClusterNode",
    "ClusterStatus",
    "ClusterUnavailable",
    "FleetDetect",
    "LeaderLease",
    "Lease",
    "MessageRelay",
    "NodeStatus",
    "Owner",
    "SessionRegistry",
    "SubjectCodec",
    "client_of",
    "leader_bucket",
    "read_status",
    "session_key",
]
