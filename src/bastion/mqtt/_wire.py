"""MQTT data representation (spec 3.1.1 and 5.0, section 1.5): the field encodings.

Readers take a ``memoryview`` of the receive buffer, a position and ``end`` (the end of the
packet being decoded) and return the value and the position after it. Reading past
``end`` means a field is truncated inside a complete packet: :class:`MalformedPacketError`.
Readers never keep a slice of the view alive beyond the call (the view is on a resizable
``bytearray``), so every value they return is a copy.

Writers return ``bytes`` and raise :class:`LocalProtocolError` for values MQTT cannot carry:
those are our own mistakes, nothing has been sent.
"""

from __future__ import annotations

from ._errors import LocalProtocolError, MalformedPacketError

#: The largest value a Variable Byte Integer can hold (four bytes).
MAX_VARINT = 268_435_455

#: One-byte ``bytes`` objects, indexed by value (saves a ``bytes((n,))`` per field).
BYTE = tuple(bytes((value,)) for value in range(256))


def read_u8(view: memoryview, pos: int, end: int) -> int:
    """The byte at ``pos``.

    :raises MalformedPacketError: ``pos`` is at or past ``end``.
    """
    if pos >= end:
        raise MalformedPacketError("packet ends inside a one-byte field")
    return view[pos]


def read_u16(view: memoryview, pos: int, end: int) -> int:
    """The Two Byte Integer at ``pos`` (the caller advances by 2).

    :raises MalformedPacketError: fewer than two bytes are left.
    """
    if pos + 2 > end:
        raise MalformedPacketError("packet ends inside a two-byte integer")
    return (view[pos] << 8) | view[pos + 1]


def read_u32(view: memoryview, pos: int, end: int) -> int:
    """The Four Byte Integer at ``pos`` (the caller advances by 4).

    :raises MalformedPacketError: fewer than four bytes are left.
    """
    if pos + 4 > end:
        raise MalformedPacketError("packet ends inside a four-byte integer")
    return (view[pos] << 24) | (view[pos + 1] << 16) | (view[pos + 2] << 8) | view[pos + 3]


def read_varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    """The Variable Byte Integer at ``pos``, and the position after it.

    Non-minimal encodings are accepted; more than four bytes are not.

    :raises MalformedPacketError: the integer is truncated or longer than four bytes.
    """
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise MalformedPacketError("packet ends inside a variable byte integer")
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift == 28:
            raise MalformedPacketError("variable byte integer longer than four bytes")


def read_utf8(view: memoryview, pos: int, end: int) -> tuple[str, int]:
    """The UTF-8 Encoded String at ``pos``, and the position after it.

    :raises MalformedPacketError: truncated, not well-formed UTF-8 (which includes UTF-16
        surrogates), or containing U+0000.
    """
    if pos + 2 > end:
        raise MalformedPacketError("packet ends inside a string length")
    stop = pos + 2 + ((view[pos] << 8) | view[pos + 1])
    if stop > end:
        raise MalformedPacketError("packet ends inside a string")
    try:
        text = str(view[pos + 2 : stop], "utf-8")
    except UnicodeDecodeError:
        raise MalformedPacketError("string is not well-formed UTF-8") from None
    if "\x00" in text:
        raise MalformedPacketError("string contains U+0000")
    return text, stop


def read_binary(view: memoryview, pos: int, end: int) -> tuple[bytes, int]:
    """The Binary Data at ``pos``, and the position after it.

    :raises MalformedPacketError: truncated.
    """
    if pos + 2 > end:
        raise MalformedPacketError("packet ends inside a binary data length")
    stop = pos + 2 + ((view[pos] << 8) | view[pos + 1])
    if stop > end:
        raise MalformedPacketError("packet ends inside binary data")
    return bytes(view[pos + 2 : stop]), stop


def read_utf8_pair(view: memoryview, pos: int, end: int) -> tuple[tuple[str, str], int]:
    """The UTF-8 String Pair at ``pos``, and the position after it.

    :raises MalformedPacketError: as :func:`read_utf8`, for either string.
    """
    key, pos = read_utf8(view, pos, end)
    value, pos = read_utf8(view, pos, end)
    return (key, value), pos


def encode_varint(value: int) -> bytes:
    """``value`` as a minimal Variable Byte Integer.

    :raises LocalProtocolError: ``value`` is negative or above :data:`MAX_VARINT`.
    """
    if 0 <= value < 128:
        return BYTE[value]
    if not 0 <= value <= MAX_VARINT:
        raise LocalProtocolError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_u16(value: int, what: str) -> bytes:
    """``value`` as a Two Byte Integer.

    :raises LocalProtocolError: ``value`` is outside 0..65535.
    """
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{what} {value} is outside 0..65535")
    return value.to_bytes(2, "big")


def encode_u32(value: int, what: str) -> bytes:
    """``value`` as a Four Byte Integer.

    :raises LocalProtocolError: ``value`` is outside 0..2**32-1.
    """
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{what} {value} is outside 0..4294967295")
    return value.to_bytes(4, "big")


def encode_utf8(text: str, what: str) -> bytes:
    """``text`` as a UTF-8 Encoded String (two-byte length, then the bytes).

    :raises LocalProtocolError: ``text`` holds a lone surrogate or U+0000, or encodes to
        more than 65535 bytes.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{what} is not representable in UTF-8") from None
    if len(data) > 0xFFFF:
        raise LocalProtocolError(f"{what} is longer than 65535 bytes")
    if b"\x00" in data:
        raise LocalProtocolError(f"{what} contains U+0000")
    return len(data).to_bytes(2, "big") + data


def encode_binary(data: bytes, what: str) -> bytes:
    """``data`` as Binary Data (two-byte length, then the bytes).

    :raises LocalProtocolError: ``data`` is longer than 65535 bytes.
    """
    if len(data) > 0xFFFF:
        raise LocalProtocolError(f"{what} is longer than 65535 bytes")
    return len(data).to_bytes(2, "big") + bytes(data)


def fixed_header(first_byte: int, body_length: int) -> bytes:
    """The fixed header of a packet whose variable header and payload are ``body_length``.

    :raises LocalProtocolError: the body is longer than a packet can be.
    """
    if body_length > MAX_VARINT:
        raise LocalProtocolError("packet is longer than MQTT allows (268435455 bytes)")
    return BYTE[first_byte] + encode_varint(body_length)
