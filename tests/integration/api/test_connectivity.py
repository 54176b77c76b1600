"""GetThingConnectivityData through boto3 with SigV4, against a real Bastion and real
mutual-TLS MQTT clients: connected while the device (client id = thing name) is, then
not with the disconnect reason; a thing that never connected is not connected; an
unknown thing is AWS's ResourceNotFoundException. (Across the nodes of a cluster:
tests/integration/cluster/test_connectivity_across_nodes.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.clients import Client, wait_for

from .conftest import ApiBastion, device_through_api

SLACK = timedelta(seconds=2)  # the journal's timestamps vs. this process's clock


def _until(iot: Any, name: str, connected: bool, timeout: float = 10.0) -> dict[str, Any]:
    """GetThingConnectivityData until it says ``connected`` (the journal is written in
    batches about every half second)."""
    deadline = time.monotonic() + timeout
    while True:
        answer: dict[str, Any] = iot.get_thing_connectivity_data(thingName=name)
        if answer["connected"] is connected:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never became connected={connected}: {answer}")
        time.sleep(0.05)


def test_connected_while_the_device_is_then_not_with_the_reason(
        api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
        tmp_path: Path) -> None:
    name = unique("conn")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    never = iot.get_thing_connectivity_data(thingName=name)
    assert {k: v for k, v in never.items() if k != "ResponseMetadata"} == {
        "thingName": name, "connected": False}

    started = datetime.now(UTC)
    client = Client(device, api_bastion.mqtt_port, client_id=name).connect()
    try:
        live = _until(iot, name, True)
        assert live["thingName"] == name and live["clientId"] == name
        assert started - SLACK <= live["timestamp"] <= datetime.now(UTC) + SLACK
        assert "disconnectReason" not in live
        assert "sourceIp" not in live  # only with includeSocketInformation
        with_socket = iot.get_thing_connectivity_data(thingName=name,
                                                      includeSocketInformation=True)
        assert with_socket["sourceIp"] == "127.0.0.1"
        # An auditor (read-only) may ask too.
        assert api_bastion.client(role="auditor").get_thing_connectivity_data(
            thingName=name)["connected"] is True
    finally:
        client.disconnect()
    ended = _until(iot, name, False)
    assert ended["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert live["timestamp"] <= ended["timestamp"] <= datetime.now(UTC) + SLACK


def test_a_lost_connection_says_so(api_bastion: ApiBastion, iot: Any,
                                   unique: Callable[[str], str], tmp_path: Path) -> None:
    name = unique("lost")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    client = Client(device, api_bastion.mqtt_port, client_id=name).connect()
    _until(iot, name, True)
    client.kill()  # the socket closes without DISCONNECT
    assert _until(iot, name, False)["disconnectReason"] == "CONNECTION_LOST"


def test_only_a_client_id_equal_to_the_thing_name_counts(
        api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
        tmp_path: Path) -> None:
    """As in AWS: connectivity is that of the client id named like the thing."""
    name = unique("named")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    other = Client(device, api_bastion.mqtt_port, client_id=f"{name}-console").connect()
    try:
        # Wait for the other client's own journal row, so a wrong answer would show.
        store = api_bastion.running.app.services.store

        def journaled() -> bool:
            with store.transaction(readonly=True) as uow:
                row = uow.connections.latest_of_client(f"{name}-console")
            return row is not None and row.disconnected_at is None

        wait_for(journaled, 10, "the other client's journal row")
        assert iot.get_thing_connectivity_data(thingName=name)["connected"] is False
    finally:
        other.disconnect()


def test_an_unknown_thing_is_resource_not_found(api_bastion: ApiBastion, iot: Any) -> None:
    with pytest.raises(ClientError) as raised:
        iot.get_thing_connectivity_data(thingName="no-such-thing-anywhere")
    response = raised.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert response["Error"]["Message"] == "Thing no-such-thing-anywhere cannot be found"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith(
        "ResourceNotFoundException")
    assert isinstance(raised.value, iot.exceptions.ResourceNotFoundException)
