"""What the console reads of the message path: who is connected now, and the message
counters. The console never holds the broker: it gets a :class:`LiveFleet` (the
composition root plugs :class:`BrokerFleet` in) and reads it on the event loop.

On a node of a cluster both answer for this node only (a device connected to another
node shows there); the thing and certificate pages read the connection journal, which
every node shares, for a device's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bastion.broker import Broker


@dataclass(frozen=True, slots=True)
class ConnectedClient:
    """One live MQTT connection past CONNECT."""

    client_id: str
    certificate_id: str
    source_ip: str


@dataclass(frozen=True, slots=True)
class MessageTotals:
    """The message counters: PUBLISH packets received from clients since the node
    started, and, for each session connected now (by client id), the deliveries made to
    it since the session began (a persistent session keeps counting across its
    connections)."""

    received: int
    delivered: Mapping[str, int]


class LiveFleet(Protocol):
    """The message path as the console reads it (on the event loop)."""

    def connected(self) -> list[ConnectedClient]:
        """The connections open now, by client id."""
        ...

    def totals(self) -> MessageTotals:
        """The message counters now."""
        ...


class BrokerFleet:
    """:class:`LiveFleet` over this node's broker."""

    __slots__ = ("_broker",)

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def connected(self) -> list[ConnectedClient]:
        found = []
        for connection in list(self._broker.connections):
            principal = connection.principal
            if connection.closed or not connection.connacked or principal is None:
                continue
            found.append(ConnectedClient(connection.client_id, principal.certificate_id,
                                         principal.source_ip))
        found.sort(key=lambda client: client.client_id)
        return found

    def totals(self) -> MessageTotals:
        delivered = {client_id: session.messages_received for client_id, session
                     in list(self._broker.directory.sessions.items())
                     if session.connection is not None}
        return MessageTotals(self._broker.stats.messages_in, delivered)
