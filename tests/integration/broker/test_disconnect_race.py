"""paho's ``publish(qos=1); disconnect()`` over real TLS: both packets usually reach the
broker in one read. The PUBACK is sent, the message is delivered, and the disconnect is
the client's own: no will, and the lifecycle event says ``clientInitiatedDisconnect``."""

from __future__ import annotations

import json

import pytest
from paho.mqtt.client import MQTTv5, MQTTv311

from support.clients import Client

ROUNDS = 10


@pytest.mark.parametrize("version", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_publish_then_disconnect_is_a_clean_goodbye(bastion, make_device, version):
    watcher = Client(make_device(), bastion.port, version=MQTTv5).connect()
    watcher.subscribe("race/#", 1)
    watcher.subscribe("$aws/events/presence/disconnected/+", 1)
    device = make_device()
    for n in range(ROUNDS):
        client_id = f"race-{version}-{n}"
        client = Client(device, bastion.port, version=version, client_id=client_id,
                        will=(f"race/will/{client_id}", b"died", 1, False)).connect()
        client.publish(f"race/data/{client_id}", b"hello", qos=1, wait=False)
        client.disconnect()
        got = watcher.expect(2)
        by_topic = {m.topic: m.payload for m in got}
        assert by_topic[f"race/data/{client_id}"] == b"hello"
        event = json.loads(by_topic[f"$aws/events/presence/disconnected/{client_id}"])
        assert event["clientInitiatedDisconnect"] is True, event
        assert event["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    watcher.expect_none()  # no will arrived, in any round
    watcher.disconnect()
