"""The connection journal in a cluster: each row names the node id, and a node that
restarts after a crash closes only the rows it left open, not the other nodes'."""

from __future__ import annotations

from typing import Any

from bastion.store import Store
from support.clients import V5, Client, wait_for
from support.cluster import ServedFleet


def test_restarting_one_node_leaves_the_other_nodes_connections_open(
        served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    (device,) = one.devices("stayer")
    one.start()
    two.start()
    client = Client(device, one.port, version=V5, client_id="stayer").connect()
    with Store.open(served_fleet.database_url, migrate=False) as store:
        def rows() -> list[Any]:
            with store.transaction(readonly=True) as uow:
                return list(uow.connections.of_certificate(device.certificate_id))

        wait_for(lambda: bool(rows()), 10, "the journal row of the connection")
        assert rows()[0].node == "node-1"
        two.kill()
        two.start()  # a restart after a crash closes what *this* node left open
        row = rows()[0]
        assert row.disconnected_at is None, row  # still connected to node-1
    client.disconnect()
