"""Connectivity and metrics in a cluster of real ``bastion serve`` nodes (one PostgreSQL,
one NATS): GetThingConnectivityData asked through one node answers for a device
connected to another (the connection journal is in the shared store), and each node's
``/metrics`` names the node and counts only its own traffic."""

from __future__ import annotations

import http.client
import ssl
import time
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from prometheus_client.parser import text_string_to_metric_families

from bastion.access import AccessKeyService, Role
from bastion.store import Store
from support.clients import Client
from support.cluster import ServedFleet
from support.served import ServedBastion

NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


def _iot(node: ServedBastion, key: tuple[str, str]) -> Any:
    return boto3.client("iot", endpoint_url=node.url, region_name="us-east-1",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        verify=str(node.datadir.ca_cert_path), config=NO_RETRIES)


def _until(iot: Any, name: str, connected: bool, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer: dict[str, Any] = iot.get_thing_connectivity_data(thingName=name)
        if answer["connected"] is connected:
            return answer
        assert time.monotonic() < deadline, f"{name} never connected={connected}: {answer}"
        time.sleep(0.1)


def _samples(node: ServedBastion) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    host, port = node.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(node.datadir.ca_cert_path))
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    token = node.datadir.metrics_token_path.read_text().strip()
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
    finally:
        connection.close()
    return {(sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
            for family in text_string_to_metric_families(body) for sample in family.samples}


def test_connectivity_through_one_node_of_a_device_on_another(
        served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    (device,) = one.devices("roamer")
    with Store.open(served_fleet.database_url) as store:
        key = AccessKeyService(store, one.datadir.open_keystore()).create_access_key(
            Role.AUDITOR, "cluster connectivity test")
    one.start()
    two.start()
    asked = _iot(two, key)
    assert asked.get_thing_connectivity_data(thingName="roamer")["connected"] is False
    before_one, before_two = _samples(one), _samples(two)
    client = Client(device, one.port, client_id="roamer").connect()
    try:
        live = _until(asked, "roamer", True)  # asked node-2; connected to node-1
        assert live["clientId"] == "roamer" and "disconnectReason" not in live
        for n in range(5):
            client.publish("roamer/reading", str(n), qos=1)
        after_one, after_two = _samples(one), _samples(two)
    finally:
        client.disconnect()
    ended = _until(asked, "roamer", False)
    assert ended["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert ended["timestamp"] >= live["timestamp"]

    messages = ("bastion_mqtt_messages_in_total", ())
    assert after_one[messages] - before_one[messages] == 5  # the node the device is on
    assert after_two[messages] == before_two[messages]      # not the other
    for node_id, samples in (("node-1", after_one), ("node-2", after_two)):
        info = [labels for (name, labels), _ in samples.items() if name == "bastion_node_info"]
        assert info == [(("cluster", served_fleet.name), ("node", node_id))]
