"""Device shadows with the real AWS IoT Device SDK (``awsiotsdk``) against ``bastion``.

The device uses the least-privilege policy of ``bastion device create`` (its thing name
as client id; only ``$aws/things/<own name>/…``); the "app" side that asks for a state
change uses an allow-all test policy.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import awsiot
import pytest
from awscrt import mqtt, mqtt5
from awsiot import iotshadow

from support.clients import DeviceFiles
from support.running import RunningBastion

from .conftest import TIMEOUT, Inbox, Mqtt5, Mqtt311, open_stream, subscribe_311

QOS1 = mqtt.QoS.AT_LEAST_ONCE
MakeDevice = Callable[..., DeviceFiles]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def modeled_error(caught: pytest.ExceptionInfo[BaseException]) -> iotshadow.V2ErrorResponse:
    error = caught.value
    assert isinstance(error, awsiot.V2ServiceException), error
    assert isinstance(error.modeled_error, iotshadow.V2ErrorResponse), error.message
    return error.modeled_error


# -- MQTT 3.1.1, the V1 shadow client -------------------------------------------------


def test_classic_shadow_get_update_delta_round_trip_mqtt311(
        bastion: RunningBastion, make_device: MakeDevice,
        open_311: Callable[..., Mqtt311]) -> None:
    device_files = make_device(unique("lamp"), policy=None)
    thing = device_files.name
    device = open_311(device_files, bastion.port)
    app = open_311(make_device(), bastion.port)
    shadow = device.shadow

    got, get_rejected = Inbox(), Inbox()
    accepted, rejected, deltas, documents = Inbox(), Inbox(), Inbox(), Inbox()
    subscribe_311(shadow.subscribe_to_get_shadow_accepted(
        iotshadow.GetShadowSubscriptionRequest(thing_name=thing), QOS1, got))
    subscribe_311(shadow.subscribe_to_get_shadow_rejected(
        iotshadow.GetShadowSubscriptionRequest(thing_name=thing), QOS1, get_rejected))
    subscribe_311(shadow.subscribe_to_update_shadow_accepted(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), QOS1, accepted))
    subscribe_311(shadow.subscribe_to_update_shadow_rejected(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), QOS1, rejected))
    subscribe_311(shadow.subscribe_to_shadow_delta_updated_events(
        iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing), QOS1, deltas))
    subscribe_311(app.shadow.subscribe_to_shadow_updated_events(
        iotshadow.ShadowUpdatedSubscriptionRequest(thing_name=thing), QOS1, documents))

    # No shadow yet: the get is rejected, and the rejection names the request's token.
    shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing,
                                                         client_token="get-1"), QOS1)
    missing = get_rejected.next()
    assert (missing.code, missing.message, missing.client_token) == (
        404, f"No shadow exists with name: '{thing}'", "get-1")

    # The app asks for a colour; the device gets the delta.
    app.shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, client_token="app-1",
        state=iotshadow.ShadowState(desired={"color": "red", "power": "on"})), QOS1)
    delta = deltas.next()
    assert delta.state == {"color": "red", "power": "on"} and delta.version == 1
    assert delta.metadata["color"]["timestamp"] > 0
    first = accepted.next()  # the device sees update/accepted of the app's update too
    assert (first.version, first.client_token) == (1, "app-1")
    assert first.state.desired == {"color": "red", "power": "on"}

    # The device applies it and reports; desired and reported agree again.
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=thing, client_token="dev-1",
        state=iotshadow.ShadowState(reported={"color": "red", "power": "on"})), QOS1)
    second = accepted.next()
    assert (second.version, second.client_token) == (2, "dev-1")
    assert second.state.reported == {"color": "red", "power": "on"}
    assert second.metadata.reported["power"]["timestamp"] >= first.timestamp.timestamp() - 1

    shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing,
                                                         client_token="get-2"), QOS1)
    whole = got.next()
    assert (whole.version, whole.client_token) == (2, "get-2")
    assert whole.state.desired == whole.state.reported == {"color": "red", "power": "on"}
    assert whole.state.delta is None
    assert set(whole.metadata.desired) == {"color", "power"}

    # The app saw both versions on update/documents.
    created, synced = documents.next(), documents.next()
    assert created.previous is None and created.current.version == 1
    assert synced.previous.version == 1 and synced.current.version == 2
    assert synced.current.state.reported == {"color": "red", "power": "on"}
    assert deltas.empty() and rejected.empty()


def test_version_conflict_and_bad_requests_are_rejected_mqtt311(
        bastion: RunningBastion, make_device: MakeDevice,
        open_311: Callable[..., Mqtt311]) -> None:
    device_files = make_device(unique("meter"), policy=None)
    thing = device_files.name
    device = open_311(device_files, bastion.port)
    accepted, rejected = Inbox(), Inbox()
    subscribe_311(device.shadow.subscribe_to_update_shadow_accepted(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), QOS1, accepted))
    subscribe_311(device.shadow.subscribe_to_update_shadow_rejected(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), QOS1, rejected))

    def update(version: int | None, token: str) -> None:
        device.shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
            thing_name=thing, client_token=token, version=version,
            state=iotshadow.ShadowState(reported={"kwh": token})), QOS1).result(TIMEOUT)

    update(None, "v1")
    assert accepted.next().version == 1
    update(1, "v2")
    assert accepted.next().version == 2
    update(1, "stale")
    conflict = rejected.next()
    assert (conflict.code, conflict.message, conflict.client_token) == (
        409, "Version conflict", "stale")

    # Not JSON at all: rejected 400 (no token could be read).
    topic = f"$aws/things/{thing}/shadow/update"
    device.connection.publish(topic, b"{nope", QOS1)[0].result(TIMEOUT)
    invalid = rejected.next()
    assert (invalid.code, invalid.message, invalid.client_token) == (400, "Invalid JSON", None)
    assert accepted.empty()


# -- MQTT 5, the V2 (request-response) shadow client ----------------------------------


def test_named_shadow_round_trip_and_delete_mqtt5(
        bastion: RunningBastion, make_device: MakeDevice,
        open_5: Callable[..., Mqtt5]) -> None:
    device_files = make_device(unique("heater"), policy=None)
    thing = device_files.name
    client = open_5(device_files, bastion.port)
    shadow = client.shadow_v2()
    deltas, updates = Inbox(), Inbox()
    # Keep the streams referenced: a collected stream unsubscribes.
    streams = [
        open_stream(shadow, shadow.create_named_shadow_delta_updated_stream,
                    iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(
                        thing_name=thing, shadow_name="thermostat"), deltas),
        open_stream(shadow, shadow.create_named_shadow_updated_stream,
                    iotshadow.NamedShadowUpdatedSubscriptionRequest(
                        thing_name=thing, shadow_name="thermostat"), updates),
    ]

    with pytest.raises(awsiot.V2ServiceException) as caught:
        shadow.get_named_shadow(iotshadow.GetNamedShadowRequest(
            thing_name=thing, shadow_name="thermostat")).result(TIMEOUT)
    error = modeled_error(caught)
    assert (error.code, error.message) == (404, "No shadow exists with name: 'thermostat'")

    created = shadow.update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name="thermostat",
        state=iotshadow.ShadowState(desired={"target": 21.5}))).result(TIMEOUT)
    assert created.version == 1 and created.state.desired == {"target": 21.5}
    delta = deltas.next()
    assert (delta.state, delta.version) == ({"target": 21.5}, 1)
    assert updates.next().current.version == 1

    reported = shadow.update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name="thermostat", version=1,
        state=iotshadow.ShadowState(reported={"target": 21.5, "now": 19}))).result(TIMEOUT)
    assert reported.version == 2
    got = shadow.get_named_shadow(iotshadow.GetNamedShadowRequest(
        thing_name=thing, shadow_name="thermostat")).result(TIMEOUT)
    assert got.version == 2 and got.state.delta is None
    assert got.state.reported == {"target": 21.5, "now": 19}
    assert got.metadata.desired["target"]["timestamp"] > 0

    # The classic shadow is another document.
    with pytest.raises(awsiot.V2ServiceException) as caught:
        shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert modeled_error(caught).code == 404

    deleted = shadow.delete_named_shadow(iotshadow.DeleteNamedShadowRequest(
        thing_name=thing, shadow_name="thermostat")).result(TIMEOUT)
    assert deleted.version == 2
    with pytest.raises(awsiot.V2ServiceException) as caught:
        shadow.get_named_shadow(iotshadow.GetNamedShadowRequest(
            thing_name=thing, shadow_name="thermostat")).result(TIMEOUT)
    assert modeled_error(caught).code == 404
    # Re-created, the version sequence continues.
    again = shadow.update_named_shadow(iotshadow.UpdateNamedShadowRequest(
        thing_name=thing, shadow_name="thermostat",
        state=iotshadow.ShadowState(reported={"now": 20}))).result(TIMEOUT)
    assert again.version == 3
    assert deltas.empty()
    assert len(streams) == 2  # (alive until here)


def test_version_conflict_and_oversized_shadow_mqtt5(
        bastion: RunningBastion, make_device: MakeDevice,
        open_5: Callable[..., Mqtt5]) -> None:
    device_files = make_device(unique("gauge"), policy=None)
    thing = device_files.name
    shadow = open_5(device_files, bastion.port).shadow_v2()

    def update(**fields: Any) -> Any:
        return shadow.update_shadow(iotshadow.UpdateShadowRequest(
            thing_name=thing, **fields)).result(TIMEOUT)

    assert update(state=iotshadow.ShadowState(reported={"level": 1})).version == 1
    assert update(state=iotshadow.ShadowState(reported={"level": 2}), version=1).version == 2
    with pytest.raises(awsiot.V2ServiceException) as caught:
        update(state=iotshadow.ShadowState(reported={"level": 3}), version=1)
    error = modeled_error(caught)
    assert (error.code, error.message) == (409, "Version conflict")

    with pytest.raises(awsiot.V2ServiceException) as caught:
        update(state=iotshadow.ShadowState(reported={"blob": "x" * 9000}))
    error = modeled_error(caught)
    assert (error.code, error.message) == (413, "The payload exceeds the maximum size allowed")

    with pytest.raises(awsiot.V2ServiceException) as caught:
        update(state=iotshadow.ShadowState(reported={"a": {"b": {"c": {"d": {"e": {"f": {
            "g": 1}}}}}}}))
    assert modeled_error(caught).message == \
        "JSON contains too many levels of nesting; maximum is 6"
    got = shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)
    assert got.version == 2 and got.state.reported == {"level": 2}


# -- another thing's shadow -----------------------------------------------------------


def test_a_device_cannot_touch_another_things_shadow_mqtt5(
        bastion: RunningBastion, make_device: MakeDevice,
        open_5: Callable[..., Mqtt5]) -> None:
    victim_files = make_device(unique("victim"), policy=None)
    victim = victim_files.name
    intruder = open_5(make_device(unique("intruder"), policy=None), bastion.port)
    prefix = f"$aws/things/{victim}/shadow"

    suback = intruder.client.subscribe(mqtt5.SubscribePacket(subscriptions=[
        mqtt5.Subscription(f"{prefix}/update/accepted", mqtt5.QoS.AT_LEAST_ONCE),
        mqtt5.Subscription(f"{prefix}/get/+", mqtt5.QoS.AT_LEAST_ONCE),
    ])).result(TIMEOUT)
    assert suback.reason_codes == [mqtt5.SubackReasonCode.NOT_AUTHORIZED] * 2

    update = json.dumps({"state": {"desired": {"unlock": True}}}).encode()
    puback = intruder.client.publish(mqtt5.PublishPacket(
        topic=f"{prefix}/update", payload=update,
        qos=mqtt5.QoS.AT_LEAST_ONCE)).result(TIMEOUT).puback
    assert puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED

    # The SDK's shadow client cannot get at it either: its subscriptions are refused.
    intruder_shadow = intruder.shadow_v2()
    with pytest.raises(awsiot.V2ServiceException) as caught:
        intruder_shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=victim)).result(TIMEOUT)
    assert "SUBSCRIBE_FAILURE" in str(caught.value.inner_error)

    # The victim's shadow was never created.
    owner = open_5(victim_files, bastion.port).shadow_v2()
    with pytest.raises(awsiot.V2ServiceException) as caught:
        owner.get_shadow(iotshadow.GetShadowRequest(thing_name=victim)).result(TIMEOUT)
    assert modeled_error(caught).code == 404


def test_a_device_cannot_touch_another_things_shadow_mqtt311(
        bastion: RunningBastion, make_device: MakeDevice,
        open_311: Callable[..., Mqtt311]) -> None:
    victim = make_device(unique("victim"), policy=None).name
    intruder = open_311(make_device(unique("intruder"), policy=None), bastion.port)

    # SUBACK 0x80 for the other thing's reply topic.
    future, _ = intruder.shadow.subscribe_to_update_shadow_accepted(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=victim), QOS1, Inbox())
    with pytest.raises(mqtt.SubscribeError):
        future.result(TIMEOUT)

    # Publishing to its update topic: AWS IoT (and Bastion) close a 3.1.1 connection.
    intruder.shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
        thing_name=victim, state=iotshadow.ShadowState(desired={"unlock": True})), QOS1)
    assert intruder.interrupted.wait(TIMEOUT)
    assert victim_has_no_shadow(bastion, victim)


def victim_has_no_shadow(bastion: RunningBastion, victim: str) -> bool:
    with bastion.app.plane.store.transaction(readonly=True) as uow:
        return uow.shadows.get(victim, "") is None
