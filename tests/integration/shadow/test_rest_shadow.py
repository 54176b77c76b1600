"""Device shadows through boto3's ``iot-data`` client — and the same shadows over MQTT."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from awscrt import mqtt
from awsiot import iotshadow
from botocore.exceptions import ClientError

from bastion.api import Role
from support.clients import DeviceFiles

from .conftest import TIMEOUT, ApiBastion, Inbox, Mqtt311, subscribe_311

QOS1 = mqtt.QoS.AT_LEAST_ONCE
MakeDevice = Callable[..., DeviceFiles]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def payload_of(response: dict[str, Any]) -> Any:
    return json.loads(response["payload"].read())


def refusal(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = caught.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


def update(client: Any, thing: str, document: dict[str, Any], **kwargs: Any) -> Any:
    return payload_of(client.update_thing_shadow(thingName=thing,
                                                 payload=json.dumps(document), **kwargs))


def test_shadow_lifecycle_over_rest(api_bastion: ApiBastion) -> None:
    client = api_bastion.iot_data()
    thing = unique("rest")
    with pytest.raises(ClientError) as caught:
        client.get_thing_shadow(thingName=thing)
    assert refusal(caught) == (404, "ResourceNotFoundException",
                               f"No shadow exists with name: '{thing}'")

    accepted = update(client, thing, {"state": {"desired": {"mode": "eco"}},
                                      "clientToken": "rest-1"})
    assert accepted["state"] == {"desired": {"mode": "eco"}}
    assert (accepted["version"], accepted["clientToken"]) == (1, "rest-1")
    assert accepted["metadata"]["desired"]["mode"]["timestamp"] == accepted["timestamp"]

    assert update(client, thing, {"state": {"reported": {"mode": "boost"}},
                                  "version": 1})["version"] == 2
    got = payload_of(client.get_thing_shadow(thingName=thing))
    assert got["state"] == {"desired": {"mode": "eco"}, "reported": {"mode": "boost"},
                            "delta": {"mode": "eco"}}
    assert got["version"] == 2

    with pytest.raises(ClientError) as caught:
        update(client, thing, {"state": {"reported": {"mode": "eco"}}, "version": 1})
    assert refusal(caught) == (409, "ConflictException", "Version conflict")
    with pytest.raises(ClientError) as caught:
        update(client, thing, {"state": {"reported": {"log": "x" * 9000}}})
    assert refusal(caught) == (413, "RequestEntityTooLargeException",
                               "The payload exceeds the maximum size allowed")
    with pytest.raises(ClientError) as caught:
        client.update_thing_shadow(thingName=thing, payload=b"{oops")
    assert refusal(caught) == (400, "InvalidRequestException", "Invalid JSON")
    with pytest.raises(ClientError) as caught:
        update(client, thing, {"state": {"desired": {"a": 1}, "delta": {}}})
    assert refusal(caught) == (400, "InvalidRequestException",
                               "State contains an invalid node: 'delta'")
    with pytest.raises(ClientError) as caught:
        client.update_thing_shadow(thingName=thing, payload=b"\xff\xfe")
    assert refusal(caught)[:2] == (415, "UnsupportedDocumentEncodingException")

    deleted = payload_of(client.delete_thing_shadow(thingName=thing))
    assert deleted["version"] == 2 and deleted["timestamp"] > 0
    with pytest.raises(ClientError) as caught:
        client.delete_thing_shadow(thingName=thing)
    assert refusal(caught)[:2] == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError):
        client.get_thing_shadow(thingName=thing)
    assert update(client, thing, {"state": {}})["version"] == 3


def test_named_shadows_and_their_listing_over_rest(api_bastion: ApiBastion) -> None:
    client = api_bastion.iot_data()
    thing = unique("named")
    assert client.list_named_shadows_for_thing(thingName=thing)["results"] == []
    update(client, thing, {"state": {"reported": {"classic": True}}})
    for name in ("window", "door", "alarm"):
        update(client, thing, {"state": {"reported": {"name": name}}}, shadowName=name)
    got = payload_of(client.get_thing_shadow(thingName=thing, shadowName="door"))
    assert got["state"] == {"reported": {"name": "door"}} and got["version"] == 1
    with pytest.raises(ClientError) as caught:
        client.get_thing_shadow(thingName=thing, shadowName="garage")
    assert refusal(caught)[2] == "No shadow exists with name: 'garage'"

    first = client.list_named_shadows_for_thing(thingName=thing, pageSize=2)
    assert first["results"] == ["alarm", "door"] and first["timestamp"] > 0
    second = client.list_named_shadows_for_thing(thingName=thing, pageSize=2,
                                                 nextToken=first["nextToken"])
    assert second["results"] == ["window"] and "nextToken" not in second
    client.delete_thing_shadow(thingName=thing, shadowName="door")
    assert client.list_named_shadows_for_thing(thingName=thing)["results"] == [
        "alarm", "window"]
    with pytest.raises(ClientError) as caught:
        client.list_named_shadows_for_thing(thingName=thing, nextToken="not-a-token")
    assert refusal(caught)[:2] == (400, "InvalidRequestException")
    with pytest.raises(ClientError) as caught:
        client.get_thing_shadow(thingName=thing, shadowName="bad/name")
    assert refusal(caught)[:2] == (400, "InvalidRequestException")


def test_auditors_read_shadows_but_cannot_change_them(api_bastion: ApiBastion) -> None:
    thing = unique("audited")
    update(api_bastion.iot_data(), thing, {"state": {"reported": {"ok": True}}})
    auditor = api_bastion.iot_data(Role.AUDITOR)
    assert payload_of(auditor.get_thing_shadow(thingName=thing))["version"] == 1
    assert auditor.list_named_shadows_for_thing(thingName=thing)["results"] == []
    with pytest.raises(ClientError) as caught:
        update(auditor, thing, {"state": {"reported": {"ok": False}}})
    assert refusal(caught)[:2] == (403, "AccessDeniedException")
    with pytest.raises(ClientError) as caught:
        auditor.delete_thing_shadow(thingName=thing)
    assert refusal(caught)[:2] == (403, "AccessDeniedException")


def test_one_service_two_doors(api_bastion: ApiBastion, make_device: MakeDevice,
                               open_311: Callable[..., Mqtt311]) -> None:
    """An app changes the shadow with boto3; the device (awsiotsdk, least-privilege
    policy) gets the delta over MQTT, reports over MQTT, and the app reads it back."""
    device_files = make_device(unique("valve"), policy=None)
    thing = device_files.name
    device = open_311(device_files, api_bastion.port)
    deltas, accepted, deleted = Inbox(), Inbox(), Inbox()
    subscribe_311(device.shadow.subscribe_to_shadow_delta_updated_events(
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing), QOS1, deltas))
    subscribe_311(device.shadow.subscribe_to_update_shadow_accepted(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), QOS1, accepted))
    subscribe_311(device.shadow.subscribe_to_delete_shadow_accepted(
        iotshadow.DeleteShadowSubscriptionRequest(thing_name=thing), QOS1, deleted))
    app = api_bastion.iot_data()

    update(app, thing, {"state": {"desired": {"open": True}}, "clientToken": "app"})
    delta = deltas.next()
    assert (delta.state, delta.version) == ({"open": True}, 1)
    assert accepted.next().client_token == "app"  # REST updates are announced too

    device.shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, state=iotshadow.ShadowState(reported={"open": True}),
        client_token="device"), QOS1).result(TIMEOUT)
    assert accepted.next().client_token == "device"
    got = payload_of(app.get_thing_shadow(thingName=thing))
    assert got["version"] == 2 and "delta" not in got["state"]
    assert got["state"]["reported"] == {"open": True}

    assert payload_of(app.delete_thing_shadow(thingName=thing))["version"] == 2
    assert deleted.next().version == 2
    assert deltas.empty()
