"""MQTT 5 properties (spec 2.2.2): the table, and encoding/decoding of :class:`Properties`.

Theory of operation
-------------------
Each property is one row of ``_TABLE``: its identifier, the :class:`Properties` attribute
that holds it, its data type, the packets it may appear in, and a value check. The will
properties of a CONNECT payload are their own context, :data:`WILL_PROPERTIES`, since the
set allowed there differs from the CONNECT's own.

Decoding walks the property block once, rejects unknown identifiers and identifiers not
allowed in the packet (malformed, spec 2.2.2.2), duplicates (protocol error, except User
Property anywhere and Subscription Identifier in PUBLISH), and out-of-range values (the
reason code the spec names for each). Encoding walks the table in order and raises
:class:`LocalProtocolError` for the same conditions. Decoding an empty block returns the
shared :data:`NO_PROPERTIES` without building anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Final

from ._errors import LocalProtocolError, MalformedPacketError, RemoteProtocolError
from ._packets import NO_PROPERTIES, PacketType, Properties
from ._reason import ReasonCode
from ._wire import (
    BYTE,
    MAX_VARINT,
    encode_binary,
    encode_u16,
    encode_u32,
    encode_utf8,
    encode_varint,
    read_binary,
    read_u8,
    read_u16,
    read_u32,
    read_utf8,
    read_utf8_pair,
    read_varint,
)

__all__ = ["WILL_PROPERTIES", "PropertyId", "decode_properties", "encode_properties"]

#: The context of the will properties in a CONNECT payload (not a packet type).
WILL_PROPERTIES: Final = 0


class PropertyId(IntEnum):
    """Property identifiers (spec 2.2.2.2)."""

    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


class _Kind(Enum):
    BYTE = "Byte"
    TWO_BYTE = "Two Byte Integer"
    FOUR_BYTE = "Four Byte Integer"
    VARINT = "Variable Byte Integer"
    UTF8 = "UTF-8 Encoded String"
    BINARY = "Binary Data"
    UTF8_PAIR = "UTF-8 String Pair"


@dataclass(frozen=True, slots=True)
class _Row:
    ident: PropertyId
    attribute: str
    kind: _Kind
    contexts: frozenset[int]
    # A value check beyond the data type, and the reason code when a peer fails it.
    valid: Callable[[int], bool] | None = None
    invalid_reason: ReasonCode = ReasonCode.PROTOCOL_ERROR


def _boolean(value: int) -> bool:
    return value in (0, 1)


def _nonzero(value: int) -> bool:
    return value != 0


_P = PacketType
_W = WILL_PROPERTIES
_MESSAGE = frozenset({_P.PUBLISH, _W})
_ACKS = frozenset({_P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP})
_EVERY = frozenset(
    {_P.CONNECT, _P.CONNACK, _P.PUBLISH, _W, _P.SUBSCRIBE, _P.SUBACK, _P.UNSUBSCRIBE,
     _P.UNSUBACK, _P.DISCONNECT, _P.AUTH} | _ACKS
)
_I = PropertyId
_K = _Kind

_TABLE: Final = (
    _Row(_I.PAYLOAD_FORMAT_INDICATOR, "payload_format_indicator", _K.BYTE, _MESSAGE, _boolean),
    _Row(_I.MESSAGE_EXPIRY_INTERVAL, "message_expiry_interval", _K.FOUR_BYTE, _MESSAGE),
    _Row(_I.CONTENT_TYPE, "content_type", _K.UTF8, _MESSAGE),
    _Row(_I.RESPONSE_TOPIC, "response_topic", _K.UTF8, _MESSAGE),
    _Row(_I.CORRELATION_DATA, "correlation_data", _K.BINARY, _MESSAGE),
    _Row(_I.SUBSCRIPTION_IDENTIFIER, "subscription_identifiers", _K.VARINT,
         frozenset({_P.PUBLISH, _P.SUBSCRIBE}), _nonzero),
    _Row(_I.SESSION_EXPIRY_INTERVAL, "session_expiry_interval", _K.FOUR_BYTE,
         frozenset({_P.CONNECT, _P.CONNACK, _P.DISCONNECT})),
    _Row(_I.ASSIGNED_CLIENT_IDENTIFIER, "assigned_client_identifier", _K.UTF8,
         frozenset({_P.CONNACK})),
    _Row(_I.SERVER_KEEP_ALIVE, "server_keep_alive", _K.TWO_BYTE, frozenset({_P.CONNACK})),
    _Row(_I.AUTHENTICATION_METHOD, "authentication_method", _K.UTF8,
         frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    _Row(_I.AUTHENTICATION_DATA, "authentication_data", _K.BINARY,
         frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    _Row(_I.REQUEST_PROBLEM_INFORMATION, "request_problem_information", _K.BYTE,
         frozenset({_P.CONNECT}), _boolean),
    _Row(_I.WILL_DELAY_INTERVAL, "will_delay_interval", _K.FOUR_BYTE, frozenset({_W})),
    _Row(_I.REQUEST_RESPONSE_INFORMATION, "request_response_information", _K.BYTE,
         frozenset({_P.CONNECT}), _boolean),
    _Row(_I.RESPONSE_INFORMATION, "response_information", _K.UTF8, frozenset({_P.CONNACK})),
    _Row(_I.SERVER_REFERENCE, "server_reference", _K.UTF8,
         frozenset({_P.CONNACK, _P.DISCONNECT})),
    _Row(_I.REASON_STRING, "reason_string", _K.UTF8,
         frozenset({_P.CONNACK, _P.SUBACK, _P.UNSUBACK, _P.DISCONNECT, _P.AUTH}) | _ACKS),
    _Row(_I.RECEIVE_MAXIMUM, "receive_maximum", _K.TWO_BYTE,
         frozenset({_P.CONNECT, _P.CONNACK}), _nonzero),
    _Row(_I.TOPIC_ALIAS_MAXIMUM, "topic_alias_maximum", _K.TWO_BYTE,
         frozenset({_P.CONNECT, _P.CONNACK})),
    _Row(_I.TOPIC_ALIAS, "topic_alias", _K.TWO_BYTE, frozenset({_P.PUBLISH}), _nonzero,
         ReasonCode.TOPIC_ALIAS_INVALID),
    _Row(_I.MAXIMUM_QOS, "maximum_qos", _K.BYTE, frozenset({_P.CONNACK}), _boolean),
    _Row(_I.RETAIN_AVAILABLE, "retain_available", _K.BYTE, frozenset({_P.CONNACK}), _boolean),
    _Row(_I.USER_PROPERTY, "user_properties", _K.UTF8_PAIR, _EVERY),
    _Row(_I.MAXIMUM_PACKET_SIZE, "maximum_packet_size", _K.FOUR_BYTE,
         frozenset({_P.CONNECT, _P.CONNACK}), _nonzero),
    _Row(_I.WILDCARD_SUBSCRIPTION_AVAILABLE, "wildcard_subscription_available", _K.BYTE,
         frozenset({_P.CONNACK}), _boolean),
    _Row(_I.SUBSCRIPTION_IDENTIFIER_AVAILABLE, "subscription_identifier_available", _K.BYTE,
         frozenset({_P.CONNACK}), _boolean),
    _Row(_I.SHARED_SUBSCRIPTION_AVAILABLE, "shared_subscription_available", _K.BYTE,
         frozenset({_P.CONNACK}), _boolean),
)

_BY_ID: Final = {row.ident.value: row for row in _TABLE}


def _read_byte(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    return read_u8(view, pos, end), pos + 1


def _read_two(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    return read_u16(view, pos, end), pos + 2


def _read_four(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    return read_u32(view, pos, end), pos + 4


_Reader = Callable[[memoryview, int, int], tuple[Any, int]]

_READERS: Final[dict[_Kind, _Reader]] = {
    _K.BYTE: _read_byte,
    _K.TWO_BYTE: _read_two,
    _K.FOUR_BYTE: _read_four,
    _K.VARINT: read_varint,
    _K.UTF8: read_utf8,
    _K.BINARY: read_binary,
    _K.UTF8_PAIR: read_utf8_pair,
}


def _context_name(context: int) -> str:
    return "will properties" if context == WILL_PROPERTIES else PacketType(context).name


def decode_properties(
    view: memoryview, pos: int, end: int, context: int
) -> tuple[Properties, int]:
    """Decode the property block (length, then properties) at ``pos``.

    :param context: the :class:`PacketType` of the packet, or :data:`WILL_PROPERTIES`.
    :returns: the properties (:data:`NO_PROPERTIES` for an empty block) and the position
        after the block.
    :raises MalformedPacketError: truncated block, unknown identifier, a property not
        allowed in ``context``, or a value of the wrong data type.
    :raises RemoteProtocolError: a duplicated property (PROTOCOL_ERROR), or a value the
        spec forbids (PROTOCOL_ERROR; TOPIC_ALIAS_INVALID for topic alias 0).
    """
    length, pos = read_varint(view, pos, end)
    if length == 0:
        return NO_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise MalformedPacketError("property length exceeds the packet")
    values: dict[str, Any] = {}
    user_properties: list[tuple[str, str]] = []
    subscription_identifiers: list[int] = []
    while pos < stop:
        ident, pos = read_varint(view, pos, stop)
        row = _BY_ID.get(ident)
        if row is None:
            raise MalformedPacketError(f"unknown property identifier 0x{ident:02x}")
        if context not in row.contexts:
            raise MalformedPacketError(
                f"property {row.attribute} is not allowed in {_context_name(context)}"
            )
        value, pos = _READERS[row.kind](view, pos, stop)
        if row.valid is not None and not row.valid(value):
            raise RemoteProtocolError(
                f"invalid value {value} for property {row.attribute}", row.invalid_reason
            )
        if ident == _I.USER_PROPERTY:
            user_properties.append(value)
        elif ident == _I.SUBSCRIPTION_IDENTIFIER:
            if subscription_identifiers and context != PacketType.PUBLISH:
                raise RemoteProtocolError("subscription identifier repeated")
            subscription_identifiers.append(value)
        elif row.attribute in values:
            raise RemoteProtocolError(f"property {row.attribute} repeated")
        else:
            values[row.attribute] = value
    if user_properties:
        values["user_properties"] = tuple(user_properties)
    if subscription_identifiers:
        values["subscription_identifiers"] = tuple(subscription_identifiers)
    if "authentication_data" in values and "authentication_method" not in values:
        raise RemoteProtocolError("authentication data without authentication method")
    return Properties(**values), stop


def _encode_value(row: _Row, value: Any) -> bytes:
    name = row.attribute
    kind = row.kind
    if kind is _K.UTF8:
        if not isinstance(value, str):
            raise LocalProtocolError(f"property {name} must be a str")
        return encode_utf8(value, f"property {name}")
    if kind is _K.BINARY:
        if not isinstance(value, (bytes, bytearray)):
            raise LocalProtocolError(f"property {name} must be bytes")
        return encode_binary(bytes(value), f"property {name}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"property {name} must be an int")
    if row.valid is not None and not row.valid(value):
        raise LocalProtocolError(f"invalid value {value} for property {name}")
    if kind is _K.BYTE:
        if not 0 <= value <= 0xFF:
            raise LocalProtocolError(f"property {name} {value} is outside 0..255")
        return BYTE[value]
    if kind is _K.TWO_BYTE:
        return encode_u16(value, f"property {name}")
    if kind is _K.FOUR_BYTE:
        return encode_u32(value, f"property {name}")
    if not 1 <= value <= MAX_VARINT:
        raise LocalProtocolError(f"property {name} {value} is outside 1..{MAX_VARINT}")
    return encode_varint(value)


def encode_properties(properties: Properties, context: int) -> bytes:
    """Encode ``properties`` as a property block (length, then properties).

    :param context: the :class:`PacketType` of the packet, or :data:`WILL_PROPERTIES`.
    :raises LocalProtocolError: a property not allowed in ``context``, a value out of range
        for its data type or forbidden by the spec, more than one subscription identifier
        outside PUBLISH, or authentication data without an authentication method.
    """
    if properties is NO_PROPERTIES:
        return b"\x00"
    parts: list[bytes] = []
    for row in _TABLE:
        value = getattr(properties, row.attribute)
        if value is None or value == ():
            continue
        if context not in row.contexts:
            raise LocalProtocolError(
                f"property {row.attribute} is not allowed in {_context_name(context)}"
            )
        ident = BYTE[row.ident]
        if row.kind is _K.UTF8_PAIR:
            for key, item in value:
                parts.append(ident)
                parts.append(encode_utf8(key, "user property name"))
                parts.append(encode_utf8(item, "user property value"))
        elif row.ident is _I.SUBSCRIPTION_IDENTIFIER:
            if len(value) > 1 and context != PacketType.PUBLISH:
                raise LocalProtocolError("at most one subscription identifier outside PUBLISH")
            for item in value:
                parts.append(ident)
                parts.append(_encode_value(row, item))
        else:
            parts.append(ident)
            parts.append(_encode_value(row, value))
    if properties.authentication_data is not None and properties.authentication_method is None:
        raise LocalProtocolError("authentication data without authentication method")
    body = b"".join(parts)
    return encode_varint(len(body)) + body
