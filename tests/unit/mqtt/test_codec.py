"""Codec: round-trip tables for every packet type, byte-exact spec vectors, malformed input."""

from __future__ import annotations

import pytest

from bastion.mqtt import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    LocalProtocolError,
    MalformedPacketError,
    MQTTError,
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
    RetainHandling,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    UnsupportedProtocolVersionError,
    Will,
    decode,
    encode,
    encode_publish,
    publish_packet_id_offset,
    with_packet_id,
)

R = ReasonCode
USER = Properties(user_properties=(("k", "v"), ("k", "w")))


def _packet(first_byte: int, body: bytes) -> bytes:
    """A packet from its first byte and body (remaining length computed here)."""
    length = len(body)
    header = bytearray([first_byte])
    while True:
        digit, length = length & 0x7F, length >> 7
        header.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


def _string(text: bytes) -> bytes:
    return len(text).to_bytes(2, "big") + text


def _connect_bytes(flags: int = 0x02, *, name: bytes = b"MQTT", level: int = 4,
                   payload: bytes = b"\x00\x01c", properties: bytes = b"") -> bytes:
    return _packet(0x10, _string(name) + bytes([level, flags]) + b"\x00\x3c" + properties
                   + payload)


# -- round trips -------------------------------------------------------------------------

ROUND_TRIP_V3 = [
    pytest.param(Connect("dev-1"), id="connect-minimal"),
    pytest.param(Connect("", clean_start=True, keep_alive=0), id="connect-empty-id"),
    pytest.param(Connect("dev-1", clean_start=False, keep_alive=65535), id="connect-persistent"),
    pytest.param(Connect("dev-1", username="alice", password=b"s3cr\x00t"),
                 id="connect-username-password"),
    pytest.param(Connect("dev-1", username="alice"), id="connect-username-only"),
    pytest.param(Connect("dev-1", will=Will("dev/1/status", b"offline", 1, True)),
                 id="connect-will-qos1-retain"),
    pytest.param(Connect("dev-1", will=Will("w", b"", 2, False), username="u", password=b""),
                 id="connect-will-qos2-credentials"),
    pytest.param(Connect("dev-1", protocol_version=MQTT_3_1), id="connect-mqtt-3.1"),
    pytest.param(Connack(), id="connack-accepted"),
    pytest.param(Connack(session_present=True), id="connack-session-present"),
    pytest.param(Connack(reason_code=R.UNSUPPORTED_PROTOCOL_VERSION), id="connack-rc1"),
    pytest.param(Connack(reason_code=R.CLIENT_IDENTIFIER_NOT_VALID), id="connack-rc2"),
    pytest.param(Connack(reason_code=R.SERVER_UNAVAILABLE), id="connack-rc3"),
    pytest.param(Connack(reason_code=R.BAD_USER_NAME_OR_PASSWORD), id="connack-rc4"),
    pytest.param(Connack(reason_code=R.NOT_AUTHORIZED), id="connack-rc5"),
    pytest.param(Publish("a/b", b"hello"), id="publish-qos0"),
    pytest.param(Publish("a/b", b"", retain=True), id="publish-qos0-retain-empty"),
    pytest.param(Publish("a/b", b"x" * 200, qos=1, packet_id=1), id="publish-qos1"),
    pytest.param(Publish("\u6e29\u5ea6/\u00e9", b"\x00\xff", qos=2, dup=True, packet_id=65535),
                 id="publish-qos2-dup-unicode"),
    pytest.param(Puback(1), id="puback"),
    pytest.param(Pubrec(2), id="pubrec"),
    pytest.param(Pubrel(3), id="pubrel"),
    pytest.param(Pubcomp(65535), id="pubcomp"),
    pytest.param(Subscribe(1, (Subscription("a/+", 0), Subscription("#", 2))), id="subscribe"),
    pytest.param(Suback(1, (R.SUCCESS, R.GRANTED_QOS_1, R.GRANTED_QOS_2, R.UNSPECIFIED_ERROR)),
                 id="suback"),
    pytest.param(Unsubscribe(7, ("a/+", "b")), id="unsubscribe"),
    pytest.param(Unsuback(7), id="unsuback"),
    pytest.param(Pingreq(), id="pingreq"),
    pytest.param(Pingresp(), id="pingresp"),
    pytest.param(Disconnect(), id="disconnect"),
]

ROUND_TRIP_V5 = [
    pytest.param(Connect("dev-1", MQTT_5), id="connect-minimal"),
    pytest.param(Connect("", MQTT_5, clean_start=False), id="connect-empty-id"),
    pytest.param(Connect("dev-1", MQTT_5, password=b"token"), id="connect-password-only"),
    pytest.param(Connect("dev-1", MQTT_5, username="u", password=b"p", properties=Properties(
        session_expiry_interval=3600, receive_maximum=20, maximum_packet_size=65536,
        topic_alias_maximum=10, request_response_information=1, request_problem_information=0,
        user_properties=(("a", "b"),), authentication_method="SCRAM-SHA-1",
        authentication_data=b"\x01\x02")), id="connect-properties"),
    pytest.param(Connect("dev-1", MQTT_5, will=Will("dev/1/lwt", b"gone", 2, True, Properties(
        will_delay_interval=30, payload_format_indicator=1, message_expiry_interval=60,
        content_type="text/plain", response_topic="r/t", correlation_data=b"id",
        user_properties=(("x", "y"),)))), id="connect-will-properties"),
    pytest.param(Connack(), id="connack-success"),
    pytest.param(Connack(True, R.SUCCESS, Properties(
        session_expiry_interval=10, receive_maximum=100, maximum_qos=1, retain_available=0,
        maximum_packet_size=149504, assigned_client_identifier="auto-1",
        topic_alias_maximum=8, reason_string="welcome", user_properties=(("a", "b"),),
        wildcard_subscription_available=0, subscription_identifier_available=0,
        shared_subscription_available=0, server_keep_alive=30, response_information="ri",
        server_reference="other", authentication_method="m", authentication_data=b"d")),
        id="connack-all-properties"),
    *[pytest.param(Connack(reason_code=code), id=f"connack-{code.name.lower()}")
      for code in (R.UNSPECIFIED_ERROR, R.MALFORMED_PACKET, R.PROTOCOL_ERROR,
                   R.UNSUPPORTED_PROTOCOL_VERSION, R.CLIENT_IDENTIFIER_NOT_VALID,
                   R.BAD_USER_NAME_OR_PASSWORD, R.NOT_AUTHORIZED, R.SERVER_UNAVAILABLE,
                   R.SERVER_BUSY, R.BANNED, R.BAD_AUTHENTICATION_METHOD, R.QUOTA_EXCEEDED,
                   R.USE_ANOTHER_SERVER, R.CONNECTION_RATE_EXCEEDED)],
    pytest.param(Publish("a/b", b"hello"), id="publish-qos0"),
    pytest.param(Publish("a/b", b"x", qos=1, packet_id=10, retain=True), id="publish-qos1"),
    pytest.param(Publish("a/b", b"x", qos=2, packet_id=10, dup=True, properties=Properties(
        payload_format_indicator=1, message_expiry_interval=5, topic_alias=3,
        response_topic="reply", correlation_data=b"c", user_properties=(("u", "1"),),
        subscription_identifiers=(1, 268_435_455), content_type="json")),
        id="publish-qos2-properties"),
    pytest.param(Publish("", b"x", properties=Properties(topic_alias=1)),
                 id="publish-alias-empty-topic"),
    *[pytest.param(cls(5, code, props), id=f"{cls.__name__.lower()}-{code.name.lower()}-{tag}")
      for cls, codes in ((Puback, (R.SUCCESS, R.NO_MATCHING_SUBSCRIBERS, R.NOT_AUTHORIZED,
                                   R.QUOTA_EXCEEDED, R.PAYLOAD_FORMAT_INVALID)),
                         (Pubrec, (R.SUCCESS, R.UNSPECIFIED_ERROR, R.PACKET_IDENTIFIER_IN_USE)),
                         (Pubrel, (R.SUCCESS, R.PACKET_IDENTIFIER_NOT_FOUND)),
                         (Pubcomp, (R.SUCCESS, R.PACKET_IDENTIFIER_NOT_FOUND)))
      for code in codes
      for tag, props in (("plain", NO_PROPERTIES),
                         ("properties", Properties(reason_string="why",
                                                   user_properties=(("a", "b"),))))],
    pytest.param(Subscribe(1, (
        Subscription("a/+", 1, no_local=True, retain_as_published=True,
                     retain_handling=RetainHandling.DO_NOT_SEND),
        Subscription("$share/g/x", 2, retain_handling=RetainHandling.SEND_IF_NEW_SUBSCRIPTION),
    ), Properties(subscription_identifiers=(42,), user_properties=(("k", "v"),))),
        id="subscribe-options-properties"),
    pytest.param(Suback(1, (R.SUCCESS, R.GRANTED_QOS_1, R.GRANTED_QOS_2, R.UNSPECIFIED_ERROR,
                            R.IMPLEMENTATION_SPECIFIC_ERROR, R.NOT_AUTHORIZED,
                            R.TOPIC_FILTER_INVALID, R.PACKET_IDENTIFIER_IN_USE,
                            R.QUOTA_EXCEEDED, R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                            R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                            R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED), Properties(
        reason_string="r")), id="suback-every-code"),
    pytest.param(Unsubscribe(2, ("a", "b/#"), USER), id="unsubscribe-properties"),
    pytest.param(Unsuback(2, (R.SUCCESS, R.NO_SUBSCRIPTION_EXISTED, R.NOT_AUTHORIZED,
                              R.TOPIC_FILTER_INVALID)), id="unsuback"),
    pytest.param(Pingreq(), id="pingreq"),
    pytest.param(Pingresp(), id="pingresp"),
    pytest.param(Disconnect(), id="disconnect-normal"),
    pytest.param(Disconnect(R.DISCONNECT_WITH_WILL_MESSAGE), id="disconnect-with-will"),
    pytest.param(Disconnect(R.SESSION_TAKEN_OVER, Properties(
        reason_string="bye", session_expiry_interval=0, server_reference="s")),
        id="disconnect-properties"),
    pytest.param(Disconnect(R.RECEIVE_MAXIMUM_EXCEEDED), id="disconnect-receive-maximum"),
    pytest.param(Auth(), id="auth-success"),
    pytest.param(Auth(R.CONTINUE_AUTHENTICATION, Properties(
        authentication_method="SCRAM", authentication_data=b"\x00", reason_string="more")),
        id="auth-continue"),
    pytest.param(Auth(R.RE_AUTHENTICATE, Properties(authentication_method="SCRAM")),
                 id="auth-reauthenticate"),
]


@pytest.mark.parametrize("packet", ROUND_TRIP_V3)
def test_round_trip_mqtt_3_1_1(packet: Packet) -> None:
    assert decode(encode(packet, MQTT_3_1_1), MQTT_3_1_1) == packet


@pytest.mark.parametrize("packet", ROUND_TRIP_V5)
def test_round_trip_mqtt_5(packet: Packet) -> None:
    assert decode(encode(packet, MQTT_5), MQTT_5) == packet


def test_connect_sets_decoder_version() -> None:
    decoder = PacketDecoder()
    assert decoder.version is None
    decoder.feed(encode(Connect("c", MQTT_5), MQTT_5) + encode(Puback(1, R.NOT_AUTHORIZED), 5))
    assert decoder.drain() == [Connect("c", MQTT_5), Puback(1, R.NOT_AUTHORIZED)]
    assert decoder.version == MQTT_5


# -- byte-exact vectors (written out from the specs) --------------------------------------

VECTORS = [
    # 3.1.1 CONNECT: "MQTT" level 4, clean session, keep alive 60, client id "abc".
    pytest.param(Connect("abc"), MQTT_3_1_1,
                 "10 0f 0004 4d515454 04 02 003c 0003 616263", id="connect-3.1.1"),
    # 3.1 CONNECT: "MQIsdp" level 3.
    pytest.param(Connect("abc", MQTT_3_1, clean_start=False, keep_alive=10), MQTT_3_1,
                 "10 11 0006 4d5149736470 03 00 000a 0003 616263", id="connect-3.1"),
    # 3.1.1 CONNECT with will (QoS 1, retain), user name and password: flags 0xEE.
    pytest.param(Connect("c", username="u", password=b"p", will=Will("t", b"w", 1, True)),
                 MQTT_3_1_1,
                 "10 19 0004 4d515454 04 ee 003c 0001 63 0001 74 0001 77 0001 75 0001 70",
                 id="connect-will-credentials"),
    # MQTT 5 CONNECT with session expiry interval 10 (property 0x11).
    pytest.param(Connect("abc", MQTT_5, properties=Properties(session_expiry_interval=10)),
                 MQTT_5, "10 15 0004 4d515454 05 02 003c 05 11 0000000a 0003 616263",
                 id="connect-5-session-expiry"),
    pytest.param(Connack(session_present=True), MQTT_3_1_1, "20 02 01 00", id="connack-3.1.1"),
    pytest.param(Connack(reason_code=R.NOT_AUTHORIZED), MQTT_3_1_1, "20 02 00 05",
                 id="connack-3.1.1-not-authorized"),
    pytest.param(Connack(), MQTT_5, "20 03 00 00 00", id="connack-5"),
    pytest.param(Connack(reason_code=R.BANNED), MQTT_5, "20 03 00 8a 00", id="connack-5-banned"),
    # PUBLISH QoS 1, topic "a/b", packet id 10, payload "hi".
    pytest.param(Publish("a/b", b"hi", 1, packet_id=10), MQTT_3_1_1,
                 "32 09 0003 612f62 000a 6869", id="publish-qos1-3.1.1"),
    pytest.param(Publish("a/b", b"hi", 1, packet_id=10), MQTT_5,
                 "32 0a 0003 612f62 000a 00 6869", id="publish-qos1-5"),
    pytest.param(Publish("a/b", b"hi", 0, retain=True), MQTT_3_1_1,
                 "31 07 0003 612f62 6869", id="publish-qos0-retain"),
    pytest.param(Publish("a", b"", 2, dup=True, packet_id=1), MQTT_5,
                 "3c 06 0001 61 0001 00", id="publish-qos2-dup"),
    pytest.param(Puback(10), MQTT_3_1_1, "40 02 000a", id="puback-3.1.1"),
    pytest.param(Puback(10), MQTT_5, "40 02 000a", id="puback-5-short"),
    pytest.param(Puback(10, R.NO_MATCHING_SUBSCRIBERS), MQTT_5, "40 03 000a 10",
                 id="puback-5-reason"),
    pytest.param(Pubrel(10), MQTT_3_1_1, "62 02 000a", id="pubrel-3.1.1"),
    pytest.param(Subscribe(1, (Subscription("a/b", 1),)), MQTT_3_1_1,
                 "82 08 0001 0003 612f62 01", id="subscribe-3.1.1"),
    pytest.param(Subscribe(1, (Subscription("a/b", 1, True, True,
                                            RetainHandling.DO_NOT_SEND),)), MQTT_5,
                 "82 09 0001 00 0003 612f62 2d", id="subscribe-5-options"),
    # SUBACK granting QoS 1 and refusing the second filter.
    pytest.param(Suback(1, (R.GRANTED_QOS_1, R.UNSPECIFIED_ERROR)), MQTT_3_1_1,
                 "90 04 0001 01 80", id="suback-3.1.1"),
    pytest.param(Suback(1, (R.GRANTED_QOS_1, R.NOT_AUTHORIZED)), MQTT_5,
                 "90 05 0001 00 01 87", id="suback-5"),
    pytest.param(Unsubscribe(2, ("a",)), MQTT_3_1_1, "a2 05 0002 0001 61", id="unsubscribe"),
    pytest.param(Unsuback(2), MQTT_3_1_1, "b0 02 0002", id="unsuback-3.1.1"),
    pytest.param(Unsuback(2, (R.SUCCESS,)), MQTT_5, "b0 04 0002 00 00", id="unsuback-5"),
    pytest.param(Pingreq(), MQTT_3_1_1, "c0 00", id="pingreq"),
    pytest.param(Pingresp(), MQTT_5, "d0 00", id="pingresp"),
    pytest.param(Disconnect(), MQTT_3_1_1, "e0 00", id="disconnect-3.1.1"),
    pytest.param(Disconnect(), MQTT_5, "e0 00", id="disconnect-5-normal"),
    pytest.param(Disconnect(R.SERVER_SHUTTING_DOWN), MQTT_5, "e0 01 8b", id="disconnect-5-reason"),
    pytest.param(Auth(), MQTT_5, "f0 00", id="auth"),
    # Remaining length 321 is 0xC1 0x02 (spec 2.2.3 example).
    pytest.param(Publish("t", b"x" * 318), MQTT_3_1_1, "30 c102 0001 74" + "78" * 318,
                 id="publish-two-byte-length"),
]


@pytest.mark.parametrize(("packet", "version", "hex_bytes"), VECTORS)
def test_vector(packet: Packet, version: int, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes.replace(" ", ""))
    assert encode(packet, version) == data
    assert decode(data, version) == packet


@pytest.mark.parametrize(("hex_bytes", "packet"), [
    pytest.param("40 03 000a 00", Puback(10), id="puback-success-spelled-out"),
    pytest.param("40 04 000a 00 00", Puback(10), id="puback-empty-properties"),
    pytest.param("e0 02 00 00", Disconnect(), id="disconnect-spelled-out"),
    pytest.param("30 8600 0001 74 00 6869", Publish("t", b"hi"), id="non-minimal-length"),
    pytest.param("30 86808000 0001 74 00 6869", Publish("t", b"hi"), id="four-byte-length"),
])
def test_decode_accepts_long_forms_mqtt_5(hex_bytes: str, packet: Packet) -> None:
    assert decode(bytes.fromhex(hex_bytes.replace(" ", "")), MQTT_5) == packet


# -- 3.1.1 mapping of MQTT 5 values --------------------------------------------------------

@pytest.mark.parametrize(("reason", "return_code"), [
    pytest.param(R.BANNED, 5, id="banned-is-not-authorized"),
    pytest.param(R.BAD_AUTHENTICATION_METHOD, 4, id="bad-auth-method"),
    pytest.param(R.SERVER_BUSY, 3, id="busy-is-unavailable"),
    pytest.param(R.QUOTA_EXCEEDED, 3, id="quota-is-unavailable"),
])
def test_connack_reason_mapped_for_3_1_1(reason: ReasonCode, return_code: int) -> None:
    assert encode(Connack(reason_code=reason), MQTT_3_1_1) == bytes([0x20, 2, 0, return_code])


def test_suback_errors_become_0x80_for_3_1_1() -> None:
    data = encode(Suback(3, (R.NOT_AUTHORIZED, R.GRANTED_QOS_2, R.QUOTA_EXCEEDED)), MQTT_3_1_1)
    assert data == bytes.fromhex("9005 0003 80 02 80".replace(" ", ""))


@pytest.mark.parametrize("packet", [
    pytest.param(Publish("a", b"p", properties=Properties(message_expiry_interval=3)),
                 id="publish"),
    pytest.param(Puback(1, R.NOT_AUTHORIZED, Properties(reason_string="no")), id="puback"),
    pytest.param(Unsuback(1, (R.NO_SUBSCRIPTION_EXISTED,)), id="unsuback"),
    pytest.param(Disconnect(R.SERVER_SHUTTING_DOWN, Properties(reason_string="x")),
                 id="disconnect"),
    pytest.param(Subscribe(1, (Subscription("a", 1, no_local=True),)), id="subscribe"),
])
def test_mqtt_5_only_fields_dropped_for_3_1_1(packet: Packet) -> None:
    plain = decode(encode(packet, MQTT_3_1_1), MQTT_3_1_1)
    assert plain.packet_type == packet.packet_type
    assert getattr(plain, "properties", NO_PROPERTIES) is NO_PROPERTIES
    assert getattr(plain, "reason_code", R.SUCCESS) is R.SUCCESS


def test_mqtt_3_1_has_no_session_present_flag() -> None:
    assert encode(Connack(session_present=True), MQTT_3_1) == b"\x20\x02\x00\x00"


# -- the PUBLISH fast path ---------------------------------------------------------------

@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
@pytest.mark.parametrize("qos", [1, 2])
def test_with_packet_id_patches_prebuilt_publish(version: int, qos: int) -> None:
    props = Properties(user_properties=(("a", "b"),)) if version == MQTT_5 else NO_PROPERTIES
    template = encode_publish("topic/x", b"p" * 300, qos, True, 1, version, props)
    for packet_id, dup in ((2, False), (65535, True), (1, False)):
        data = with_packet_id(template, packet_id, dup)
        expected = Publish("topic/x", b"p" * 300, qos, True, dup, packet_id, props)
        assert data == encode(expected, version)
        assert decode(data, version) == expected
    assert publish_packet_id_offset(template) == 1 + 2 + 2 + len("topic/x")


def test_encode_publish_equals_encode() -> None:
    props = Properties(content_type="text/plain")
    assert encode_publish("a", b"b", 0, False, None, MQTT_5, props) == encode(
        Publish("a", b"b", properties=props), MQTT_5
    )


@pytest.mark.parametrize(("encoded", "packet_id"), [
    pytest.param(encode(Publish("a", b""), MQTT_3_1_1), 1, id="qos0"),
    pytest.param(encode(Puback(1), MQTT_3_1_1), 1, id="not-publish"),
    pytest.param(encode(Publish("a", b"", 1, packet_id=1), MQTT_3_1_1), 0, id="id-0"),
    pytest.param(encode(Publish("a", b"", 1, packet_id=1), MQTT_3_1_1), 65536, id="id-65536"),
])
def test_with_packet_id_refuses(encoded: bytes, packet_id: int) -> None:
    with pytest.raises(LocalProtocolError):
        with_packet_id(encoded, packet_id)


# -- encoding our own mistakes -----------------------------------------------------------

ENCODE_ERRORS = [
    pytest.param(Publish("a", qos=1), MQTT_3_1_1, id="qos1-without-packet-id"),
    pytest.param(Publish("a", packet_id=1), MQTT_3_1_1, id="qos0-with-packet-id"),
    pytest.param(Publish("a", qos=1, packet_id=0), MQTT_3_1_1, id="packet-id-0"),
    pytest.param(Publish("a", qos=1, packet_id=65536), MQTT_3_1_1, id="packet-id-65536"),
    pytest.param(Publish("a", qos=3, packet_id=1), MQTT_3_1_1, id="qos3"),
    pytest.param(Publish("a", dup=True), MQTT_3_1_1, id="dup-qos0"),
    pytest.param(Publish("a/+"), MQTT_3_1_1, id="wildcard-topic"),
    pytest.param(Publish("a\x00"), MQTT_3_1_1, id="nul-in-topic"),
    pytest.param(Publish("\ud800"), MQTT_3_1_1, id="surrogate-topic"),
    pytest.param(Publish("x" * 65536), MQTT_3_1_1, id="topic-too-long"),
    pytest.param(Publish(""), MQTT_3_1_1, id="empty-topic-3.1.1"),
    pytest.param(Publish(""), MQTT_5, id="empty-topic-without-alias"),
    pytest.param(Puback(0), MQTT_5, id="puback-id-0"),
    pytest.param(Puback(1, R.GRANTED_QOS_1), MQTT_5, id="puback-wrong-reason"),
    pytest.param(Pubrel(1, R.NOT_AUTHORIZED), MQTT_5, id="pubrel-wrong-reason"),
    pytest.param(Connack(reason_code=R.GRANTED_QOS_1), MQTT_5, id="connack-wrong-reason"),
    pytest.param(Connack(True, R.NOT_AUTHORIZED), MQTT_5, id="connack-error-session-present"),
    pytest.param(Suback(1, ()), MQTT_5, id="suback-empty"),
    pytest.param(Suback(1, (R.NO_SUBSCRIPTION_EXISTED,)), MQTT_5, id="suback-wrong-reason"),
    pytest.param(Unsuback(1), MQTT_5, id="unsuback-5-empty"),
    pytest.param(Subscribe(1, ()), MQTT_5, id="subscribe-empty"),
    pytest.param(Subscribe(1, (Subscription("a", 3),)), MQTT_5, id="subscribe-qos3"),
    pytest.param(Subscribe(1, (Subscription("$share/g/a", 0, no_local=True),)), MQTT_5,
                 id="subscribe-no-local-shared"),
    pytest.param(Unsubscribe(1, ()), MQTT_5, id="unsubscribe-empty"),
    pytest.param(Auth(), MQTT_3_1_1, id="auth-3.1.1"),
    pytest.param(Disconnect(R.GRANTED_QOS_2), MQTT_5, id="disconnect-wrong-reason"),
    pytest.param(Connect("c", MQTT_5), MQTT_3_1_1, id="connect-version-mismatch"),
    pytest.param(Connect("c", 9), MQTT_3_1_1, id="connect-unknown-level"),
    pytest.param(Connect("c", password=b"p"), MQTT_3_1_1, id="password-without-username"),
    pytest.param(Connect("c", keep_alive=65536), MQTT_3_1_1, id="keep-alive-too-large"),
    pytest.param(Connect("c", will=Will("t", b"", qos=3)), MQTT_3_1_1, id="will-qos3"),
    pytest.param(Connect("c", will=Will("t/#", b"")), MQTT_3_1_1, id="will-topic-wildcard"),
    pytest.param(Connect("c", will=Will("t", b"x" * 65536)), MQTT_3_1_1, id="will-payload-long"),
    pytest.param(Connect("c\x00"), MQTT_3_1_1, id="client-id-nul"),
    pytest.param(Pingreq(), 6, id="unknown-version"),
]


@pytest.mark.parametrize(("packet", "version"), ENCODE_ERRORS)
def test_encode_refuses(packet: Packet, version: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode(packet, version)


def test_encode_refuses_non_packet() -> None:
    with pytest.raises(TypeError):
        encode("PINGREQ", MQTT_5)  # type: ignore[arg-type]


# -- malformed input ---------------------------------------------------------------------

_SUB = _string(b"a/b")
MALFORMED = [
    # fixed header
    pytest.param("00 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET, id="type-0"),
    pytest.param("f0 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="auth-in-3.1.1"),
    pytest.param("60 02 0001", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="pubrel-flags-0"),
    pytest.param("80 06 0001 0001 61 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="subscribe-flags-0"),
    pytest.param("a0 05 0001 0001 61", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="unsubscribe-flags-0"),
    pytest.param("41 02 0001", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="puback-flags-1"),
    pytest.param("c8 00", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET, id="pingreq-flags"),
    pytest.param("36 07 0003 612f62 0001", MQTT_3_1_1, MalformedPacketError,
                 R.MALFORMED_PACKET, id="publish-qos3"),
    pytest.param("38 05 0003 612f62", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="publish-dup-qos0"),
    pytest.param("30 ffffffff01", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="length-five-bytes"),
    # length mismatches
    pytest.param("40 03 0001 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="puback-trailing-byte-3.1.1"),
    pytest.param("40 05 0001 00 00 00", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="puback-trailing-byte-5"),
    pytest.param("c0 01 00", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="pingreq-with-body"),
    pytest.param("e0 01 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="disconnect-body-3.1.1"),
    pytest.param("30 04 000a 6162", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="topic-past-end"),
    pytest.param("30 01 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="topic-length-truncated"),
    pytest.param("32 04 0001 61 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="packet-id-truncated"),
    pytest.param("30 03 0001 61", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="publish-5-without-property-length"),
    pytest.param("40 01 00", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="puback-short"),
    pytest.param("90 02 0001", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="suback-empty"),
    pytest.param("20 01 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="connack-short"),
    pytest.param("b0 03 0001 00", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="unsuback-5-empty"),
    # strings
    pytest.param("30 04 0002 c328", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="topic-invalid-utf8"),
    pytest.param("30 05 0003 ed a0 80", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="topic-utf16-surrogate"),
    pytest.param("30 06 0004 c0 af 61 61", MQTT_3_1_1, MalformedPacketError,
                 R.MALFORMED_PACKET, id="topic-overlong-utf8"),
    pytest.param("30 05 0003 61 00 62", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="topic-nul"),
    pytest.param("a2 05 0001 0001 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="unsubscribe-filter-nul"),
    # topic names
    pytest.param("30 05 0003 612f23", MQTT_3_1_1, RemoteProtocolError, R.TOPIC_NAME_INVALID,
                 id="topic-wildcard-hash"),
    pytest.param("30 06 0003 2b2f62 00", MQTT_5, RemoteProtocolError, R.TOPIC_NAME_INVALID,
                 id="topic-wildcard-plus"),
    pytest.param("30 02 0000", MQTT_3_1_1, RemoteProtocolError, R.TOPIC_NAME_INVALID,
                 id="topic-empty-3.1.1"),
    pytest.param("30 03 0000 00", MQTT_5, RemoteProtocolError, R.PROTOCOL_ERROR,
                 id="topic-empty-without-alias"),
    # packet identifiers
    pytest.param("32 07 0003 612f62 0000", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="publish-packet-id-0"),
    pytest.param("40 02 0000", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="puback-packet-id-0"),
    pytest.param("82 08 0000 0003 612f62 00", MQTT_3_1_1, MalformedPacketError,
                 R.MALFORMED_PACKET, id="subscribe-packet-id-0"),
    # SUBSCRIBE / UNSUBSCRIBE payloads
    pytest.param("82 02 0001", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="subscribe-empty-3.1.1"),
    pytest.param("82 03 0001 00", MQTT_5, RemoteProtocolError, R.PROTOCOL_ERROR,
                 id="subscribe-empty-5"),
    pytest.param("a2 02 0001", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="unsubscribe-empty-3.1.1"),
    pytest.param("a2 03 0001 00", MQTT_5, RemoteProtocolError, R.PROTOCOL_ERROR,
                 id="unsubscribe-empty-5"),
    pytest.param("82 08 0001 0003 612f62 04", MQTT_3_1_1, MalformedPacketError,
                 R.MALFORMED_PACKET, id="subscribe-reserved-bits-3.1.1"),
    pytest.param("82 08 0001 0003 612f62 03", MQTT_3_1_1, MalformedPacketError,
                 R.MALFORMED_PACKET, id="subscribe-qos3-3.1.1"),
    pytest.param("82 09 0001 00 0003 612f62 40", MQTT_5, MalformedPacketError,
                 R.MALFORMED_PACKET, id="subscribe-reserved-bits-5"),
    pytest.param("82 09 0001 00 0003 612f62 03", MQTT_5, RemoteProtocolError, R.PROTOCOL_ERROR,
                 id="subscribe-qos3-5"),
    pytest.param("82 09 0001 00 0003 612f62 30", MQTT_5, RemoteProtocolError, R.PROTOCOL_ERROR,
                 id="subscribe-retain-handling-3"),
    pytest.param("82 0c 0001 00 0009 247368617265 04", MQTT_5, MalformedPacketError,
                 R.MALFORMED_PACKET, id="subscribe-filter-truncated"),
    pytest.param("82 0a 0001 00 0003 612f62 00 00", MQTT_5, MalformedPacketError,
                 R.MALFORMED_PACKET, id="subscribe-options-missing"),
    # reason codes
    pytest.param("40 03 0001 01", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="puback-reason-not-allowed"),
    pytest.param("40 03 0001 05", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="puback-reason-unknown"),
    pytest.param("e0 01 ff", MQTT_5, MalformedPacketError, R.MALFORMED_PACKET,
                 id="disconnect-reason-unknown"),
    pytest.param("20 02 00 06", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="connack-return-code-6"),
    pytest.param("20 02 02 00", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="connack-reserved-flags"),
    pytest.param("20 02 01 05", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="connack-error-session-present"),
    pytest.param("90 03 0001 03", MQTT_3_1_1, MalformedPacketError, R.MALFORMED_PACKET,
                 id="suback-3.1.1-code-3"),
]


@pytest.mark.parametrize(("hex_bytes", "version", "error", "reason"), MALFORMED)
def test_malformed(hex_bytes: str, version: int, error: type[RemoteProtocolError],
                   reason: ReasonCode) -> None:
    with pytest.raises(error) as info:
        decode(bytes.fromhex(hex_bytes.replace(" ", "")), version)
    assert info.value.reason_code is reason


CONNECT_ERRORS = [
    pytest.param(_connect_bytes(0x03), MalformedPacketError, R.MALFORMED_PACKET,
                 id="reserved-flag"),
    pytest.param(_connect_bytes(0x0A), MalformedPacketError, R.MALFORMED_PACKET,
                 id="will-qos-without-will-flag"),
    pytest.param(_connect_bytes(0x22), MalformedPacketError, R.MALFORMED_PACKET,
                 id="will-retain-without-will-flag"),
    pytest.param(_connect_bytes(0x1E, payload=b"\x00\x01c\x00\x01t\x00\x00"),
                 MalformedPacketError, R.MALFORMED_PACKET, id="will-qos3"),
    pytest.param(_connect_bytes(0x42, payload=b"\x00\x01c\x00\x01p"), MalformedPacketError,
                 R.MALFORMED_PACKET, id="password-without-username-3.1.1"),
    pytest.param(_connect_bytes(0x06, payload=b"\x00\x01c\x00\x03t/#\x00\x00"),
                 RemoteProtocolError, R.TOPIC_NAME_INVALID, id="will-topic-wildcard"),
    pytest.param(_connect_bytes(0x06, payload=b"\x00\x01c\x00\x00\x00\x00"),
                 RemoteProtocolError, R.TOPIC_NAME_INVALID, id="will-topic-empty"),
    pytest.param(_connect_bytes(0x06, payload=b"\x00\x01c\x00\x01t"), MalformedPacketError,
                 R.MALFORMED_PACKET, id="will-payload-missing"),
    pytest.param(_connect_bytes(0x82), MalformedPacketError, R.MALFORMED_PACKET,
                 id="username-missing"),
    pytest.param(_connect_bytes(payload=b"\x00\x01c\xff"), MalformedPacketError,
                 R.MALFORMED_PACKET, id="trailing-byte"),
    pytest.param(_connect_bytes(payload=b""), MalformedPacketError, R.MALFORMED_PACKET,
                 id="client-id-missing"),
    pytest.param(_connect_bytes(name=b"MQTX"), MalformedPacketError, R.MALFORMED_PACKET,
                 id="unknown-protocol-name"),
    pytest.param(_packet(0x10, b"\x00\x04MQTT"), MalformedPacketError, R.MALFORMED_PACKET,
                 id="truncated-after-name"),
]


@pytest.mark.parametrize(("data", "error", "reason"), CONNECT_ERRORS)
def test_malformed_connect(data: bytes, error: type[RemoteProtocolError],
                           reason: ReasonCode) -> None:
    with pytest.raises(error) as info:
        decode(data, None)
    assert info.value.reason_code is reason


def test_password_without_username_is_fine_in_mqtt_5() -> None:
    data = _connect_bytes(0x42, level=5, properties=b"\x00", payload=b"\x00\x01c\x00\x01p")
    assert decode(data, None) == Connect("c", MQTT_5, keep_alive=60, password=b"p")


@pytest.mark.parametrize(("name", "level"), [
    pytest.param(b"MQTT", 6, id="level-6"),
    pytest.param(b"MQTT", 0, id="level-0"),
    pytest.param(b"MQTT", 3, id="level-3-named-mqtt"),
    pytest.param(b"MQIsdp", 4, id="level-4-named-mqisdp"),
    pytest.param(b"MQTT", 255, id="level-255"),
])
def test_unsupported_protocol_version(name: bytes, level: int) -> None:
    with pytest.raises(UnsupportedProtocolVersionError) as info:
        decode(_connect_bytes(name=name, level=level), None)
    assert info.value.reason_code is R.UNSUPPORTED_PROTOCOL_VERSION
    assert info.value.protocol_version == level


# -- the stream decoder ------------------------------------------------------------------

def test_decoder_returns_none_until_complete() -> None:
    data = encode(Publish("a/b", b"payload", 1, packet_id=4), MQTT_5)
    decoder = PacketDecoder(version=MQTT_5)
    for byte in data[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_packet() is None
    decoder.feed(data[-1:])
    assert decoder.next_packet() == Publish("a/b", b"payload", 1, packet_id=4)
    assert decoder.next_packet() is None
    assert decoder.buffered == 0


def test_decoder_many_packets_in_one_feed() -> None:
    packets = [Publish(f"t/{i}", bytes([i]) * i) for i in range(50)] + [Pingreq()]
    decoder = PacketDecoder(version=MQTT_3_1_1)
    decoder.feed(b"".join(encode(p, MQTT_3_1_1) for p in packets) + b"\x30")
    assert list(decoder) == packets
    assert decoder.buffered == 1
    decoder.feed(b"\x03\x00\x01z")
    assert decoder.drain() == [Publish("z")]
    assert decoder.buffered == 0


def test_decoder_refuses_oversized_packet_from_its_header() -> None:
    decoder = PacketDecoder(max_packet_size=100, version=MQTT_5)
    decoder.feed(b"\x30\xe3\x00")  # remaining length 99: 101 bytes in all; no body yet
    with pytest.raises(PacketTooLargeError) as info:
        decoder.next_packet()
    assert info.value.reason_code is R.PACKET_TOO_LARGE


def test_decoder_accepts_packet_of_exactly_max_size() -> None:
    packet = Publish("t", b"x" * 94)  # 2 + 2 + 1 + 1 + 94 = 100 bytes
    data = encode(packet, MQTT_5)
    assert len(data) == 100
    decoder = PacketDecoder(max_packet_size=100, version=MQTT_5)
    decoder.feed(data)
    assert decoder.drain() == [packet]


def test_decoder_error_is_sticky() -> None:
    decoder = PacketDecoder(version=MQTT_3_1_1)
    decoder.feed(b"\x00\x00")
    for _ in range(2):
        with pytest.raises(MalformedPacketError):
            decoder.next_packet()


def test_decoder_can_be_fed_after_an_error() -> None:
    # The receive buffer must not stay locked by a memoryview kept alive by the traceback.
    decoder = PacketDecoder(version=MQTT_3_1_1)
    decoder.feed(bytes.fromhex("3004 0002 c328"))
    with pytest.raises(MQTTError):
        decoder.next_packet()
    decoder.feed(b"more")


@pytest.mark.parametrize(("data", "version"), [
    pytest.param(b"\x30\x05\x00\x01a", MQTT_3_1_1, id="incomplete"),
    pytest.param(b"\xc0\x00\xc0\x00", MQTT_3_1_1, id="two-packets"),
    pytest.param(b"", MQTT_5, id="empty"),
])
def test_decode_needs_exactly_one_packet(data: bytes, version: int) -> None:
    with pytest.raises(MalformedPacketError):
        decode(data, version)
