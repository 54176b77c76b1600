"""Sessions on an in-memory broker with a manual clock: wills, will delay, session and
message expiry, and the QoS 1/2 flows in both directions including resend on resume."""

from __future__ import annotations

from bastion.mqtt import (
    MQTT_3_1_1,
    Disconnect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Will,
)
from support.broker_pair import BrokerPair, MemoryClient, run

DELAYED = Properties(will_delay_interval=30)


# -- wills -------------------------------------------------------------------------------


def test_a_lost_connection_publishes_its_will() -> None:
    async def scenario(pair: BrokerPair) -> None:
        watcher = await pair.connect("watcher")
        await watcher.subscribe("wills/#", 1)
        dying = await pair.connect("dying", will=Will("wills/dying", b"gone", 1))
        dying.drop()
        await pair.settle()
        (message,) = watcher.messages()
        assert (message.topic, message.payload, message.qos) == ("wills/dying", b"gone", 1)

    run(scenario)


def test_a_normal_disconnect_sends_no_will_but_disconnect_with_will_does() -> None:
    async def scenario(pair: BrokerPair) -> None:
        watcher = await pair.connect("watcher")
        await watcher.subscribe("wills/#")
        polite = await pair.connect("polite", will=Will("wills/polite", b"x"))
        await polite.disconnect()
        assert watcher.messages() == []
        asking = await pair.connect("asking", will=Will("wills/asking", b"y"))
        await asking.disconnect(Disconnect(ReasonCode.DISCONNECT_WITH_WILL_MESSAGE))
        assert [m.topic for m in watcher.messages()] == ["wills/asking"]

    run(scenario)


async def dropped_with_delayed_will(pair: BrokerPair, *, session_expiry: int) -> MemoryClient:
    """A watcher of ``wills/#``, and a persistent client "dying" whose connection is lost
    with a will delayed by 30 s. Returns the watcher."""
    watcher = await pair.connect("watcher")
    await watcher.subscribe("wills/#")
    dying = await pair.connect("dying", clean_start=False, session_expiry=session_expiry,
                               will=Will("wills/late", b"late", properties=DELAYED))
    dying.drop()
    await pair.settle()
    return watcher


def test_a_will_delay_holds_the_will_until_it_passes() -> None:
    async def scenario(pair: BrokerPair) -> None:
        watcher = await dropped_with_delayed_will(pair, session_expiry=300)
        assert pair.broker.sessions["dying"].will_pending
        pair.clock.advance(29)
        await pair.settle()
        assert watcher.messages() == []
        pair.clock.advance(1)
        await pair.settle()
        assert [m.payload for m in watcher.messages()] == [b"late"]
        assert not pair.broker.sessions["dying"].will_pending

    run(scenario)


def test_a_reconnect_within_the_will_delay_cancels_the_will() -> None:
    async def scenario(pair: BrokerPair) -> None:
        watcher = await dropped_with_delayed_will(pair, session_expiry=300)
        pair.clock.advance(10)
        back = await pair.connect("dying", clean_start=False, session_expiry=300)
        assert back.connack is not None and back.connack.session_present
        pair.clock.advance(600)  # long past the delay (within the default keep-alive)
        await pair.settle()
        assert watcher.messages() == []

    run(scenario)


def test_the_will_delay_is_cut_short_by_the_session_expiry() -> None:
    async def scenario(pair: BrokerPair) -> None:
        watcher = await dropped_with_delayed_will(pair, session_expiry=5)
        pair.clock.advance(5)
        await pair.settle()
        assert [m.payload for m in watcher.messages()] == [b"late"]

    run(scenario)


# -- session expiry ----------------------------------------------------------------------


def test_an_offline_session_expires_after_its_interval() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1", clean_start=False, session_expiry=60)
        await client.subscribe("t/#", 1)
        await client.disconnect()
        pair.clock.advance(59)
        assert "dev1" in pair.broker.sessions
        pair.clock.advance(1)
        assert "dev1" not in pair.broker.sessions
        assert pair.broker.directory.subscription_count() == 0
        again = await pair.connect("dev1", clean_start=False, session_expiry=60)
        assert again.connack is not None and not again.connack.session_present

    run(scenario)


def test_a_reconnect_before_expiry_resumes_and_restarts_the_interval() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1", clean_start=False, session_expiry=60)
        await client.subscribe("t/#", 1)
        await client.disconnect()
        pair.clock.advance(50)
        again = await pair.connect("dev1", clean_start=False, session_expiry=60)
        assert again.connack is not None and again.connack.session_present
        pair.clock.advance(600)
        assert "dev1" in pair.broker.sessions  # attached: no expiry
        await again.disconnect()
        pair.clock.advance(60)
        assert "dev1" not in pair.broker.sessions

    run(scenario)


def test_a_session_with_expiry_zero_ends_with_its_connection() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1")
        await client.subscribe("t/#", 1)
        client.drop()
        await pair.settle()
        assert "dev1" not in pair.broker.sessions
        assert pair.broker.directory.subscription_count() == 0

    run(scenario)


def test_a_3_1_1_persistent_session_gets_the_default_expiry() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("old", version=MQTT_3_1_1, clean_start=False)
        await client.disconnect()
        pair.clock.advance(pair.broker.limits.default_session_expiry - 1)
        assert "old" in pair.broker.sessions
        pair.clock.advance(1)
        assert "old" not in pair.broker.sessions

    run(scenario)


# -- QoS 1 and 2 -------------------------------------------------------------------------


def test_qos1_both_ways_and_resend_of_in_flight_on_resume() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=600)
        await sub.subscribe("q/#", 1)
        pub = await pair.connect("pub")
        pid = await pub.publish("q/1", b"one", qos=1)
        assert pub.take(Puback) == [Puback(pid or 0)]
        (first,) = sub.messages()
        assert (first.qos, first.dup, first.payload) == (1, False, b"one")
        sub.drop()  # never acknowledged
        await pair.settle()
        await pub.publish("q/2", b"two", qos=1)  # queued for the offline session
        back = await pair.connect("sub", clean_start=False, session_expiry=600)
        resent, queued = back.messages()
        assert (resent.packet_id, resent.dup, resent.payload) == (first.packet_id, True,
                                                                  b"one")
        assert (queued.dup, queued.payload) == (False, b"two")
        await back.ack(resent, queued)
        assert pair.broker.sessions["sub"].inflight == {}

    run(scenario)


def test_qos2_inbound_flow_and_a_retransmitted_publish() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("q/#", 2)
        pub = await pair.connect("pub")
        pid = await pub.publish("q/1", b"once", qos=2) or 0
        assert pub.take(Pubrec) == [Pubrec(pid)]
        pub.send(Publish("q/1", b"once", 2, dup=True, packet_id=pid))  # PUBREC was lost
        await pair.settle()
        assert pub.take(Pubrec) == [Pubrec(pid)]
        assert len(sub.messages()) == 1  # delivered once
        pub.send(Pubrel(pid))
        await pair.settle()
        assert pub.take(Pubcomp) == [Pubcomp(pid)]
        pub.send(Pubrel(pid))  # unknown now
        await pair.settle()
        assert pub.take(Pubcomp) == [Pubcomp(pid, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)]

    run(scenario)


def test_qos2_outbound_flow_resends_pubrel_on_resume() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=600)
        await sub.subscribe("q/#", 2)
        pub = await pair.connect("pub")
        await pub.publish("q/1", b"x", qos=2)
        (message,) = sub.messages()
        pid = message.packet_id or 0
        sub.send(Pubrec(pid))
        await pair.settle()
        assert sub.take(Pubrel) == [Pubrel(pid)]
        sub.drop()  # before PUBCOMP
        await pair.settle()
        back = await pair.connect("sub", clean_start=False, session_expiry=600)
        assert back.take(Pubrel) == [Pubrel(pid)]
        back.send(Pubcomp(pid))
        await pair.settle()
        assert pair.broker.sessions["sub"].inflight == {}

    run(scenario)


def test_a_queued_message_expires_while_its_session_is_offline() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=600)
        await sub.subscribe("q/#", 1)
        await sub.disconnect()
        pub = await pair.connect("pub")
        await pub.publish("q/short", b"s", qos=1,
                          properties=Properties(message_expiry_interval=10))
        await pub.publish("q/long", b"l", qos=1,
                          properties=Properties(message_expiry_interval=100))
        pair.clock.advance(30)
        back = await pair.connect("sub", clean_start=False, session_expiry=600)
        (message,) = back.messages()
        assert message.topic == "q/long"
        assert message.properties.message_expiry_interval == 70  # what is left of it

    run(scenario)
