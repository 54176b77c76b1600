"""Encoding of packets: :func:`encode`, and the PUBLISH fast path used per delivery.

The writer validates what it writes, so that a bug on our side never reaches a peer as a
malformed packet: every violation raises :class:`LocalProtocolError` and nothing is
returned. For MQTT 3.1/3.1.1 the fields that version cannot carry are dropped (properties,
reason codes of acknowledgements, MQTT 5 subscription options) or mapped (CONNACK reason
to return code, SUBACK errors to 0x80); AUTH has no 3.1.1 form and is refused.

Fan-out: the broker encodes a PUBLISH once per (version, QoS) with :func:`encode_publish`
and stamps each receiver's packet identifier (and DUP) into a copy with
:func:`with_packet_id`; no packet object is built on that path.
"""

from __future__ import annotations

from ._errors import LocalProtocolError
from ._packet_rules import (
    REASONS_BY_PACKET,
    SHARED_PREFIX,
    SUBACK_RETURN_CODES_V3,
    has_wildcard,
)
from ._packets import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from ._properties import WILL_PROPERTIES, encode_properties
from ._reason import ReasonCode, connack_code_v3
from ._wire import (
    BYTE,
    encode_binary,
    encode_u16,
    encode_utf8,
    fixed_header,
)

__all__ = ["encode", "encode_publish", "publish_packet_id_offset", "with_packet_id"]

_VERSIONS = (MQTT_3_1, MQTT_3_1_1, MQTT_5)


def _check_version(version: int) -> None:
    if version not in _VERSIONS:
        raise LocalProtocolError(f"unknown protocol version {version}")


def _packet_id_bytes(packet_id: int | None) -> bytes:
    if packet_id is None or not 1 <= packet_id <= 0xFFFF:
        raise LocalProtocolError(f"packet identifier {packet_id} is outside 1..65535")
    return packet_id.to_bytes(2, "big")


def _check_reason(reason: ReasonCode, packet_type: PacketType) -> None:
    if reason not in REASONS_BY_PACKET[packet_type]:
        raise LocalProtocolError(f"reason code {reason.name} is not valid in {packet_type.name}")


def _check_qos(qos: int, what: str) -> None:
    if qos not in (0, 1, 2):
        raise LocalProtocolError(f"{what} QoS {qos} is not 0, 1 or 2")


def _packet(first_byte: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return fixed_header(first_byte, len(body)) + body


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    packet_id: int | None,
    version: int,
    properties: Properties = NO_PROPERTIES,
    dup: bool = False,
) -> bytes:
    """Encode a PUBLISH without building a :class:`Publish`.

    :param packet_id: required (1..65535) when ``qos > 0``, ``None`` for QoS 0.
    :param properties: ignored for MQTT 3.1/3.1.1.
    :returns: the whole packet.
    :raises LocalProtocolError: QoS not 0..2, packet id missing, present or out of range,
        DUP on QoS 0, a topic that is not a valid topic name (empty without a topic alias,
        wildcards, U+0000, not UTF-8, longer than 65535 bytes), a property not allowed in
        PUBLISH, or an unknown ``version``.
    """
    try:
        topic_bytes = topic.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError("topic is not representable in UTF-8") from None
    topic_length = len(topic_bytes)
    if topic_length > 0xFFFF:
        raise LocalProtocolError("topic is longer than 65535 bytes")
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise LocalProtocolError(f"topic name {topic!r} contains a wildcard or U+0000")
    if qos:
        _check_qos(qos, "PUBLISH")
        packet_id_bytes = _packet_id_bytes(packet_id)
    else:
        if packet_id is not None:
            raise LocalProtocolError("QoS 0 PUBLISH with a packet identifier")
        if dup:
            raise LocalProtocolError("QoS 0 PUBLISH with DUP set")
        packet_id_bytes = b""
    if version == MQTT_5:
        if properties is NO_PROPERTIES:
            property_bytes = b"\x00"
        else:
            property_bytes = encode_properties(properties, PacketType.PUBLISH)
        if not topic_length and properties.topic_alias is None:
            raise LocalProtocolError("empty topic name without a topic alias")
    else:
        _check_version(version)
        if not topic_length:
            raise LocalProtocolError("empty topic name")
        property_bytes = b""
    first_byte = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    remaining = 2 + topic_length + len(packet_id_bytes) + len(property_bytes) + len(payload)
    return b"".join((fixed_header(first_byte, remaining), topic_length.to_bytes(2, "big"),
                     topic_bytes, packet_id_bytes, property_bytes, payload))


def publish_packet_id_offset(encoded: bytes) -> int:
    """Where the packet identifier sits in an encoded QoS 1/2 PUBLISH.

    :raises LocalProtocolError: ``encoded`` is not a QoS 1 or 2 PUBLISH.
    """
    if len(encoded) < 2 or encoded[0] >> 4 != PacketType.PUBLISH or not encoded[0] & 0x06:
        raise LocalProtocolError("not an encoded QoS 1/2 PUBLISH")
    pos = 1
    while encoded[pos] & 0x80:
        pos += 1
    pos += 1
    return pos + 2 + ((encoded[pos] << 8) | encoded[pos + 1])


def with_packet_id(encoded: bytes, packet_id: int, dup: bool = False) -> bytes:
    """A copy of an encoded QoS 1/2 PUBLISH with ``packet_id`` and the DUP flag set.

    :raises LocalProtocolError: ``encoded`` is not a QoS 1/2 PUBLISH, or ``packet_id`` is
        outside 1..65535.
    """
    offset = publish_packet_id_offset(encoded)
    first_byte = encoded[0] | 0x08 if dup else encoded[0] & 0xF7
    view = memoryview(encoded)
    return b"".join((BYTE[first_byte], view[1:offset], _packet_id_bytes(packet_id),
                     view[offset + 2 :]))


def _encode_connect(packet: Connect, version: int) -> bytes:
    level = packet.protocol_version
    if level not in _VERSIONS or (level == MQTT_5) != (version == MQTT_5):
        raise LocalProtocolError(
            f"CONNECT with protocol level {level} cannot be encoded as version {version}"
        )
    v5 = level == MQTT_5
    flags = 0x02 if packet.clean_start else 0
    parts = [b"\x00\x06MQIsdp" if level == MQTT_3_1 else b"\x00\x04MQTT", BYTE[level], b"",
             encode_u16(packet.keep_alive, "keep alive")]
    if v5:
        parts.append(encode_properties(packet.properties, PacketType.CONNECT))
    parts.append(encode_utf8(packet.client_id, "client identifier"))
    will = packet.will
    if will is not None:
        _check_qos(will.qos, "will")
        if not will.topic or has_wildcard(will.topic):
            raise LocalProtocolError(f"will topic {will.topic!r} is not a valid topic name")
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        if v5:
            parts.append(encode_properties(will.properties, WILL_PROPERTIES))
        parts.append(encode_utf8(will.topic, "will topic"))
        parts.append(encode_binary(will.payload, "will payload"))
    if packet.username is not None:
        flags |= 0x80
        parts.append(encode_utf8(packet.username, "user name"))
    if packet.password is not None:
        if packet.username is None and not v5:
            raise LocalProtocolError("password without user name before MQTT 5")
        flags |= 0x40
        parts.append(encode_binary(packet.password, "password"))
    parts[2] = BYTE[flags]
    return _packet(0x10, *parts)


def _encode_connack(packet: Connack, version: int) -> bytes:
    reason = packet.reason_code
    if packet.session_present and reason.is_error:
        raise LocalProtocolError("session present with an error CONNACK")
    if version == MQTT_5:
        _check_reason(reason, PacketType.CONNACK)
        return _packet(0x20, BYTE[1 if packet.session_present else 0], BYTE[reason],
                       encode_properties(packet.properties, PacketType.CONNACK))
    # MQTT 3.1 has no session present flag.
    session_present = packet.session_present and version == MQTT_3_1_1
    return bytes((0x20, 2, 1 if session_present else 0, connack_code_v3(reason)))


def _encode_ack(
    first_byte: int, packet: Puback | Pubrec | Pubrel | Pubcomp, version: int
) -> bytes:
    packet_id = _packet_id_bytes(packet.packet_id)
    if version != MQTT_5:
        return bytes((first_byte, 2)) + packet_id
    reason = packet.reason_code
    _check_reason(reason, packet.packet_type)
    properties = packet.properties
    if properties is NO_PROPERTIES or properties == NO_PROPERTIES:
        if reason is ReasonCode.SUCCESS:
            return bytes((first_byte, 2)) + packet_id
        return bytes((first_byte, 3)) + packet_id + BYTE[reason]
    return _packet(first_byte, packet_id, BYTE[reason],
                   encode_properties(properties, packet.packet_type))


def _encode_subscribe(packet: Subscribe, version: int) -> bytes:
    if not packet.subscriptions:
        raise LocalProtocolError("SUBSCRIBE without a subscription")
    v5 = version == MQTT_5
    parts = [_packet_id_bytes(packet.packet_id)]
    if v5:
        parts.append(encode_properties(packet.properties, PacketType.SUBSCRIBE))
    for subscription in packet.subscriptions:
        _check_qos(subscription.qos, "subscription")
        options = subscription.qos
        if v5:
            if subscription.retain_handling not in (0, 1, 2):
                raise LocalProtocolError("retain handling is not 0, 1 or 2")
            if subscription.no_local and subscription.topic_filter.startswith(SHARED_PREFIX):
                raise LocalProtocolError("no local on a shared subscription")
            options |= (
                (0x04 if subscription.no_local else 0)
                | (0x08 if subscription.retain_as_published else 0)
                | (subscription.retain_handling << 4)
            )
        parts.append(encode_utf8(subscription.topic_filter, "topic filter"))
        parts.append(BYTE[options])
    return _packet(0x82, *parts)


def _encode_suback(packet: Suback, version: int) -> bytes:
    if not packet.reason_codes:
        raise LocalProtocolError("SUBACK without a reason code")
    parts = [_packet_id_bytes(packet.packet_id)]
    if version == MQTT_5:
        parts.append(encode_properties(packet.properties, PacketType.SUBACK))
        for reason in packet.reason_codes:
            _check_reason(reason, PacketType.SUBACK)
        parts.append(bytes(packet.reason_codes))
    else:
        parts.append(bytes(
            code if code in SUBACK_RETURN_CODES_V3 else ReasonCode.UNSPECIFIED_ERROR
            for code in packet.reason_codes
        ))
    return _packet(0x90, *parts)


def _encode_unsubscribe(packet: Unsubscribe, version: int) -> bytes:
    if not packet.topic_filters:
        raise LocalProtocolError("UNSUBSCRIBE without a topic filter")
    parts = [_packet_id_bytes(packet.packet_id)]
    if version == MQTT_5:
        parts.append(encode_properties(packet.properties, PacketType.UNSUBSCRIBE))
    parts.extend(encode_utf8(topic_filter, "topic filter") for topic_filter in packet.topic_filters)
    return _packet(0xA2, *parts)


def _encode_unsuback(packet: Unsuback, version: int) -> bytes:
    packet_id = _packet_id_bytes(packet.packet_id)
    if version != MQTT_5:
        return b"\xb0\x02" + packet_id
    if not packet.reason_codes:
        raise LocalProtocolError("MQTT 5 UNSUBACK without a reason code")
    for reason in packet.reason_codes:
        _check_reason(reason, PacketType.UNSUBACK)
    return _packet(0xB0, packet_id, encode_properties(packet.properties, PacketType.UNSUBACK),
                   bytes(packet.reason_codes))


def _encode_reason_and_properties(
    first_byte: int, packet: Disconnect | Auth, version: int
) -> bytes:
    if version != MQTT_5:
        if isinstance(packet, Auth):
            raise LocalProtocolError("AUTH does not exist before MQTT 5")
        return b"\xe0\x00"
    reason = packet.reason_code
    _check_reason(reason, packet.packet_type)
    properties = packet.properties
    if properties is NO_PROPERTIES or properties == NO_PROPERTIES:
        if reason is ReasonCode.SUCCESS:
            return bytes((first_byte, 0))
        return bytes((first_byte, 1, reason))
    return _packet(first_byte, BYTE[reason], encode_properties(properties, packet.packet_type))


def encode(packet: Packet, version: int) -> bytes:
    """Encode ``packet`` for a peer speaking ``version`` (3, 4 or 5).

    A CONNECT is encoded with its own ``protocol_version``, which must be 5 exactly when
    ``version`` is 5.

    :returns: the whole packet, fixed header included.
    :raises LocalProtocolError: the packet cannot be encoded as asked: unknown version, AUTH
        before MQTT 5, packet identifier missing or outside 1..65535, QoS outside 0..2, a
        reason code or property not allowed in the packet, an empty SUBSCRIBE, SUBACK,
        UNSUBSCRIBE (or MQTT 5 UNSUBACK), a string that is not valid MQTT UTF-8 or longer
        than 65535 bytes, or a packet longer than MQTT allows.
    :raises TypeError: ``packet`` is not a packet.
    """
    _check_version(version)
    match packet:
        case Publish():
            return encode_publish(packet.topic, packet.payload, packet.qos, packet.retain,
                                  packet.packet_id, version, packet.properties, packet.dup)
        case Puback():
            return _encode_ack(0x40, packet, version)
        case Pubrec():
            return _encode_ack(0x50, packet, version)
        case Pubrel():
            return _encode_ack(0x62, packet, version)
        case Pubcomp():
            return _encode_ack(0x70, packet, version)
        case Pingreq():
            return b"\xc0\x00"
        case Pingresp():
            return b"\xd0\x00"
        case Connect():
            return _encode_connect(packet, version)
        case Connack():
            return _encode_connack(packet, version)
        case Subscribe():
            return _encode_subscribe(packet, version)
        case Suback():
            return _encode_suback(packet, version)
        case Unsubscribe():
            return _encode_unsubscribe(packet, version)
        case Unsuback():
            return _encode_unsuback(packet, version)
        case Disconnect():
            return _encode_reason_and_properties(0xE0, packet, version)
        case Auth():
            return _encode_reason_and_properties(0xF0, packet, version)
    raise TypeError(f"not an MQTT packet: {type(packet).__name__}")
