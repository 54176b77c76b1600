"""Fleet indexing in a cluster of real ``bastion serve`` nodes (one PostgreSQL, one NATS):
each node keeps its own index, built from the shared store at start and following the
events every node sees — a thing created or updated, a shadow updated, a device
connected through or to one node is found through the other."""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bastion.access import AccessKeyService, Role
from bastion.store import Store
from support.clients import Client
from support.cluster import ServedFleet
from support.served import ServedBastion

NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


def _iot(node: ServedBastion, key: tuple[str, str], service: str = "iot") -> Any:
    return boto3.client(service, endpoint_url=node.url, region_name="us-east-1",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        verify=str(node.datadir.ca_cert_path), config=NO_RETRIES)


def _until_found(iot: Any, query: str, expected: list[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = [t["thingName"] for t in iot.search_index(queryString=query)["things"]]
        except iot.exceptions.IndexNotReadyException:
            found = None
        if found == expected:
            return
        assert time.monotonic() < deadline, f"{query}: {found} != {expected}"
        time.sleep(0.1)


def test_what_happens_through_one_node_is_found_through_the_other(
        served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    (device,) = one.devices("roamer")
    with Store.open(served_fleet.database_url) as store:
        key = AccessKeyService(store, one.datadir.open_keystore()).create_access_key(
            Role.ADMIN, "cluster index test")
    one.start()
    first = _iot(one, key)
    first.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW", "thingConnectivityIndexingMode": "STATUS"})
    two.start()  # reads the configuration from the shared store and builds its index
    second = _iot(two, key)
    _until_found(second, "thingName:*", ["roamer"])
    first.create_thing(thingName="far-away", attributePayload={"attributes": {"v": "1"}})
    _until_found(second, "thingName:far-away attributes.v:1", ["far-away"])
    first.update_thing(thingName="far-away", attributePayload={"attributes": {"v": "2"}})
    _until_found(second, "thingName:far-away attributes.v:2", ["far-away"])
    first.delete_thing(thingName="far-away")
    _until_found(second, "thingName:far-away", [])

    _iot(one, key, "iot-data").update_thing_shadow(
        thingName="roamer", payload=b'{"state":{"reported":{"battery":7}}}')
    _until_found(second, "shadow.reported.battery<10", ["roamer"])
    client = Client(device, one.port, client_id="roamer").connect()  # to node-1
    try:
        _until_found(second, "connectivity.connected:true", ["roamer"])
    finally:
        client.disconnect()
    _until_found(second, "connectivity.disconnectReason:CLIENT_INITIATED_DISCONNECT",
                 ["roamer"])
