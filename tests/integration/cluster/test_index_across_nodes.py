"""Fleet indexing in a cluster of real ``bastion serve`` nodes (one PostgreSQL, one NATS):
each node keeps its own index, built from the shared store at start and following the
registry events every node sees — a thing created or updated through one node is found
through the other."""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bastion.access import AccessKeyService, Role
from bastion.store import Store
from support.cluster import ServedFleet
from support.served import ServedBastion

NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


def _iot(node: ServedBastion, key: tuple[str, str]) -> Any:
    return boto3.client("iot", endpoint_url=node.url, region_name="us-east-1",
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


def test_a_thing_made_through_one_node_is_found_through_the_other(
        served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    with Store.open(served_fleet.database_url) as store:
        key = AccessKeyService(store, one.datadir.open_keystore()).create_access_key(
            Role.ADMIN, "cluster index test")
    one.start()
    first = _iot(one, key)
    first.update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    two.start()  # reads the configuration from the shared store and builds its index
    second = _iot(two, key)
    _until_found(second, "thingName:*", [])
    first.create_thing(thingName="far-away", attributePayload={"attributes": {"v": "1"}})
    _until_found(second, "thingName:far-away attributes.v:1", ["far-away"])
    first.update_thing(thingName="far-away", attributePayload={"attributes": {"v": "2"}})
    _until_found(second, "thingName:far-away attributes.v:2", ["far-away"])
    first.delete_thing(thingName="far-away")
    _until_found(second, "thingName:far-away", [])
