"""paho-mqtt (3.1.1 and 5.0) through Bastion over mutual TLS: QoS 0/1/2, retained, will,
persistent sessions, takeover, shared subscriptions."""

from __future__ import annotations

import pytest

from support.clients import V5, V311, Client, wait_for

VERSIONS = [pytest.param(V311, id="mqtt311"), pytest.param(V5, id="mqtt5")]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_subscribe_each_qos(bastion, make_device, version, qos):
    sub = Client(make_device(), bastion.port, version=version).connect()
    pub = Client(make_device(), bastion.port, version=version).connect()
    granted = sub.subscribe("plant/line1/+", qos)
    assert [getattr(g, "value", g) for g in granted] == [qos]
    for i in range(5):
        pub.publish("plant/line1/temp", f"reading-{i}".encode(), qos=qos)
    got = sub.expect(5)
    assert [m.payload for m in got] == [f"reading-{i}".encode() for i in range(5)]
    assert {m.qos for m in got} == {qos}
    assert {m.topic for m in got} == {"plant/line1/temp"}
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
def test_qos_is_downgraded_to_the_subscription(bastion, make_device, version):
    sub = Client(make_device(), bastion.port, version=version).connect()
    pub = Client(make_device(), bastion.port, version=version).connect()
    sub.subscribe("down/#", 0)
    pub.publish("down/grade", b"x", qos=2)
    (message,) = sub.expect(1)
    assert message.qos == 0
    sub.disconnect()
    pub.disconnect()


def test_mixed_versions_talk_to_each_other(bastion, make_device):
    sub5 = Client(make_device(), bastion.port, version=V5).connect()
    sub3 = Client(make_device(), bastion.port, version=V311).connect()
    pub = Client(make_device(), bastion.port, version=V311).connect()
    sub5.subscribe("mix/#", 1)
    sub3.subscribe("mix/#", 1)
    pub.publish("mix/a", b"hello", qos=1)
    assert sub5.expect(1)[0].payload == b"hello"
    assert sub3.expect(1)[0].payload == b"hello"
    for c in (sub5, sub3, pub):
        c.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_message_delivered_on_subscribe_and_cleared(bastion, make_device, version):
    pub = Client(make_device(), bastion.port, version=version).connect()
    pub.publish("status/door", b"closed", qos=1, retain=True)
    late = Client(make_device(), bastion.port, version=version).connect()
    late.subscribe("status/door", 1)
    (message,) = late.expect(1)
    assert (message.payload, message.retain) == (b"closed", True)
    # A live delivery to an existing subscriber has the retain flag cleared.
    pub.publish("status/door", b"open", qos=1, retain=True)
    (live,) = late.expect(1)
    assert (live.payload, live.retain) == (b"open", False)
    # An empty retained payload deletes it.
    pub.publish("status/door", b"", qos=1, retain=True)
    late.expect(1)
    third = Client(make_device(), bastion.port, version=version).connect()
    third.subscribe("status/door", 1)
    pub.publish("status/sync", b"s", qos=1)  # sync point: nothing retained came before it
    third.subscribe("status/sync", 1)
    pub.publish("status/sync", b"s", qos=1)
    (sync,) = third.expect(1)
    assert sync.topic == "status/sync"
    for c in (pub, late, third):
        c.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
def test_will_published_on_abnormal_disconnect_only(bastion, make_device, version):
    watcher = Client(make_device(), bastion.port, version=version).connect()
    watcher.subscribe("wills/#", 1)
    dying = Client(make_device(), bastion.port, version=version,
                   will=("wills/dying", b"gone", 1, False)).connect()
    polite = Client(make_device(), bastion.port, version=version,
                    will=("wills/polite", b"should not appear", 1, False)).connect()
    polite.disconnect()
    dying.kill()
    (message,) = watcher.expect(1)
    assert (message.topic, message.payload) == ("wills/dying", b"gone")
    watcher.expect_none()
    watcher.disconnect()


def test_mqtt5_will_delay_cancelled_by_reconnect(bastion, make_device):
    dev = make_device()
    watcher = Client(make_device(), bastion.port, version=V5).connect()
    watcher.subscribe("delayed/#", 1)
    first = Client(dev, bastion.port, version=V5, client_id="will-delay-1", clean=False,
                   session_expiry=60, will=("delayed/w", b"late", 1, False),
                   will_delay=2).connect()
    first.kill()
    again = Client(dev, bastion.port, version=V5, client_id="will-delay-1", clean=False,
                   session_expiry=60).connect()
    assert again.session_present is True
    # The will was due after 2 s; the reconnect within the delay cancels it.
    watcher.expect_none(timeout=2.5)
    again.disconnect()
    watcher.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
def test_persistent_session_gets_messages_queued_while_offline(bastion, make_device, version):
    dev = make_device()
    cid = f"persistent-{version}"
    sub = Client(dev, bastion.port, version=version, client_id=cid, clean=False,
                 session_expiry=300).connect()
    sub.subscribe("queue/#", 1)
    sub.disconnect()
    pub = Client(make_device(), bastion.port, version=version).connect()
    for i in range(3):
        pub.publish(f"queue/{i}", f"m{i}".encode(), qos=1)
    back = Client(dev, bastion.port, version=version, client_id=cid, clean=False,
                  session_expiry=300)
    back.connect()
    assert back.session_present is True
    got = back.expect(3)
    assert sorted(m.payload for m in got) == [b"m0", b"m1", b"m2"]
    back.disconnect()
    # A clean start discards the session.
    fresh = Client(dev, bastion.port, version=version, client_id=cid, clean=True).connect()
    assert fresh.session_present is False
    fresh.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
def test_duplicate_client_id_takeover_new_connection_wins(bastion, make_device, version):
    dev = make_device()
    first = Client(dev, bastion.port, version=version, client_id="twin").connect()
    second = Client(dev, bastion.port, version=version, client_id="twin").connect()
    assert first.disconnected.wait(5), "the first connection was not closed"
    if version == V5:
        assert first.disconnect_reason.value == 0x8E  # session taken over
    second.subscribe("twin/t", 1)
    second.publish("twin/t", b"still here", qos=1)
    assert second.expect(1)[0].payload == b"still here"
    second.disconnect()


def test_shared_subscription_splits_messages(bastion, make_device):
    workers = [Client(make_device(), bastion.port, version=V5).connect() for _ in range(2)]
    for w in workers:
        w.subscribe("$share/workers/jobs/#", 1)
    pub = Client(make_device(), bastion.port, version=V5).connect()
    for i in range(10):
        pub.publish(f"jobs/{i}", b"j", qos=1)
    wait_for(lambda: sum(w.messages.qsize() for w in workers) == 10, 5, "10 deliveries")
    assert all(w.messages.qsize() > 0 for w in workers), "round robin used one worker only"
    for c in (*workers, pub):
        c.disconnect()


def test_sdk_style_username_is_tolerated(bastion, make_device):
    client = Client(make_device(), bastion.port, username="?SDK=Python&Version=1.20.0").connect()
    client.subscribe("sdk/t", 1)
    client.publish("sdk/t", b"ok", qos=1)
    assert client.expect(1)[0].payload == b"ok"
    client.disconnect()


def test_alpn_x_amzn_mqtt_ca_is_accepted(bastion, make_device):
    client = Client(make_device(), bastion.port, alpn=["x-amzn-mqtt-ca"]).connect()
    assert client.paho.socket().selected_alpn_protocol() == "x-amzn-mqtt-ca"
    client.disconnect()


def test_mqtt5_no_local_and_subscription_identifier(bastion, make_device):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = Client(make_device(), bastion.port, version=V5).connect()
    client.subscribe("loop/back", 1, noLocal=True)
    other = Client(make_device(), bastion.port, version=V5).connect()
    props = Properties(PacketTypes.SUBSCRIBE)
    props.SubscriptionIdentifier = 42
    _, mid = other.paho.subscribe("loop/#", 1, properties=props)
    wait_for(lambda: mid in other.subacks, 5, "SUBACK")
    client.publish("loop/back", b"me", qos=1)
    (message,) = other.expect(1)
    assert message.properties.SubscriptionIdentifier == [42]
    client.expect_none()
    client.disconnect()
    other.disconnect()


def test_mqtt5_session_expires_after_its_interval(bastion, make_device):
    dev = make_device()
    first = Client(dev, bastion.port, version=V5, client_id="short-lived", clean=False,
                   session_expiry=1).connect()
    first.subscribe("expiring/#", 1)
    first.disconnect()
    wait_for(lambda: bastion.call(lambda: "short-lived" not in bastion.app.broker.sessions),
             5, "session expiry")
    again = Client(dev, bastion.port, version=V5, client_id="short-lived", clean=False,
                   session_expiry=1).connect()
    assert again.session_present is False
    again.disconnect()


def test_mqtt5_will_delay_publishes_after_the_delay(bastion, make_device):
    import time

    watcher = Client(make_device(), bastion.port, version=V5).connect()
    watcher.subscribe("delayed2/#", 1)
    dying = Client(make_device(), bastion.port, version=V5, clean=False, session_expiry=60,
                   will=("delayed2/w", b"late", 1, False), will_delay=1).connect()
    dying.kill()
    killed = time.monotonic()
    (message,) = watcher.expect(1, timeout=5)
    assert message.payload == b"late"
    assert time.monotonic() - killed >= 0.9
    watcher.disconnect()


def test_mqtt5_message_larger_than_client_maximum_packet_size_is_not_sent(bastion, make_device):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    small = Client(make_device(), bastion.port, version=V5)
    props = Properties(PacketTypes.CONNECT)
    props.MaximumPacketSize = 200
    small.paho.connect("127.0.0.1", bastion.port, properties=props)
    small.paho.loop_start()
    assert small.connected.wait(5)
    small.subscribe("sized/#", 0)
    pub = Client(make_device(), bastion.port, version=V5).connect()
    pub.publish("sized/big", b"x" * 500, qos=1)
    pub.publish("sized/small", b"y", qos=1)
    (message,) = small.expect(1)
    assert message.topic == "sized/small"
    small.expect_none()
    small.disconnect()
    pub.disconnect()
