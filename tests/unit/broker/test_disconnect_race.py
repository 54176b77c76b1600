"""A client that sends a packet needing a reply and its DISCONNECT in one read (paho's
``publish(qos=1); disconnect()``): the reply still goes out, the session ends as a clean
disconnect — no will, ``clientInitiatedDisconnect: true`` — and nothing is logged as an
error."""

from __future__ import annotations

import logging

import pytest

from bastion.broker import ClientDisconnected, DisconnectReason
from bastion.mqtt import (
    MQTT_3_1_1,
    MQTT_5,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from support.broker_pair import BrokerPair, run

WILL = Will("wills/dev1", b"died")

# (what the client sends before its DISCONNECT, what it must get back)
CASES = [
    pytest.param(Publish("t/1", b"x", 1, packet_id=1), Puback, id="publish-qos1"),
    pytest.param(Publish("t/1", b"x", 2, packet_id=2), Pubrec, id="publish-qos2"),
    pytest.param(Subscribe(3, (Subscription("t/#", 1),)), Suback, id="subscribe"),
    pytest.param(Unsubscribe(4, ("t/#",)), Unsuback, id="unsubscribe"),
    pytest.param(Pingreq(), Pingresp, id="pingreq"),
]


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
@pytest.mark.parametrize(("before", "reply"), CASES)
def test_a_reply_and_a_clean_disconnect(before: Packet, reply: type, version: int,
                                        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(pair: BrokerPair) -> None:
        events: list[ClientDisconnected] = []
        pair.broker.bus.subscribe(ClientDisconnected, events.append)
        watcher = await pair.connect("watcher")
        await watcher.subscribe("wills/#")
        client = await pair.connect("dev1", version=version, will=WILL)
        client.send(before, Disconnect())
        await pair.settle()
        got = client.packets()
        assert [type(p) for p in got] == [reply]
        assert client.closed
        assert watcher.messages() == []  # no will: the client said goodbye
        (event,) = [e for e in events if e.client_id == "dev1"]
        assert event.client_initiated
        assert event.reason is DisconnectReason.CLIENT_INITIATED_DISCONNECT

    with caplog.at_level(logging.DEBUG, logger="bastion"):
        run(scenario)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_the_qos2_release_before_a_disconnect_is_completed() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1")
        client.send(Publish("t/1", b"x", 2, packet_id=7))
        await pair.settle()
        assert [type(p) for p in client.packets()] == [Pubrec]
        client.send(Pubrel(7), Disconnect())
        await pair.settle()
        assert client.take(Pubcomp) == [Pubcomp(7)]
        assert client.closed

    run(scenario)


def test_connect_publish_and_disconnect_in_one_read() -> None:
    async def scenario(pair: BrokerPair) -> None:
        watcher = await pair.connect("watcher")
        await watcher.subscribe("t/#", 1)
        client = pair.open()
        client.send(Connect("dev1", MQTT_5, True, 0, will=WILL),
                    Publish("t/1", b"hello", 1, packet_id=1), Disconnect())
        await pair.settle()
        got = client.packets()
        assert [type(p).__name__ for p in got] == ["Connack", "Puback"]
        assert client.closed
        assert [(m.topic, m.payload) for m in watcher.messages()] == [("t/1", b"hello")]

    run(scenario)
