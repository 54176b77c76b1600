"""Decoding of packet bodies (variable header and payload), one function per packet type.

Each reader gets the fixed-header flags, a view of the receive buffer, the position of the
variable header and the end of the packet; the fixed header itself has already been checked
by :func:`check_fixed_header`. Every reader consumes exactly ``end - pos`` bytes or raises:
bytes left over, or a field running past ``end``, make the packet malformed.

Which reason code the peer sees follows the spec: :class:`MalformedPacketError` (0x81) where
the spec says "Malformed Packet", :class:`RemoteProtocolError` with 0x82 where it says
"Protocol Error", and the specific code where it names one (0x90 Topic Name invalid,
0x84 Unsupported Protocol Version).
"""

from __future__ import annotations

from collections.abc import Callable

from ._errors import (
    MalformedPacketError,
    RemoteProtocolError,
    UnsupportedProtocolVersionError,
)
from ._packet_rules import (
    REASONS_BY_PACKET,
    REQUIRED_FLAGS,
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
    RetainHandling,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from ._properties import WILL_PROPERTIES, decode_properties
from ._reason import ReasonCode, reason_from_connack_v3
from ._wire import read_binary, read_u8, read_u16, read_utf8

__all__ = ["check_fixed_header", "read_packet"]

_Reasons = dict[int, ReasonCode]

# value -> ReasonCode, per packet type: one dict lookup validates and converts.
_REASON_LOOKUP: dict[PacketType, _Reasons] = {
    packet_type: {code.value: code for code in codes}
    for packet_type, codes in REASONS_BY_PACKET.items()
}
_SUBACK_V3_LOOKUP: _Reasons = {code.value: code for code in SUBACK_RETURN_CODES_V3}


def check_fixed_header(first_byte: int, version: int) -> None:
    """Check the packet type and flags of a fixed header, before its body is buffered.

    :param version: the protocol version the packet is read under.
    :raises MalformedPacketError: packet type 0, packet type 15 (AUTH) before MQTT 5,
        reserved flag bits not as the spec fixes them, PUBLISH with QoS 3, or PUBLISH with
        DUP set and QoS 0.
    """
    packet_type = first_byte >> 4
    flags = first_byte & 0x0F
    if packet_type == PacketType.PUBLISH:
        qos = (flags >> 1) & 3
        if qos == 3:
            raise MalformedPacketError("PUBLISH with QoS 3")
        if flags & 0x08 and not qos:
            raise MalformedPacketError("PUBLISH with DUP set and QoS 0")
        return
    if packet_type == 0:
        raise MalformedPacketError("reserved packet type 0")
    if packet_type == PacketType.AUTH and version != MQTT_5:
        raise MalformedPacketError("AUTH packet before MQTT 5")
    if REQUIRED_FLAGS[packet_type] != flags:
        raise MalformedPacketError(
            f"reserved flags 0x{flags:x} in {PacketType(packet_type).name} fixed header"
        )


def _reason(view: memoryview, pos: int, end: int, lookup: _Reasons, what: str) -> ReasonCode:
    value = read_u8(view, pos, end)
    code = lookup.get(value)
    if code is None:
        raise MalformedPacketError(f"reason code 0x{value:02x} is not valid in {what}")
    return code


def _packet_id(view: memoryview, pos: int, end: int) -> int:
    packet_id = read_u16(view, pos, end)
    if packet_id == 0:
        raise MalformedPacketError("packet identifier 0")
    return packet_id


def _end_of_packet(pos: int, end: int, what: str) -> None:
    if pos != end:
        raise MalformedPacketError(f"{end - pos} unexpected bytes at the end of {what}")


def _check_topic_name(topic: str, what: str) -> None:
    if has_wildcard(topic):
        raise RemoteProtocolError(f"{what} contains a wildcard", ReasonCode.TOPIC_NAME_INVALID)


def _read_connect(flags: int, view: memoryview, pos: int, end: int, version: int) -> Connect:
    name, pos = read_utf8(view, pos, end)
    level = read_u8(view, pos, end)
    if name == "MQTT":
        if level not in (MQTT_3_1_1, MQTT_5):
            raise UnsupportedProtocolVersionError(f"unsupported protocol level {level}", level)
    elif name == "MQIsdp":
        if level != MQTT_3_1:
            raise UnsupportedProtocolVersionError(f"unsupported protocol level {level}", level)
    else:
        raise MalformedPacketError("unknown protocol name in CONNECT")
    v5 = level == MQTT_5
    connect_flags = read_u8(view, pos + 1, end)
    if connect_flags & 0x01:
        raise MalformedPacketError("reserved CONNECT flag set")
    will_flag = connect_flags & 0x04
    will_qos = (connect_flags >> 3) & 3
    will_retain = bool(connect_flags & 0x20)
    if not will_flag and (will_qos or will_retain):
        raise MalformedPacketError("will QoS or will retain set without the will flag")
    if will_qos == 3:
        raise MalformedPacketError("will QoS 3")
    has_password = connect_flags & 0x40
    has_username = connect_flags & 0x80
    if has_password and not has_username and not v5:
        raise MalformedPacketError("password without user name")
    keep_alive = read_u16(view, pos + 2, end)
    pos += 4
    properties = NO_PROPERTIES
    if v5:
        properties, pos = decode_properties(view, pos, end, PacketType.CONNECT)
    client_id, pos = read_utf8(view, pos, end)
    will = None
    if will_flag:
        will_properties = NO_PROPERTIES
        if v5:
            will_properties, pos = decode_properties(view, pos, end, WILL_PROPERTIES)
        will_topic, pos = read_utf8(view, pos, end)
        if not will_topic:
            raise RemoteProtocolError("empty will topic", ReasonCode.TOPIC_NAME_INVALID)
        _check_topic_name(will_topic, "will topic")
        will_payload, pos = read_binary(view, pos, end)
        will = Will(will_topic, will_payload, will_qos, will_retain, will_properties)
    username = password = None
    if has_username:
        username, pos = read_utf8(view, pos, end)
    if has_password:
        password, pos = read_binary(view, pos, end)
    _end_of_packet(pos, end, "CONNECT")
    return Connect(client_id, level, bool(connect_flags & 0x02), keep_alive, username,
                   password, will, properties)


def _read_connack(flags: int, view: memoryview, pos: int, end: int, version: int) -> Connack:
    acknowledge = read_u8(view, pos, end)
    if acknowledge & 0xFE:
        raise MalformedPacketError("reserved CONNACK flags set")
    session_present = bool(acknowledge)
    properties = NO_PROPERTIES
    if version == MQTT_5:
        reason = _reason(view, pos + 1, end, _REASON_LOOKUP[PacketType.CONNACK], "CONNACK")
        properties, pos = decode_properties(view, pos + 2, end, PacketType.CONNACK)
    else:
        try:
            reason = reason_from_connack_v3(read_u8(view, pos + 1, end))
        except ValueError:
            raise MalformedPacketError("unknown CONNACK return code") from None
        pos += 2
    if session_present and reason.is_error:
        raise MalformedPacketError("session present with an error CONNACK")
    _end_of_packet(pos, end, "CONNACK")
    return Connack(session_present, reason, properties)


def read_publish(flags: int, view: memoryview, pos: int, end: int, version: int) -> Publish:
    """The body of a PUBLISH (see :func:`read_packet`)."""
    # The hot path: inlined field reads, no Properties built for an empty block.
    if pos + 2 > end:
        raise MalformedPacketError("packet ends inside the topic length")
    stop = pos + 2 + ((view[pos] << 8) | view[pos + 1])
    if stop > end:
        raise MalformedPacketError("packet ends inside the topic")
    try:
        topic = str(view[pos + 2 : stop], "utf-8")
    except UnicodeDecodeError:
        raise MalformedPacketError("topic is not well-formed UTF-8") from None
    if "\x00" in topic:
        raise MalformedPacketError("topic contains U+0000")
    if "+" in topic or "#" in topic:
        raise RemoteProtocolError("topic name contains a wildcard",
                                  ReasonCode.TOPIC_NAME_INVALID)
    pos = stop
    qos = (flags >> 1) & 3
    packet_id = None
    if qos:
        packet_id = _packet_id(view, pos, end)
        pos += 2
    properties = NO_PROPERTIES
    if version == MQTT_5:
        if pos >= end:
            raise MalformedPacketError("PUBLISH ends before its properties")
        if view[pos] == 0:
            pos += 1
        else:
            properties, pos = decode_properties(view, pos, end, PacketType.PUBLISH)
        if not topic and properties.topic_alias is None:
            raise RemoteProtocolError("empty topic name without a topic alias")
    elif not topic:
        raise RemoteProtocolError("empty topic name", ReasonCode.TOPIC_NAME_INVALID)
    return Publish(topic, bytes(view[pos:end]), qos, bool(flags & 0x01), bool(flags & 0x08),
                   packet_id, properties)


_Ack = Puback | Pubrec | Pubrel | Pubcomp


def _ack_reader(
    cls: type[Puback | Pubrec | Pubrel | Pubcomp],
) -> Callable[[int, memoryview, int, int, int], _Ack]:
    packet_type = cls.packet_type
    lookup = _REASON_LOOKUP[packet_type]
    what = packet_type.name

    def read(flags: int, view: memoryview, pos: int, end: int, version: int) -> _Ack:
        packet_id = _packet_id(view, pos, end)
        pos += 2
        if pos == end or version != MQTT_5:
            _end_of_packet(pos, end, what)
            return cls(packet_id)
        reason = _reason(view, pos, end, lookup, what)
        pos += 1
        properties = NO_PROPERTIES
        if pos < end:
            properties, pos = decode_properties(view, pos, end, packet_type)
        _end_of_packet(pos, end, what)
        return cls(packet_id, reason, properties)

    return read


def _empty_payload(what: str, version: int) -> RemoteProtocolError:
    if version == MQTT_5:
        return RemoteProtocolError(f"{what} without a topic filter")
    return MalformedPacketError(f"{what} without a topic filter")


def _read_subscribe(flags: int, view: memoryview, pos: int, end: int, version: int) -> Subscribe:
    packet_id = _packet_id(view, pos, end)
    pos += 2
    properties = NO_PROPERTIES
    v5 = version == MQTT_5
    if v5:
        properties, pos = decode_properties(view, pos, end, PacketType.SUBSCRIBE)
    subscriptions = []
    while pos < end:
        topic_filter, pos = read_utf8(view, pos, end)
        options = read_u8(view, pos, end)
        pos += 1
        qos = options & 0x03
        if not v5:
            if options & 0xFC or qos == 3:
                raise MalformedPacketError("invalid subscription options")
            subscriptions.append(Subscription(topic_filter, qos))
            continue
        if options & 0xC0:
            raise MalformedPacketError("reserved subscription option bits set")
        if qos == 3:
            raise RemoteProtocolError("subscription with maximum QoS 3")
        retain_handling = (options >> 4) & 0x03
        if retain_handling == 3:
            raise RemoteProtocolError("subscription with retain handling 3")
        no_local = bool(options & 0x04)
        if no_local and topic_filter.startswith(SHARED_PREFIX):
            raise RemoteProtocolError("no local set on a shared subscription")
        subscriptions.append(Subscription(topic_filter, qos, no_local, bool(options & 0x08),
                                          RetainHandling(retain_handling)))
    if not subscriptions:
        raise _empty_payload("SUBSCRIBE", version)
    return Subscribe(packet_id, tuple(subscriptions), properties)


def _read_suback(flags: int, view: memoryview, pos: int, end: int, version: int) -> Suback:
    packet_id = _packet_id(view, pos, end)
    pos += 2
    properties = NO_PROPERTIES
    if version == MQTT_5:
        properties, pos = decode_properties(view, pos, end, PacketType.SUBACK)
        lookup = _REASON_LOOKUP[PacketType.SUBACK]
    else:
        lookup = _SUBACK_V3_LOOKUP
    codes = tuple(_reason(view, index, end, lookup, "SUBACK") for index in range(pos, end))
    if not codes:
        raise MalformedPacketError("SUBACK without a reason code")
    return Suback(packet_id, codes, properties)


def _read_unsubscribe(
    flags: int, view: memoryview, pos: int, end: int, version: int
) -> Unsubscribe:
    packet_id = _packet_id(view, pos, end)
    pos += 2
    properties = NO_PROPERTIES
    if version == MQTT_5:
        properties, pos = decode_properties(view, pos, end, PacketType.UNSUBSCRIBE)
    topic_filters = []
    while pos < end:
        topic_filter, pos = read_utf8(view, pos, end)
        topic_filters.append(topic_filter)
    if not topic_filters:
        raise _empty_payload("UNSUBSCRIBE", version)
    return Unsubscribe(packet_id, tuple(topic_filters), properties)


def _read_unsuback(flags: int, view: memoryview, pos: int, end: int, version: int) -> Unsuback:
    packet_id = _packet_id(view, pos, end)
    pos += 2
    if version != MQTT_5:
        _end_of_packet(pos, end, "UNSUBACK")
        return Unsuback(packet_id)
    properties, pos = decode_properties(view, pos, end, PacketType.UNSUBACK)
    lookup = _REASON_LOOKUP[PacketType.UNSUBACK]
    codes = tuple(_reason(view, index, end, lookup, "UNSUBACK") for index in range(pos, end))
    if not codes:
        raise MalformedPacketError("UNSUBACK without a reason code")
    return Unsuback(packet_id, codes, properties)


def _read_pingreq(flags: int, view: memoryview, pos: int, end: int, version: int) -> Pingreq:
    _end_of_packet(pos, end, "PINGREQ")
    return Pingreq()


def _read_pingresp(flags: int, view: memoryview, pos: int, end: int, version: int) -> Pingresp:
    _end_of_packet(pos, end, "PINGRESP")
    return Pingresp()


def _read_reason_and_properties(
    view: memoryview, pos: int, end: int, packet_type: PacketType
) -> tuple[ReasonCode, Properties]:
    """DISCONNECT and AUTH (MQTT 5): both fields may be left out, in that order."""
    if pos == end:
        return ReasonCode.SUCCESS, NO_PROPERTIES
    reason = _reason(view, pos, end, _REASON_LOOKUP[packet_type], packet_type.name)
    pos += 1
    properties = NO_PROPERTIES
    if pos < end:
        properties, pos = decode_properties(view, pos, end, packet_type)
    _end_of_packet(pos, end, packet_type.name)
    return reason, properties


def _read_disconnect(
    flags: int, view: memoryview, pos: int, end: int, version: int
) -> Disconnect:
    if version != MQTT_5:
        _end_of_packet(pos, end, "DISCONNECT")
        return Disconnect()
    return Disconnect(*_read_reason_and_properties(view, pos, end, PacketType.DISCONNECT))


def _read_auth(flags: int, view: memoryview, pos: int, end: int, version: int) -> Auth:
    return Auth(*_read_reason_and_properties(view, pos, end, PacketType.AUTH))


_Reader = Callable[[int, memoryview, int, int, int], Packet]

_READERS: dict[int, _Reader] = {
    PacketType.CONNECT: _read_connect,
    PacketType.CONNACK: _read_connack,
    PacketType.PUBLISH: read_publish,
    PacketType.PUBACK: _ack_reader(Puback),
    PacketType.PUBREC: _ack_reader(Pubrec),
    PacketType.PUBREL: _ack_reader(Pubrel),
    PacketType.PUBCOMP: _ack_reader(Pubcomp),
    PacketType.SUBSCRIBE: _read_subscribe,
    PacketType.SUBACK: _read_suback,
    PacketType.UNSUBSCRIBE: _read_unsubscribe,
    PacketType.UNSUBACK: _read_unsuback,
    PacketType.PINGREQ: _read_pingreq,
    PacketType.PINGRESP: _read_pingresp,
    PacketType.DISCONNECT: _read_disconnect,
    PacketType.AUTH: _read_auth,
}


def read_packet(first_byte: int, view: memoryview, pos: int, end: int, version: int) -> Packet:
    """Decode the body of one packet whose fixed header passed :func:`check_fixed_header`.

    :param first_byte: the first byte of the fixed header (type and flags).
    :param view: the buffer holding the packet.
    :param pos: where the variable header starts.
    :param end: where the packet ends.
    :param version: the protocol version (a CONNECT carries and uses its own).
    :raises MalformedPacketError: the body breaks a "Malformed Packet" rule.
    :raises UnsupportedProtocolVersionError: a CONNECT with a protocol level other than
        3, 4 or 5 (or one that does not match the protocol name).
    :raises RemoteProtocolError: the body breaks a rule the spec calls a protocol error.
    """
    return _READERS[first_byte >> 4](first_byte & 0x0F, view, pos, end, version)
