"""Property-based codec tests: round trips, chunking invariance, and arbitrary bytes."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

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
    MQTTError,
    Packet,
    PacketDecoder,
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
    RetainHandling,
    ServerConnection,
    ServerLimits,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    decode,
    encode,
)

R = ReasonCode

# -- value strategies --------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
topic_names = st.text(st.characters(codec="utf-8", exclude_characters="\x00+#"),
                      min_size=1, max_size=12)
topic_filters = st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                        min_size=1, max_size=12)
binary = st.binary(max_size=16)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
flag = st.integers(0, 1)
packet_ids = st.integers(1, 0xFFFF)
subscription_ids = st.integers(1, 268_435_455)
user_properties = st.lists(st.tuples(text, text), max_size=3).map(tuple)

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "payload_format_indicator": flag,
    "message_expiry_interval": u32,
    "content_type": text,
    "response_topic": topic_names,
    "correlation_data": binary,
    "session_expiry_interval": u32,
    "assigned_client_identifier": text,
    "server_keep_alive": u16,
    "authentication_method": text,
    "request_problem_information": flag,
    "will_delay_interval": u32,
    "request_response_information": flag,
    "response_information": text,
    "server_reference": text,
    "reason_string": text,
    "receive_maximum": st.integers(1, 0xFFFF),
    "topic_alias_maximum": u16,
    "topic_alias": st.integers(1, 0xFFFF),
    "maximum_qos": flag,
    "retain_available": flag,
    "maximum_packet_size": st.integers(1, 0xFFFFFFFF),
    "wildcard_subscription_available": flag,
    "subscription_identifier_available": flag,
    "shared_subscription_available": flag,
    "user_properties": user_properties,
}

_MESSAGE = ["payload_format_indicator", "message_expiry_interval", "content_type",
            "response_topic", "correlation_data"]
ALLOWED: dict[str, list[str]] = {
    "CONNECT": ["session_expiry_interval", "authentication_method",
                "request_problem_information", "request_response_information",
                "receive_maximum", "topic_alias_maximum", "maximum_packet_size"],
    "WILL": [*_MESSAGE, "will_delay_interval"],
    "CONNACK": ["session_expiry_interval", "assigned_client_identifier", "server_keep_alive",
                "authentication_method", "response_information", "server_reference",
                "reason_string", "receive_maximum", "topic_alias_maximum", "maximum_qos",
                "retain_available", "maximum_packet_size", "wildcard_subscription_available",
                "subscription_identifier_available", "shared_subscription_available"],
    "PUBLISH": [*_MESSAGE, "topic_alias"],
    "ACK": ["reason_string"],
    "SUBSCRIBE": [],
    "UNSUBSCRIBE": [],
    "DISCONNECT": ["session_expiry_interval", "server_reference", "reason_string"],
    "AUTH": ["authentication_method", "reason_string"],
}


@st.composite
def properties(draw: st.DrawFn, context: str) -> Properties:
    optional = {name: VALUES[name] for name in [*ALLOWED[context], "user_properties"]}
    values = draw(st.fixed_dictionaries({}, optional=optional))
    if context == "PUBLISH":
        values["subscription_identifiers"] = tuple(draw(st.lists(subscription_ids, max_size=3)))
    elif context == "SUBSCRIBE":
        values["subscription_identifiers"] = tuple(draw(st.lists(subscription_ids, max_size=1)))
    if "authentication_method" in values and draw(st.booleans()):
        values["authentication_data"] = draw(binary)
    return Properties(**values)


def _codes(*codes: ReasonCode) -> st.SearchStrategy[ReasonCode]:
    return st.sampled_from(codes)


ACK_CODES = _codes(R.SUCCESS, R.NO_MATCHING_SUBSCRIBERS, R.UNSPECIFIED_ERROR,
                   R.IMPLEMENTATION_SPECIFIC_ERROR, R.NOT_AUTHORIZED, R.TOPIC_NAME_INVALID,
                   R.PACKET_IDENTIFIER_IN_USE, R.QUOTA_EXCEEDED, R.PAYLOAD_FORMAT_INVALID)
PUBREL_CODES = _codes(R.SUCCESS, R.PACKET_IDENTIFIER_NOT_FOUND)
SUBACK_CODES = _codes(R.SUCCESS, R.GRANTED_QOS_1, R.GRANTED_QOS_2, R.UNSPECIFIED_ERROR,
                      R.NOT_AUTHORIZED, R.TOPIC_FILTER_INVALID, R.QUOTA_EXCEEDED,
                      R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED)
UNSUBACK_CODES = _codes(R.SUCCESS, R.NO_SUBSCRIPTION_EXISTED, R.UNSPECIFIED_ERROR,
                        R.NOT_AUTHORIZED, R.TOPIC_FILTER_INVALID)
CONNACK_CODES_V3 = _codes(R.SUCCESS, R.UNSUPPORTED_PROTOCOL_VERSION,
                          R.CLIENT_IDENTIFIER_NOT_VALID, R.SERVER_UNAVAILABLE,
                          R.BAD_USER_NAME_OR_PASSWORD, R.NOT_AUTHORIZED)
CONNACK_CODES_V5 = _codes(R.SUCCESS, R.UNSPECIFIED_ERROR, R.MALFORMED_PACKET, R.BANNED,
                          R.NOT_AUTHORIZED, R.SERVER_BUSY, R.USE_ANOTHER_SERVER)
DISCONNECT_CODES = _codes(R.SUCCESS, R.DISCONNECT_WITH_WILL_MESSAGE, R.PROTOCOL_ERROR,
                          R.SESSION_TAKEN_OVER, R.KEEP_ALIVE_TIMEOUT, R.TOPIC_ALIAS_INVALID)
AUTH_CODES = _codes(R.SUCCESS, R.CONTINUE_AUTHENTICATION, R.RE_AUTHENTICATE)


def _props(version: int, context: str) -> st.SearchStrategy[Properties]:
    return properties(context) if version == MQTT_5 else st.just(NO_PROPERTIES)


# -- packet strategies -------------------------------------------------------------------

@st.composite
def connects(draw: st.DrawFn, version: int) -> Connect:
    v5 = version == MQTT_5
    level = MQTT_5 if v5 else draw(st.sampled_from([MQTT_3_1, MQTT_3_1_1]))
    will = None
    if draw(st.booleans()):
        will = Will(draw(topic_names), draw(binary), draw(st.integers(0, 2)), draw(st.booleans()),
                    draw(_props(version, "WILL")))
    username = draw(st.none() | text)
    password = draw(st.none() | binary) if v5 or username is not None else None
    return Connect(draw(text), level, draw(st.booleans()), draw(u16), username, password, will,
                   draw(_props(version, "CONNECT")))


@st.composite
def connacks(draw: st.DrawFn, version: int) -> Connack:
    code = draw(CONNACK_CODES_V5 if version == MQTT_5 else CONNACK_CODES_V3)
    session_present = draw(st.booleans()) and not code.is_error
    return Connack(session_present, code, draw(_props(version, "CONNACK")))


@st.composite
def publishes(draw: st.DrawFn, version: int) -> Publish:
    qos = draw(st.integers(0, 2))
    props = draw(_props(version, "PUBLISH"))
    topic = draw(topic_names)
    if props.topic_alias is not None and draw(st.booleans()):
        topic = ""
    return Publish(topic, draw(st.binary(max_size=64)), qos, draw(st.booleans()),
                   draw(st.booleans()) if qos else False, draw(packet_ids) if qos else None,
                   props)


def acks(version: int) -> st.SearchStrategy[Packet]:
    strategies: list[st.SearchStrategy[Packet]] = []
    for cls, codes in ((Puback, ACK_CODES), (Pubrec, ACK_CODES), (Pubrel, PUBREL_CODES),
                       (Pubcomp, PUBREL_CODES)):
        if version == MQTT_5:
            strategies.append(st.builds(cls, packet_ids, codes, _props(version, "ACK")))
        else:
            strategies.append(st.builds(cls, packet_ids))
    return st.one_of(strategies)


@st.composite
def subscribes(draw: st.DrawFn, version: int) -> Subscribe:
    subscriptions = []
    for topic_filter in draw(st.lists(topic_filters, min_size=1, max_size=4)):
        qos = draw(st.integers(0, 2))
        if version == MQTT_5:
            no_local = draw(st.booleans()) and not topic_filter.startswith("$share/")
            subscriptions.append(Subscription(topic_filter, qos, no_local, draw(st.booleans()),
                                              draw(st.sampled_from(RetainHandling))))
        else:
            subscriptions.append(Subscription(topic_filter, qos))
    return Subscribe(draw(packet_ids), tuple(subscriptions), draw(_props(version, "SUBSCRIBE")))


def packets(version: int) -> st.SearchStrategy[Packet]:
    v5 = version == MQTT_5
    codes = st.lists(SUBACK_CODES if v5 else _codes(R.SUCCESS, R.GRANTED_QOS_1, R.GRANTED_QOS_2,
                                                     R.UNSPECIFIED_ERROR), min_size=1,
                     max_size=4).map(tuple)
    unsuback = (st.builds(Unsuback, packet_ids, st.lists(UNSUBACK_CODES, min_size=1,
                                                         max_size=4).map(tuple),
                          _props(version, "ACK"))
                if v5 else st.builds(Unsuback, packet_ids))
    options: list[st.SearchStrategy[Packet]] = [
        connects(version),
        connacks(version),
        publishes(version),
        acks(version),
        subscribes(version),
        st.builds(Suback, packet_ids, codes, _props(version, "ACK")),
        st.builds(Unsubscribe, packet_ids, st.lists(topic_filters, min_size=1,
                                                    max_size=4).map(tuple),
                  _props(version, "UNSUBSCRIBE")),
        unsuback,
        st.just(Pingreq()),
        st.just(Pingresp()),
    ]
    if v5:
        options.append(st.builds(Disconnect, DISCONNECT_CODES, _props(version, "DISCONNECT")))
        options.append(st.builds(Auth, AUTH_CODES, _props(version, "AUTH")))
    else:
        options.append(st.just(Disconnect()))
    return st.one_of(options)


# -- properties --------------------------------------------------------------------------

@given(packets(MQTT_3_1_1))
def test_round_trip_mqtt_3_1_1(packet: Packet) -> None:
    version = packet.protocol_version if isinstance(packet, Connect) else MQTT_3_1_1
    assert decode(encode(packet, version), version) == packet


@given(packets(MQTT_5))
def test_round_trip_mqtt_5(packet: Packet) -> None:
    assert decode(encode(packet, MQTT_5), MQTT_5) == packet


@given(st.sampled_from([MQTT_3_1_1, MQTT_5]), st.data())
def test_chunking_invariance(version: int, data: st.DataObject) -> None:
    stream = data.draw(st.lists(packets(version).filter(lambda p: not isinstance(p, Connect)),
                                max_size=6))
    encoded = b"".join(encode(packet, version) for packet in stream)
    points = sorted(data.draw(st.lists(st.integers(0, len(encoded)), max_size=12)))
    cuts = [0, *points, len(encoded)]
    decoder = PacketDecoder(version=version)
    received: list[Packet] = []
    for start, stop in itertools.pairwise(cuts):
        decoder.feed(encoded[start:stop])
        received.extend(decoder.drain())
    assert received == stream
    assert decoder.buffered == 0


@given(packets(MQTT_5), st.data())
def test_stream_after_connect_uses_its_version(first: Packet, data: st.DataObject) -> None:
    connect = data.draw(connects(MQTT_5))
    stream = [connect, first] if not isinstance(first, Connect) else [connect]
    decoder = PacketDecoder()
    decoder.feed(b"".join(encode(packet, MQTT_5) for packet in stream))
    assert decoder.drain() == stream


def _feed_all(decoder: PacketDecoder, chunks: list[bytes]) -> None:
    for chunk in chunks:
        decoder.feed(chunk)
        try:
            decoder.drain()
        except MQTTError:
            return


@given(st.binary(max_size=400), st.lists(st.integers(1, 64), max_size=20),
       st.sampled_from([None, MQTT_3_1_1, MQTT_5]))
def test_random_bytes_raise_only_mqtt_errors(blob: bytes, sizes: list[int],
                                             version: int | None) -> None:
    chunks = []
    pos = 0
    for size in [*sizes, len(blob)]:
        chunks.append(blob[pos:pos + size])
        pos += size
    _feed_all(PacketDecoder(max_packet_size=300, version=version), chunks)


@given(st.sampled_from([MQTT_3_1_1, MQTT_5]), st.data())
def test_mutated_packets_raise_only_mqtt_errors(version: int, data: st.DataObject) -> None:
    packet = data.draw(packets(version))
    encoded = bytearray(encode(packet, version))
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    decoder = PacketDecoder(version=None if isinstance(packet, Connect) else version)
    _feed_all(decoder, [bytes(encoded[:cut]), bytes(encoded[cut:])])


@given(st.sampled_from([MQTT_3_1_1, MQTT_5]), st.binary(max_size=300),
       st.lists(st.integers(1, 64), max_size=10))
def test_server_connection_raises_only_mqtt_errors(version: int, blob: bytes,
                                                   sizes: list[int]) -> None:
    server = ServerConnection(ServerLimits(max_packet_size=256))
    connect = Connect("c", version)
    server.receive_data(encode(connect, version))
    server.send(server.connack_for(connect, session_present=False))
    pos = 0
    for size in [*sizes, len(blob)]:
        try:
            server.receive_data(blob[pos:pos + size])
        except RemoteProtocolError as exc:
            assert server.state is ConnectionState.CLOSED
            server.error_response(exc)
            return
        pos += size
        if server.state is ConnectionState.CLOSED:
            return
