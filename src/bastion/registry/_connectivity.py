"""A thing's connectivity, read from the connection journal (GetThingConnectivityData).

Theory of operation
-------------------
AWS IoT reports the connectivity of a thing whose device connects with the thing's name
as its MQTT client id; Bastion does the same. Every node writes each connection it
accepts, and its end, to the connection journal (:mod:`bastion.enforcement`'s
``ConnectionJournal``, table ``connection_sessions``), tagged with the node's id. In a
cluster that table lives in the shared PostgreSQL, so any node answers for a device
connected to any other; the answer is the client id's most recent connection:

* none → ``connected`` false, nothing else (the device never connected, as AWS answers
  for a device it has no session details of);
* open → ``connected`` true, ``timestamp`` when it connected;
* closed → ``connected`` false, ``timestamp`` when it ended and the disconnect reason
  (the lifecycle event's: ``CLIENT_INITIATED_DISCONNECT``, ``CONNECTION_LOST``, …).

The journal is written in batches about every half second, so a change shows here within
about a second of happening. A node that dies leaves its connections open until it starts
again (it closes them, ``SERVER_ERROR``, before accepting devices); a device that moved to
another node meanwhile shows connected there, its newest connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bastion.store import ConnectionSessionRow

from ._names import check_name
from ._service import ServiceBase
from ._things import require_thing


@dataclass(frozen=True, slots=True)
class ThingConnectivity:
    """What GetThingConnectivityData answers.

    :ivar timestamp: when the latest connection began (connected) or ended (not);
        ``None`` when the device never connected.
    :ivar disconnect_reason: why the latest connection ended; ``None`` while connected
        or when it never connected.
    :ivar source_ip: the address the latest connection came from (``None``: never).
    """

    thing_name: str
    connected: bool
    timestamp: datetime | None = None
    disconnect_reason: str | None = None
    client_id: str | None = None
    source_ip: str | None = None


class ConnectivityReads(ServiceBase):
    """Connectivity of things (a base of :class:`~bastion.registry.RegistryService`)."""

    __slots__ = ()

    def thing_connectivity(self, thing_name: str) -> ThingConnectivity:
        """GetThingConnectivityData: the latest connection of the client id equal to
        ``thing_name`` (see the module docstring).

        :raises InvalidRequestError: ``thing_name`` is not a valid thing name.
        :raises ResourceNotFoundError: no such thing.
        """
        name = check_name(thing_name, "thingName")
        with self._read() as uow:
            require_thing(uow, name)
            row = uow.connections.latest_of_client(name)
        if row is None:
            return ThingConnectivity(name, False)
        if row.disconnected_at is None:
            return ThingConnectivity(name, True, row.connected_at, None, row.client_id,
                                     row.source_ip)
        return ThingConnectivity(name, False, row.disconnected_at,
                                 row.disconnect_reason or "UNKNOWN", row.client_id,
                                 row.source_ip)

    def connection_history(self, thing_name: str, *, limit: int = 20
                           ) -> list[ConnectionSessionRow]:
        """The ``limit`` most recent connections of the client id equal to ``thing_name``
        (the console's thing page), newest first, from the connection journal.

        :raises InvalidRequestError: ``thing_name`` is not a valid thing name.
        :raises ResourceNotFoundError: no such thing.
        :raises ValueError: ``limit`` < 1.
        """
        name = check_name(thing_name, "thingName")
        with self._read() as uow:
            require_thing(uow, name)
            return uow.connections.recent_of_client(name, limit)
