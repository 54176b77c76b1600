"""ServerConnection driven by an in-memory client: encode() on the way in, a PacketDecoder
on the way out."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.mqtt import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    ConnectionState,
    Disconnect,
    LocalProtocolError,
    MalformedPacketError,
    Packet,
    PacketDecoder,
    PacketTooLargeError,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    RemoteProtocolError,
    ServerConnection,
    ServerLimits,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    UnsupportedProtocolVersionError,
    client_id_must_be_rejected,
    encode,
)

R = ReasonCode
S = ConnectionState


def _open(version: int = MQTT_5, limits: ServerLimits | None = None,
          **connect: Any) -> tuple[ServerConnection, PacketDecoder, Connack]:
    """A server that has received a CONNECT and sent a successful CONNACK, the client's
    decoder, and that CONNACK."""
    server = ServerConnection(limits or ServerLimits())
    packet = Connect("dev-1", version, **connect)
    assert server.receive_data(encode(packet, version)) == [packet]
    assert server.state.name == "AWAITING_CONNACK"
    client = PacketDecoder(version=version)
    client.feed(server.send(server.connack_for(packet, session_present=False)))
    [connack] = client.drain()
    assert isinstance(connack, Connack)
    assert server.state is S.CONNECTED
    return server, client, connack


def _to_server(server: ServerConnection, version: int, *packets: Packet) -> list[Packet]:
    return server.receive_data(b"".join(encode(p, version) for p in packets))


def _to_client(server: ServerConnection, client: PacketDecoder, packet: Packet) -> list[Packet]:
    client.feed(server.send(packet))
    return client.drain()


def _refused(server: ServerConnection, version: int, packet: Packet,
             reason: ReasonCode) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        _to_server(server, version, packet)
    assert info.value.reason_code is reason
    assert server.state is S.CLOSED
    with pytest.raises(LocalProtocolError):
        server.receive_data(encode(Pingreq(), version))
    with pytest.raises(LocalProtocolError):
        server.send(Pingresp())
    return info.value


# -- CONNECT and CONNACK ordering --------------------------------------------------------

@pytest.mark.parametrize("packet", [
    pytest.param(Pingreq(), id="pingreq"),
    pytest.param(Publish("t", b"x"), id="publish"),
    pytest.param(Subscribe(1, (Subscription("t"),)), id="subscribe"),
    pytest.param(Disconnect(), id="disconnect"),
])
def test_first_packet_must_be_connect(packet: Packet) -> None:
    _refused(ServerConnection(), MQTT_3_1_1, packet, R.PROTOCOL_ERROR)


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_second_connect_is_a_protocol_error(version: int) -> None:
    server, _, _ = _open(version)
    _refused(server, version, Connect("again", version), R.PROTOCOL_ERROR)


def test_second_connect_before_connack_is_a_protocol_error() -> None:
    server = ServerConnection()
    with pytest.raises(RemoteProtocolError) as info:
        _to_server(server, MQTT_5, Connect("a", MQTT_5), Connect("b", MQTT_5))
    assert info.value.reason_code is R.PROTOCOL_ERROR


def test_packets_pipelined_behind_connect_are_returned_in_order() -> None:
    server = ServerConnection()
    connect = Connect("c", MQTT_5)
    packets: list[Packet] = [connect, Subscribe(1, (Subscription("a/#", 1),)),
                             Publish("a/b", b"x", 1, packet_id=2), Pingreq()]
    assert _to_server(server, MQTT_5, *packets) == packets
    assert server.state is S.AWAITING_CONNACK
    with pytest.raises(LocalProtocolError):
        server.send(Suback(1, (R.GRANTED_QOS_1,)))
    server.send(server.connack_for(connect, session_present=False))
    assert server.send(Suback(1, (R.GRANTED_QOS_1,))) == encode(Suback(1, (R.GRANTED_QOS_1,)),
                                                                 MQTT_5)


def test_connect_split_across_reads() -> None:
    server = ServerConnection()
    data = encode(Connect("c", MQTT_3_1_1, username="u", password=b"p"), MQTT_3_1_1)
    assert server.receive_data(data[:5]) == []
    assert server.receive_data(data[5:]) == [Connect("c", MQTT_3_1_1, username="u",
                                                     password=b"p")]
    assert server.protocol_version == MQTT_3_1_1
    assert server.client_id == "c"


def test_nothing_can_be_sent_before_connect() -> None:
    with pytest.raises(LocalProtocolError):
        ServerConnection().send(Connack())


@pytest.mark.parametrize("packet", [
    pytest.param(Pingresp(), id="pingresp"),
    pytest.param(Puback(1), id="puback"),
    pytest.param(Publish("t"), id="publish"),
    pytest.param(Disconnect(), id="disconnect"),
])
def test_first_packet_sent_must_be_connack(packet: Packet) -> None:
    server = ServerConnection()
    _to_server(server, MQTT_5, Connect("c", MQTT_5))
    with pytest.raises(LocalProtocolError):
        server.send(packet)


@pytest.mark.parametrize("packet", [
    pytest.param(Connack(), id="second-connack"),
    pytest.param(Connect("c", MQTT_5), id="connect"),
    pytest.param(Subscribe(1, (Subscription("t"),)), id="subscribe"),
    pytest.param(Unsubscribe(1, ("t",)), id="unsubscribe"),
    pytest.param(Pingreq(), id="pingreq"),
])
def test_server_cannot_send_client_packets(packet: Packet) -> None:
    server, _, _ = _open()
    with pytest.raises(LocalProtocolError):
        server.send(packet)


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_error_connack_closes(version: int) -> None:
    server = ServerConnection()
    connect = Connect("c", version)
    _to_server(server, version, connect)
    connack = server.connack_for(connect, session_present=True, reason_code=R.NOT_AUTHORIZED,
                                 reason_string="denied")
    assert connack.session_present is False
    data = server.send(connack)
    assert server.state is S.CLOSED
    expected = (Connack(False, R.NOT_AUTHORIZED, Properties(reason_string="denied"))
                if version == MQTT_5 else Connack(False, R.NOT_AUTHORIZED))
    decoder = PacketDecoder(version=version)
    decoder.feed(data)
    assert decoder.drain() == [expected]
    with pytest.raises(LocalProtocolError):
        server.send(Pingresp())


# -- packets a client must not send ------------------------------------------------------

@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
@pytest.mark.parametrize("packet", [
    pytest.param(Connack(), id="connack"),
    pytest.param(Suback(1, (R.SUCCESS,)), id="suback"),
    pytest.param(Unsuback(1, (R.SUCCESS,)), id="unsuback"),
    pytest.param(Pingresp(), id="pingresp"),
])
def test_server_only_packet_from_client(version: int, packet: Packet) -> None:
    server, _, _ = _open(version)
    _refused(server, version, packet, R.PROTOCOL_ERROR)


def test_auth_from_3_1_1_client_is_malformed() -> None:
    server, _, _ = _open(MQTT_3_1_1)
    with pytest.raises(MalformedPacketError):
        server.receive_data(b"\xf0\x00")
    assert server.state is S.CLOSED


def test_auth_from_5_client_is_returned() -> None:
    server, _, _ = _open(MQTT_5)
    auth = Auth(R.RE_AUTHENTICATE, Properties(authentication_method="m"))
    assert _to_server(server, MQTT_5, auth) == [auth]


# -- protocol versions -------------------------------------------------------------------

@pytest.mark.parametrize(("level", "expected"), [
    pytest.param(6, b"\x20\x02\x00\x01", id="newer"),
    pytest.param(2, b"\x20\x02\x00\x01", id="older"),
])
def test_unsupported_protocol_version(level: int, expected: bytes) -> None:
    server = ServerConnection()
    data = b"\x10\x0d\x00\x04MQTT" + bytes([level]) + b"\x02\x00\x3c\x00\x01c"
    with pytest.raises(UnsupportedProtocolVersionError) as info:
        server.receive_data(data)
    assert info.value.protocol_version == level
    assert info.value.reason_code is R.UNSUPPORTED_PROTOCOL_VERSION
    assert server.state is S.CLOSED
    assert server.error_response(info.value) == expected


def test_mqtt_3_1_client() -> None:
    server, client, connack = _open(MQTT_3_1, keep_alive=10)
    assert server.protocol_version == MQTT_3_1
    assert connack == Connack()
    assert _to_server(server, MQTT_3_1, Publish("a", b"b", 1, packet_id=1)) == [
        Publish("a", b"b", 1, packet_id=1)]
    assert _to_client(server, client, Puback(1)) == [Puback(1)]


# -- receive maximum ---------------------------------------------------------------------

def test_receive_maximum_exceeded_and_released() -> None:
    server, _, connack = _open(limits=ServerLimits(receive_maximum=2))
    assert connack.properties.receive_maximum == 2
    _to_server(server, MQTT_5, Publish("t", b"1", 1, packet_id=1),
               Publish("t", b"2", 2, packet_id=2), Publish("t", b"3", 0))
    server.send(Puback(1))
    _to_server(server, MQTT_5, Publish("t", b"4", 1, packet_id=3))
    # QoS 2 holds its slot through PUBREC and PUBREL until the PUBCOMP.
    server.send(Pubrec(2))
    _to_server(server, MQTT_5, Pubrel(2))
    _refused(server, MQTT_5, Publish("t", b"5", 1, packet_id=4), R.RECEIVE_MAXIMUM_EXCEEDED)


def test_receive_maximum_released_by_pubcomp_and_error_pubrec() -> None:
    server, _, _ = _open(limits=ServerLimits(receive_maximum=1))
    _to_server(server, MQTT_5, Publish("t", b"", 2, packet_id=7))
    server.send(Pubrec(7))
    _to_server(server, MQTT_5, Pubrel(7))
    server.send(Pubcomp(7))
    _to_server(server, MQTT_5, Publish("t", b"", 2, packet_id=8))
    server.send(Pubrec(8, R.NOT_AUTHORIZED))
    _to_server(server, MQTT_5, Publish("t", b"", 1, packet_id=9))
    _refused(server, MQTT_5, Publish("t", b"", 1, packet_id=10), R.RECEIVE_MAXIMUM_EXCEEDED)


def test_resent_publish_does_not_take_a_second_slot() -> None:
    server, _, _ = _open(limits=ServerLimits(receive_maximum=1))
    publish = Publish("t", b"", 2, packet_id=5)
    _to_server(server, MQTT_5, publish, Publish("t", b"", 2, dup=True, packet_id=5))
    assert server.state is S.CONNECTED


def test_receive_maximum_not_enforced_for_3_1_1() -> None:
    # 3.1.1 clients are never told the limit, so they cannot be held to it.
    server, _, _ = _open(MQTT_3_1_1, limits=ServerLimits(receive_maximum=1))
    packets = [Publish("t", b"", 1, packet_id=i) for i in range(1, 5)]
    assert _to_server(server, MQTT_3_1_1, *packets) == packets


def test_client_receive_maximum_recorded() -> None:
    server, _, _ = _open(properties=Properties(receive_maximum=5))
    assert server.client_receive_maximum == 5
    server, _, _ = _open()
    assert server.client_receive_maximum == 65535


# -- topic aliases -----------------------------------------------------------------------

def test_topic_alias_set_then_used() -> None:
    server, _, connack = _open(limits=ServerLimits(topic_alias_maximum=4))
    assert connack.properties.topic_alias_maximum == 4
    alias = Properties(topic_alias=4, user_properties=(("k", "v"),))
    received = _to_server(server, MQTT_5, Publish("a/b", b"1", properties=alias),
                          Publish("", b"2", properties=alias),
                          Publish("", b"3", properties=Properties(topic_alias=4)))
    assert received == [
        Publish("a/b", b"1", properties=Properties(user_properties=(("k", "v"),))),
        Publish("a/b", b"2", properties=Properties(user_properties=(("k", "v"),))),
        Publish("a/b", b"3"),
    ]
    assert isinstance(received[2], Publish)
    assert received[2].properties is NO_PROPERTIES
    # Re-mapping an alias replaces the topic.
    assert _to_server(server, MQTT_5, Publish("c", properties=Properties(topic_alias=4)),
                      Publish("", b"x", properties=Properties(topic_alias=4))) == [
        Publish("c"), Publish("c", b"x")]


def test_topic_alias_above_maximum() -> None:
    server, _, _ = _open(limits=ServerLimits(topic_alias_maximum=4))
    _refused(server, MQTT_5, Publish("a", properties=Properties(topic_alias=5)),
             R.TOPIC_ALIAS_INVALID)


def test_topic_alias_when_none_accepted() -> None:
    server, _, connack = _open(limits=ServerLimits(topic_alias_maximum=0))
    assert connack.properties.topic_alias_maximum is None
    _refused(server, MQTT_5, Publish("a", properties=Properties(topic_alias=1)),
             R.TOPIC_ALIAS_INVALID)


def test_topic_alias_zero() -> None:
    server, _, _ = _open()
    with pytest.raises(RemoteProtocolError) as info:
        # encode() refuses alias 0, so the bytes are written out: topic "a", alias 0.
        server.receive_data(bytes.fromhex("30 07 0001 61 03 23 0000".replace(" ", "")))
    assert info.value.reason_code is R.TOPIC_ALIAS_INVALID


def test_unknown_topic_alias() -> None:
    server, _, _ = _open()
    _refused(server, MQTT_5, Publish("", properties=Properties(topic_alias=2)),
             R.PROTOCOL_ERROR)


def test_subscription_identifier_in_client_publish() -> None:
    server, _, _ = _open()
    _refused(server, MQTT_5, Publish("a", properties=Properties(subscription_identifiers=(1,))),
             R.PROTOCOL_ERROR)


def test_topic_alias_never_sent() -> None:
    server, _, _ = _open()
    with pytest.raises(LocalProtocolError):
        server.send(Publish("a", properties=Properties(topic_alias=1)))


# -- QoS and retain ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_qos_not_supported(version: int) -> None:
    server, _, connack = _open(version, limits=ServerLimits(maximum_qos=1))
    if version == MQTT_5:
        assert connack.properties.maximum_qos == 1
    assert len(_to_server(server, version, Publish("t", b"", 1, packet_id=1))) == 1
    _refused(server, version, Publish("t", b"", 2, packet_id=2), R.QOS_NOT_SUPPORTED)


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_retain_not_supported(version: int) -> None:
    server, _, connack = _open(version, limits=ServerLimits(retain_available=False))
    if version == MQTT_5:
        assert connack.properties.retain_available == 0
    _refused(server, version, Publish("t", b"", retain=True), R.RETAIN_NOT_SUPPORTED)


@pytest.mark.parametrize(("limits", "subscribe", "reason"), [
    pytest.param(ServerLimits(wildcard_subscription_available=False),
                 Subscribe(1, (Subscription("a"), Subscription("a/+"))),
                 R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED, id="wildcard"),
    pytest.param(ServerLimits(shared_subscription_available=False),
                 Subscribe(1, (Subscription("$share/g/a"),)),
                 R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, id="shared"),
    pytest.param(ServerLimits(subscription_identifier_available=False),
                 Subscribe(1, (Subscription("a"),), Properties(subscription_identifiers=(3,))),
                 R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, id="subscription-identifier"),
])
def test_unavailable_subscription_features(limits: ServerLimits, subscribe: Subscribe,
                                           reason: ReasonCode) -> None:
    server, _, _ = _open(limits=limits)
    _refused(server, MQTT_5, subscribe, reason)


def test_subscription_features_allowed_by_default() -> None:
    server, _, _ = _open()
    subscribe = Subscribe(1, (Subscription("a/+"), Subscription("$share/g/#")),
                          Properties(subscription_identifiers=(3,)))
    assert _to_server(server, MQTT_5, subscribe) == [subscribe]


# -- maximum packet size -----------------------------------------------------------------

def test_inbound_packet_too_large() -> None:
    server, _, connack = _open(limits=ServerLimits(max_packet_size=64))
    assert connack.properties.maximum_packet_size == 64
    _to_server(server, MQTT_5, Publish("t", b"x" * 58))  # 64 bytes exactly
    with pytest.raises(PacketTooLargeError) as info:
        server.receive_data(encode(Publish("t", b"x" * 59), MQTT_5)[:2])
    assert info.value.reason_code is R.PACKET_TOO_LARGE
    assert server.state is S.CLOSED
    assert server.error_response(info.value) == encode(Disconnect(R.PACKET_TOO_LARGE), MQTT_5)


def test_outbound_publish_above_client_maximum_is_dropped() -> None:
    server, client, _ = _open(properties=Properties(maximum_packet_size=32))
    assert server.client_maximum_packet_size == 32
    assert server.send(Publish("t", b"x" * 100, 1, packet_id=1)) == b""
    assert _to_client(server, client, Publish("t", b"small", 1, packet_id=1)) == [
        Publish("t", b"small", 1, packet_id=1)]


def test_outbound_reply_above_client_maximum_loses_reason_string() -> None:
    server, client, _ = _open(properties=Properties(maximum_packet_size=16))
    reply = Puback(1, R.NOT_AUTHORIZED, Properties(reason_string="x" * 50))
    assert _to_client(server, client, reply) == [Puback(1, R.NOT_AUTHORIZED)]
    too_big = Suback(2, (R.SUCCESS,) * 20)
    with pytest.raises(LocalProtocolError):
        server.send(too_big)


def test_request_problem_information_zero() -> None:
    server, client, _ = _open(properties=Properties(request_problem_information=0))
    info = Properties(reason_string="why", user_properties=(("a", "b"),))
    assert _to_client(server, client, Puback(1, R.NOT_AUTHORIZED, info)) == [
        Puback(1, R.NOT_AUTHORIZED)]
    user = Properties(user_properties=(("a", "b"),))
    assert _to_client(server, client, Publish("t", properties=user)) == [
        Publish("t", properties=user)]
    assert _to_client(server, client, Disconnect(R.ADMINISTRATIVE_ACTION, info)) == [
        Disconnect(R.ADMINISTRATIVE_ACTION, info)]


# -- keep-alive and session expiry -------------------------------------------------------

@pytest.mark.parametrize(("requested", "low", "high", "effective"), [
    pytest.param(60, 0, 0, 60, id="no-clamp"),
    pytest.param(0, 0, 0, 0, id="zero-no-clamp"),
    pytest.param(600, 0, 120, 120, id="above-max"),
    pytest.param(0, 0, 120, 120, id="zero-means-infinite"),
    pytest.param(10, 30, 0, 30, id="below-min"),
    pytest.param(0, 30, 0, 0, id="zero-untouched-by-min"),
    pytest.param(60, 30, 120, 60, id="inside"),
])
def test_keep_alive_clamp(requested: int, low: int, high: int, effective: int) -> None:
    limits = ServerLimits(min_keep_alive=low, max_keep_alive=high)
    server, _, connack = _open(MQTT_5, limits, keep_alive=requested)
    assert server.keep_alive == effective
    expected = None if effective == requested else effective
    assert connack.properties.server_keep_alive == expected
    server, _, connack = _open(MQTT_3_1_1, limits, keep_alive=requested)
    assert server.keep_alive == effective
    assert connack == Connack()


def test_session_expiry_clamped_and_announced() -> None:
    limits = ServerLimits(max_session_expiry=3600)
    server, _, connack = _open(limits=limits,
                               properties=Properties(session_expiry_interval=0xFFFFFFFF))
    assert server.session_expiry_interval == 3600
    assert connack.properties.session_expiry_interval == 3600
    server, _, connack = _open(limits=limits, properties=Properties(session_expiry_interval=60))
    assert server.session_expiry_interval == 60
    assert connack.properties.session_expiry_interval is None


@pytest.mark.parametrize(("clean", "limit", "expected"), [
    pytest.param(True, 0xFFFFFFFF, 0, id="clean"),
    pytest.param(False, 0xFFFFFFFF, 0xFFFFFFFF, id="persistent"),
    pytest.param(False, 600, 600, id="persistent-clamped"),
])
def test_session_expiry_for_3_1_1(clean: bool, limit: int, expected: int) -> None:
    server, _, _ = _open(MQTT_3_1_1, ServerLimits(max_session_expiry=limit), clean_start=clean)
    assert server.session_expiry_interval == expected


# -- CONNACK contents --------------------------------------------------------------------

def test_connack_announces_limits() -> None:
    limits = ServerLimits(max_packet_size=1000, receive_maximum=10, topic_alias_maximum=3,
                          maximum_qos=0, retain_available=False,
                          wildcard_subscription_available=False,
                          shared_subscription_available=False,
                          subscription_identifier_available=False)
    server = ServerConnection(limits)
    connect = Connect("", MQTT_5)
    _to_server(server, MQTT_5, connect)
    connack = server.connack_for(connect, session_present=True, assigned_client_id="auto-1",
                                 reason_string="hi")
    assert connack == Connack(True, R.SUCCESS, Properties(
        receive_maximum=10, maximum_packet_size=1000, topic_alias_maximum=3, maximum_qos=0,
        retain_available=0, wildcard_subscription_available=0,
        shared_subscription_available=0, subscription_identifier_available=0,
        assigned_client_identifier="auto-1", reason_string="hi"))
    assert server.client_id == "auto-1"
    client = PacketDecoder(version=MQTT_5)
    client.feed(server.send(connack))
    assert client.drain() == [connack]


def test_connack_defaults() -> None:
    _, _, connack = _open()
    assert connack == Connack(False, R.SUCCESS, Properties(
        receive_maximum=100, maximum_packet_size=149_504, topic_alias_maximum=8))


def test_connack_3_1_1_is_plain() -> None:
    server = ServerConnection(ServerLimits(maximum_qos=1, max_keep_alive=5))
    connect = Connect("", MQTT_3_1_1)
    _to_server(server, MQTT_3_1_1, connect)
    connack = server.connack_for(connect, session_present=True, assigned_client_id="x")
    assert connack == Connack(True)
    assert server.send(connack) == b"\x20\x02\x01\x00"


@pytest.mark.parametrize(("connect", "rejected"), [
    pytest.param(Connect("", MQTT_3_1_1, clean_start=False), True, id="3.1.1-empty-persistent"),
    pytest.param(Connect("", MQTT_3_1_1, clean_start=True), False, id="3.1.1-empty-clean"),
    pytest.param(Connect("x", MQTT_3_1_1, clean_start=False), False, id="3.1.1-named"),
    pytest.param(Connect("", MQTT_5, clean_start=False), False, id="5-empty-persistent"),
    pytest.param(Connect("", MQTT_3_1), True, id="3.1-empty"),
    pytest.param(Connect("x" * 24, MQTT_3_1), True, id="3.1-too-long"),
    pytest.param(Connect("x" * 23, MQTT_3_1), False, id="3.1-23-chars"),
])
def test_client_id_must_be_rejected(connect: Connect, rejected: bool) -> None:
    assert client_id_must_be_rejected(connect) is rejected


# -- DISCONNECT --------------------------------------------------------------------------

def test_disconnect_not_sent_to_3_1_1_client() -> None:
    server, _, _ = _open(MQTT_3_1_1)
    assert server.send(Disconnect(R.SERVER_SHUTTING_DOWN)) == b""
    assert server.state is S.CLOSED
    with pytest.raises(LocalProtocolError):
        server.send(Pingresp())


def test_disconnect_sent_to_5_client() -> None:
    server, client, _ = _open(MQTT_5)
    assert _to_client(server, client, Disconnect(R.SERVER_SHUTTING_DOWN)) == [
        Disconnect(R.SERVER_SHUTTING_DOWN)]
    assert server.state is S.CLOSED


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_client_disconnect_ignores_the_rest_but_lets_replies_out(version: int) -> None:
    server, client, _ = _open(version)
    received = _to_server(server, version, Pingreq(), Disconnect(), Pingreq())
    assert received == [Pingreq(), Disconnect()]
    assert server.state is S.CLIENT_DISCONNECTED
    assert _to_server(server, version, Pingreq()) == []  # after goodbye: ignored
    # The PINGREQ that came before the DISCONNECT still gets its answer ...
    assert _to_client(server, client, Pingresp()) == [Pingresp()]
    # ... but nothing new goes out.
    with pytest.raises(LocalProtocolError):
        server.send(Publish("t", b"x"))
    with pytest.raises(LocalProtocolError):
        server.send(Disconnect())


@pytest.mark.parametrize("reply", [
    pytest.param(Puback(1), id="puback"),
    pytest.param(Pubrec(1), id="pubrec"),
    pytest.param(Pubrel(1), id="pubrel"),
    pytest.param(Pubcomp(1), id="pubcomp"),
    pytest.param(Suback(1, (R.GRANTED_QOS_1,)), id="suback"),
    pytest.param(Unsuback(1, (R.SUCCESS,)), id="unsuback"),
])
@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_every_reply_may_follow_the_clients_disconnect(version: int, reply: Packet) -> None:
    server, client, _ = _open(version)
    _to_server(server, version, Disconnect())
    if version != MQTT_5 and isinstance(reply, Unsuback):
        reply = Unsuback(1)
    assert _to_client(server, client, reply) == [reply]


def test_a_connect_and_disconnect_in_one_read_still_gets_its_connack() -> None:
    server = ServerConnection()
    packet = Connect("dev-1", MQTT_5)
    received = server.receive_data(encode(packet, MQTT_5) + encode(Disconnect(), MQTT_5))
    assert received == [packet, Disconnect()]
    assert server.state is S.CLIENT_DISCONNECTED
    with pytest.raises(LocalProtocolError):  # nothing but the CONNACK before the CONNACK
        server.send(Pingresp())
    client = PacketDecoder(version=MQTT_5)
    assert _to_client(server, client, server.connack_for(packet, session_present=False))[0] \
        .reason_code is R.SUCCESS
    with pytest.raises(LocalProtocolError):  # one CONNACK only
        server.send(server.connack_for(packet, session_present=False))


# -- error responses ---------------------------------------------------------------------

def test_error_response_before_connack_is_a_connack() -> None:
    server = ServerConnection()
    with pytest.raises(RemoteProtocolError) as info:
        _to_server(server, MQTT_5, Connect("c", MQTT_5), Connack())
    assert server.error_response(info.value) == encode(Connack(reason_code=R.PROTOCOL_ERROR),
                                                       MQTT_5)


def test_error_response_maps_codes_the_packet_cannot_carry() -> None:
    server = ServerConnection()
    _to_server(server, MQTT_5, Connect("c", MQTT_5))
    error = RemoteProtocolError("x", R.RECEIVE_MAXIMUM_EXCEEDED)
    assert server.error_response(error) == encode(Connack(reason_code=R.UNSPECIFIED_ERROR),
                                                  MQTT_5)


def test_error_response_after_connack_is_a_disconnect() -> None:
    server, _, _ = _open(limits=ServerLimits(receive_maximum=1))
    with pytest.raises(RemoteProtocolError) as info:
        _to_server(server, MQTT_5, Publish("t", b"", 1, packet_id=1),
                   Publish("t", b"", 1, packet_id=2))
    assert server.error_response(info.value) == bytes([0xE0, 1, R.RECEIVE_MAXIMUM_EXCEEDED])


def test_error_response_for_3_1_1_is_nothing() -> None:
    server, _, _ = _open(MQTT_3_1_1)
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(b"\x00\x00")
    assert server.error_response(info.value) == b""


def test_malformed_connect_gets_no_response() -> None:
    server = ServerConnection()
    with pytest.raises(MalformedPacketError) as info:
        server.receive_data(b"\x10\x02\x00\x00")
    assert server.error_response(info.value) == b""


# -- the rest of a normal session --------------------------------------------------------

def test_full_exchange() -> None:
    server, client, _ = _open(MQTT_5)
    subscribe = Subscribe(1, (Subscription("a/#", 2),))
    assert _to_server(server, MQTT_5, subscribe) == [subscribe]
    assert _to_client(server, client, Suback(1, (R.GRANTED_QOS_2,))) == [
        Suback(1, (R.GRANTED_QOS_2,))]
    assert _to_client(server, client, Publish("a/b", b"m", 2, packet_id=1)) == [
        Publish("a/b", b"m", 2, packet_id=1)]
    assert _to_server(server, MQTT_5, Pubrec(1)) == [Pubrec(1)]
    assert _to_client(server, client, Pubrel(1)) == [Pubrel(1)]
    assert _to_server(server, MQTT_5, Pubcomp(1)) == [Pubcomp(1)]
    assert _to_server(server, MQTT_5, Unsubscribe(2, ("a/#",))) == [Unsubscribe(2, ("a/#",))]
    assert _to_client(server, client, Unsuback(2, (R.SUCCESS,))) == [Unsuback(2, (R.SUCCESS,))]
    assert _to_server(server, MQTT_5, Pingreq()) == [Pingreq()]
    assert _to_client(server, client, Pingresp()) == [Pingresp()]


@pytest.mark.parametrize("kwargs", [
    pytest.param({"max_packet_size": 0}, id="max-packet-size-0"),
    pytest.param({"receive_maximum": 0}, id="receive-maximum-0"),
    pytest.param({"receive_maximum": 65536}, id="receive-maximum-65536"),
    pytest.param({"topic_alias_maximum": -1}, id="topic-alias-maximum-negative"),
    pytest.param({"maximum_qos": 3}, id="maximum-qos-3"),
    pytest.param({"min_keep_alive": 100, "max_keep_alive": 10}, id="keep-alive-inverted"),
    pytest.param({"max_keep_alive": 65536}, id="keep-alive-too-large"),
    pytest.param({"max_session_expiry": -1}, id="session-expiry-negative"),
])
def test_server_limits_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ServerLimits(**kwargs)  # type: ignore[arg-type]
