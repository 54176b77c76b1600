"""Control-plane calls through the API reach live MQTT sessions, as registry changes do."""

from __future__ import annotations

import json
import time

from support.clients import V5, Client

from .conftest import device_through_api


def test_deactivating_a_certificate_through_the_api_drops_its_session(api_bastion, iot, unique,
                                                                      tmp_path):
    device = device_through_api(api_bastion, iot, unique("live"), tmp_path)
    client = Client(device, api_bastion.mqtt_port, version=V5).connect()
    iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    assert client.disconnected.wait(1.0), "the live session survived the deactivation"
    again = Client(device, api_bastion.mqtt_port, version=V5)
    again.connect(expect_success=False)
    assert again.connack.value == 0x87


def test_a_new_policy_version_through_the_api_applies_to_the_next_publish(api_bastion, iot,
                                                                          unique, tmp_path):
    name = unique("versioned")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    client = Client(device, api_bastion.mqtt_port, version=V5).connect()
    first = client.publish("anything/at/all", b"1", qos=1)
    assert client.acks[first.mid].value in (0, 0x10)
    narrow = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": "arn:aws:iot:us-east-1:123456789012:topic/allowed/*"}]})
    iot.create_policy_version(policyName=f"{name}-policy", policyDocument=narrow,
                              setAsDefault=True)
    deadline = time.monotonic() + 1.0
    while client.acks[client.publish("anything/at/all", b"2", qos=1).mid].value != 0x87:
        assert time.monotonic() < deadline, "the old policy version still applies"
    client.disconnect()
