"""MQTT 5 properties: each one round-trips where allowed and is refused elsewhere, both ways."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bastion.mqtt import (
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    LocalProtocolError,
    MalformedPacketError,
    Packet,
    PacketType,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    RemoteProtocolError,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    decode,
    encode,
)

P = PacketType
WILL = "WILL"  # the will properties of a CONNECT

# Where each property may appear (MQTT 5.0 section 2.2.2.2, written out independently of
# the codec's own table), with a value to carry.
ALLOWED: dict[str, tuple[Any, set[object]]] = {
    "payload_format_indicator": (1, {P.PUBLISH, WILL}),
    "message_expiry_interval": (3600, {P.PUBLISH, WILL}),
    "content_type": ("application/json", {P.PUBLISH, WILL}),
    "response_topic": ("reply/to/\u00e9", {P.PUBLISH, WILL}),
    "correlation_data": (b"\x00\x01\xff", {P.PUBLISH, WILL}),
    "subscription_identifiers": ((268_435_455,), {P.PUBLISH, P.SUBSCRIBE}),
    "session_expiry_interval": (0xFFFFFFFF, {P.CONNECT, P.CONNACK, P.DISCONNECT}),
    "assigned_client_identifier": ("auto-7", {P.CONNACK}),
    "server_keep_alive": (65535, {P.CONNACK}),
    "authentication_method": ("SCRAM-SHA-256", {P.CONNECT, P.CONNACK, P.AUTH}),
    "request_problem_information": (0, {P.CONNECT}),
    "will_delay_interval": (30, {WILL}),
    "request_response_information": (1, {P.CONNECT}),
    "response_information": ("resp/", {P.CONNACK}),
    "server_reference": ("other.example:8883", {P.CONNACK, P.DISCONNECT}),
    "reason_string": ("because", {P.CONNACK, P.PUBACK, P.PUBREC, P.PUBREL, P.PUBCOMP,
                                  P.SUBACK, P.UNSUBACK, P.DISCONNECT, P.AUTH}),
    "receive_maximum": (1, {P.CONNECT, P.CONNACK}),
    "topic_alias_maximum": (0, {P.CONNECT, P.CONNACK}),
    "topic_alias": (65535, {P.PUBLISH}),
    "maximum_qos": (0, {P.CONNACK}),
    "retain_available": (1, {P.CONNACK}),
    "user_properties": ((("k", "v"), ("k", "v"), ("\u00fc", "")),
                        {P.CONNECT, P.CONNACK, P.PUBLISH, WILL, P.PUBACK, P.PUBREC, P.PUBREL,
                         P.PUBCOMP, P.SUBSCRIBE, P.SUBACK, P.UNSUBSCRIBE, P.UNSUBACK,
                         P.DISCONNECT, P.AUTH}),
    "maximum_packet_size": (0xFFFFFFFF, {P.CONNECT, P.CONNACK}),
    "wildcard_subscription_available": (0, {P.CONNACK}),
    "subscription_identifier_available": (0, {P.CONNACK}),
    "shared_subscription_available": (1, {P.CONNACK}),
}

CARRIERS: dict[object, Callable[[Properties], Packet]] = {
    P.CONNECT: lambda props: Connect("c", MQTT_5, properties=props),
    WILL: lambda props: Connect("c", MQTT_5, will=Will("w", b"x", properties=props)),
    P.CONNACK: lambda props: Connack(properties=props),
    P.PUBLISH: lambda props: Publish("t", b"x", properties=props),
    P.PUBACK: lambda props: Puback(1, ReasonCode.SUCCESS, props),
    P.PUBREC: lambda props: Pubrec(1, ReasonCode.SUCCESS, props),
    P.PUBREL: lambda props: Pubrel(1, ReasonCode.SUCCESS, props),
    P.PUBCOMP: lambda props: Pubcomp(1, ReasonCode.SUCCESS, props),
    P.SUBSCRIBE: lambda props: Subscribe(1, (Subscription("f"),), props),
    P.SUBACK: lambda props: Suback(1, (ReasonCode.SUCCESS,), props),
    P.UNSUBSCRIBE: lambda props: Unsubscribe(1, ("f",), props),
    P.UNSUBACK: lambda props: Unsuback(1, (ReasonCode.SUCCESS,), props),
    P.DISCONNECT: lambda props: Disconnect(ReasonCode.SUCCESS, props),
    P.AUTH: lambda props: Auth(ReasonCode.SUCCESS, props),
}


def _name(context: object) -> str:
    return context.name.lower() if isinstance(context, PacketType) else str(context).lower()


ALLOWED_CASES = [
    pytest.param(attribute, value, context, id=f"{attribute}-in-{_name(context)}")
    for attribute, (value, contexts) in ALLOWED.items()
    for context in CARRIERS
    if context in contexts
]
FORBIDDEN_CASES = [
    pytest.param(attribute, value, context, id=f"{attribute}-in-{_name(context)}")
    for attribute, (value, contexts) in ALLOWED.items()
    for context in CARRIERS
    if context not in contexts
]


def test_table_covers_every_property() -> None:
    assert set(ALLOWED) | {"authentication_data"} == set(Properties.__dataclass_fields__)


@pytest.mark.parametrize(("attribute", "value", "context"), ALLOWED_CASES)
def test_property_round_trips(attribute: str, value: Any, context: object) -> None:
    packet = CARRIERS[context](Properties(**{attribute: value}))
    assert decode(encode(packet, MQTT_5), MQTT_5) == packet


@pytest.mark.parametrize("context", [P.CONNECT, P.CONNACK, P.AUTH])
def test_authentication_data_round_trips(context: object) -> None:
    packet = CARRIERS[context](Properties(authentication_method="m", authentication_data=b"d"))
    assert decode(encode(packet, MQTT_5), MQTT_5) == packet


def test_repeated_subscription_identifiers_in_publish() -> None:
    packet = Publish("t", properties=Properties(subscription_identifiers=(1, 127, 128, 16384)))
    assert decode(encode(packet, MQTT_5), MQTT_5) == packet


def test_every_property_at_once_in_connack() -> None:
    values = {attribute: value for attribute, (value, contexts) in ALLOWED.items()
              if P.CONNACK in contexts}
    packet = Connack(properties=Properties(authentication_data=b"\x01", **values))
    assert decode(encode(packet, MQTT_5), MQTT_5) == packet


@pytest.mark.parametrize(("attribute", "value", "context"), FORBIDDEN_CASES)
def test_forbidden_property_is_not_encoded(attribute: str, value: Any, context: object) -> None:
    with pytest.raises(LocalProtocolError):
        encode(CARRIERS[context](Properties(**{attribute: value})), MQTT_5)


# The marker block: one user property ("k", "v"), swapped for a hand-made block below.
_MARKER = Properties(user_properties=(("k", "v"),))
_MARKER_BLOCK = bytes.fromhex("07 26 0001 6b 0001 76".replace(" ", ""))


def _with_block(context: object, block: bytes) -> bytes:
    """The carrier packet of ``context`` with ``block`` as its (or the will's) properties."""
    data = encode(CARRIERS[context](_MARKER), MQTT_5)
    pos = 1
    while data[pos] & 0x80:
        pos += 1
    body = data[pos + 1:]
    assert body.count(_MARKER_BLOCK) == 1
    body = body.replace(_MARKER_BLOCK, block)
    length = len(body)
    header = bytearray([data[0]])
    while True:
        digit, length = length & 0x7F, length >> 7
        header.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


def _block(*properties: bytes) -> bytes:
    content = b"".join(properties)
    assert len(content) < 128
    return bytes([len(content)]) + content


# One well-formed encoding of each property (identifier, then value), for the decode side.
RAW = {
    "payload_format_indicator": "01 01",
    "message_expiry_interval": "02 00000e10",
    "content_type": "03 0001 61",
    "response_topic": "08 0001 61",
    "correlation_data": "09 0001 00",
    "subscription_identifiers": "0b 05",
    "session_expiry_interval": "11 0000000a",
    "assigned_client_identifier": "12 0001 61",
    "server_keep_alive": "13 001e",
    "authentication_method": "15 0001 61",
    "request_problem_information": "17 01",
    "will_delay_interval": "18 0000000a",
    "request_response_information": "19 01",
    "response_information": "1a 0001 61",
    "server_reference": "1c 0001 61",
    "reason_string": "1f 0001 61",
    "receive_maximum": "21 000a",
    "topic_alias_maximum": "22 000a",
    "topic_alias": "23 0001",
    "maximum_qos": "24 01",
    "retain_available": "25 01",
    "user_properties": "26 0001 61 0001 62",
    "maximum_packet_size": "27 00000400",
    "wildcard_subscription_available": "28 01",
    "subscription_identifier_available": "29 01",
    "shared_subscription_available": "2a 01",
}


def _raw(attribute: str) -> bytes:
    return bytes.fromhex(RAW[attribute].replace(" ", ""))


def test_raw_encodings_match_the_codec() -> None:
    # The hand-written bytes decode to the property they claim to be.
    for attribute, (_, contexts) in ALLOWED.items():
        context = next(c for c in CARRIERS if c in contexts)
        packet = decode(_with_block(context, _block(_raw(attribute))), MQTT_5)
        if context == WILL:
            assert isinstance(packet, Connect) and packet.will is not None
            props = packet.will.properties
        else:
            props = packet.properties  # type: ignore[union-attr]
        assert getattr(props, attribute) not in (None, ()), attribute


@pytest.mark.parametrize(("attribute", "value", "context"), FORBIDDEN_CASES)
def test_forbidden_property_is_malformed(attribute: str, value: Any, context: object) -> None:
    with pytest.raises(MalformedPacketError) as info:
        decode(_with_block(context, _block(_raw(attribute))), MQTT_5)
    assert info.value.reason_code is ReasonCode.MALFORMED_PACKET


DECODE_ERRORS = [
    pytest.param(P.PUBLISH, "7f 00", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="unknown-identifier"),
    pytest.param(P.PUBLISH, "00", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="identifier-0"),
    pytest.param(P.PUBLISH, "02 0000", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="four-byte-value-truncated"),
    pytest.param(P.PUBLISH, "03 0005 61", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="string-past-block"),
    pytest.param(P.PUBLISH, "03 0002 c328", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="string-invalid-utf8"),
    pytest.param(P.PUBLISH, "03 0001 00", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="string-nul"),
    pytest.param(P.PUBLISH, "26 0001 61", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="user-property-without-value"),
    pytest.param(P.PUBLISH, "0b ffffffff7f", MalformedPacketError, ReasonCode.MALFORMED_PACKET,
                 id="varint-five-bytes"),
    pytest.param(P.PUBLISH, "02 00000001 02 00000002", RemoteProtocolError,
                 ReasonCode.PROTOCOL_ERROR, id="duplicate-message-expiry"),
    pytest.param(P.PUBLISH, "23 0001 23 0001", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="duplicate-topic-alias"),
    pytest.param(P.CONNECT, "21 0001 21 0001", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="duplicate-receive-maximum"),
    pytest.param(P.CONNECT, "15 0001 61 15 0001 61", RemoteProtocolError,
                 ReasonCode.PROTOCOL_ERROR, id="duplicate-authentication-method"),
    pytest.param(P.SUBSCRIBE, "0b 01 0b 02", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="two-subscription-identifiers-in-subscribe"),
    pytest.param(P.SUBSCRIBE, "0b 00", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="subscription-identifier-0"),
    pytest.param(P.PUBLISH, "01 02", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="payload-format-indicator-2"),
    pytest.param(WILL, "01 ff", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="will-payload-format-indicator-255"),
    pytest.param(P.CONNECT, "21 0000", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="receive-maximum-0"),
    pytest.param(P.CONNECT, "27 00000000", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="maximum-packet-size-0"),
    pytest.param(P.CONNECT, "17 02", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="request-problem-information-2"),
    pytest.param(P.CONNECT, "19 02", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="request-response-information-2"),
    pytest.param(P.CONNACK, "24 02", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="maximum-qos-2"),
    pytest.param(P.CONNACK, "25 02", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="retain-available-2"),
    pytest.param(P.PUBLISH, "23 0000", RemoteProtocolError, ReasonCode.TOPIC_ALIAS_INVALID,
                 id="topic-alias-0"),
    pytest.param(P.CONNECT, "16 0001 61", RemoteProtocolError, ReasonCode.PROTOCOL_ERROR,
                 id="authentication-data-without-method"),
]


@pytest.mark.parametrize(("context", "properties", "error", "reason"), DECODE_ERRORS)
def test_invalid_properties_are_refused(context: object, properties: str,
                                        error: type[RemoteProtocolError],
                                        reason: ReasonCode) -> None:
    block = _block(bytes.fromhex(properties.replace(" ", "")))
    with pytest.raises(error) as info:
        decode(_with_block(context, block), MQTT_5)
    assert info.value.reason_code is reason


def test_property_length_past_packet_end() -> None:
    with pytest.raises(MalformedPacketError):
        decode(bytes.fromhex("40 04 0001 00 05".replace(" ", "")), MQTT_5)


def test_user_properties_keep_order_and_repeats() -> None:
    block = _block(bytes.fromhex("26 0001 62 0001 31 26 0001 61 0001 32 26 0001 62 0001 33"
                                 .replace(" ", "")))
    packet = decode(_with_block(P.PUBACK, block), MQTT_5)
    assert isinstance(packet, Puback)
    assert packet.properties.user_properties == (("b", "1"), ("a", "2"), ("b", "3"))


def test_empty_block_decodes_to_shared_no_properties() -> None:
    packet = decode(encode(Publish("t", properties=Properties()), MQTT_5), MQTT_5)
    assert isinstance(packet, Publish)
    assert packet.properties is NO_PROPERTIES


ENCODE_ERRORS = [
    pytest.param(P.CONNECT, Properties(receive_maximum=0), id="receive-maximum-0"),
    pytest.param(P.CONNECT, Properties(receive_maximum=65536), id="receive-maximum-65536"),
    pytest.param(P.CONNECT, Properties(maximum_packet_size=0), id="maximum-packet-size-0"),
    pytest.param(P.CONNECT, Properties(session_expiry_interval=-1), id="session-expiry-negative"),
    pytest.param(P.CONNECT, Properties(session_expiry_interval=2**32),
                 id="session-expiry-too-large"),
    pytest.param(P.CONNECT, Properties(request_problem_information=2), id="rpi-2"),
    pytest.param(P.PUBLISH, Properties(payload_format_indicator=2), id="pfi-2"),
    pytest.param(P.PUBLISH, Properties(topic_alias=0), id="topic-alias-0"),
    pytest.param(P.PUBLISH, Properties(subscription_identifiers=(0,)), id="sub-id-0"),
    pytest.param(P.PUBLISH, Properties(subscription_identifiers=(268_435_456,)),
                 id="sub-id-too-large"),
    pytest.param(P.SUBSCRIBE, Properties(subscription_identifiers=(1, 2)),
                 id="two-sub-ids-in-subscribe"),
    pytest.param(P.CONNACK, Properties(maximum_qos=2), id="maximum-qos-2"),
    pytest.param(P.CONNACK, Properties(retain_available=True), id="bool-for-byte"),
    pytest.param(P.CONNACK, Properties(reason_string="\x00"), id="string-nul"),
    pytest.param(P.CONNACK, Properties(reason_string="x" * 65536), id="string-too-long"),
    pytest.param(P.CONNACK, Properties(user_properties=(("\udc80", "v"),)),
                 id="user-property-surrogate"),
    pytest.param(P.PUBLISH, Properties(correlation_data=b"x" * 65536), id="binary-too-long"),
    pytest.param(P.AUTH, Properties(authentication_data=b"d"), id="auth-data-without-method"),
]


@pytest.mark.parametrize(("context", "properties"), ENCODE_ERRORS)
def test_invalid_properties_are_not_encoded(context: object, properties: Properties) -> None:
    with pytest.raises(LocalProtocolError):
        encode(CARRIERS[context](properties), MQTT_5)
