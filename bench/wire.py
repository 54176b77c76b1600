"""Just enough MQTT 3.1.1 on the wire for a load generator, hand-encoded.

The benchmark must not depend on the broker it measures, so it does not import
``bastion.mqtt``: the few packets it sends are built here once, as bytes, and the
packets it receives are framed by :class:`FrameReader`, which reads only the fixed
header and the remaining length of each packet (plus, for PUBLISH, the packet id and the
first payload bytes when asked). That is all a counter needs, and it keeps the
per-message cost of the generator far below a broker's.
"""

from __future__ import annotations

from collections.abc import Iterator

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

PUBACK_PREFIX = b"\x40\x02"


class WireError(Exception):
    """The peer sent something this generator cannot frame or did not expect."""


def encode_remaining_length(length: int) -> bytes:
    """Encode an MQTT variable byte integer (spec 2.2.3).

    :raises ValueError: if ``length`` is negative or above 268,435,455.
    """
    if not 0 <= length <= 268_435_455:
        raise ValueError(f"remaining length out of range: {length}")
    out = bytearray()
    while True:
        digit, length = length % 128, length // 128
        out.append(digit | 0x80 if length else digit)
        if not length:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + encode_remaining_length(len(body)) + body


def encode_connect(
    client_id: str,
    *,
    keep_alive: int = 60,
    username: str | None = None,
    clean_session: bool = True,
) -> bytes:
    """A CONNECT (MQTT 3.1.1, protocol level 4), with clean session set unless asked for a
    persistent session (``clean_session=False``)."""
    flags = (0x02 if clean_session else 0) | (0x80 if username is not None else 0)
    body = _utf8("MQTT") + bytes([4, flags]) + keep_alive.to_bytes(2, "big") + _utf8(client_id)
    if username is not None:
        body += _utf8(username)
    return _packet(CONNECT, body)


def encode_subscribe(packet_id: int, topic_filter: str, qos: int) -> bytes:
    """A SUBSCRIBE for one topic filter."""
    return encode_subscribe_many(packet_id, [(topic_filter, qos)])


def encode_subscribe_many(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    """A SUBSCRIBE for several ``(topic filter, QoS)`` pairs (one SUBACK answers them all).

    :raises ValueError: if ``filters`` is empty (MQTT 3.1.1, 3.8.3-3).
    """
    if not filters:
        raise ValueError("a SUBSCRIBE needs at least one topic filter")
    body = packet_id.to_bytes(2, "big") + b"".join(_utf8(f) + bytes([q]) for f, q in filters)
    return _packet(SUBSCRIBE, body)


def encode_publish(topic: str, payload: bytes, *, qos: int = 0, packet_id: int = 0) -> bytes:
    """A PUBLISH (no DUP, no RETAIN). ``packet_id`` is written only for QoS 1."""
    if qos not in (0, 1):
        raise ValueError("the generator speaks QoS 0 and 1 only")
    body = _utf8(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return _packet(PUBLISH | (qos << 1), body)


def publish_prefix(topic: str, payload_length: int, qos: int) -> bytes:
    """The bytes of a PUBLISH up to (excluding) its packet id (QoS 1) or payload (QoS 0).

    Lets a sender build packets with per-message packet ids or timestamps by plain
    concatenation: ``prefix + packet_id + payload``.
    """
    topic_field = _utf8(topic)
    remaining = len(topic_field) + (2 if qos else 0) + payload_length
    return bytes([PUBLISH | (qos << 1)]) + encode_remaining_length(remaining) + topic_field


class FrameReader:
    """Incremental framing of a received byte stream into MQTT packets.

    Feed it whatever the transport delivered; it keeps an incomplete tail for the next
    call. :meth:`count` is the fast path for throughput runs; :meth:`packets` yields each
    complete packet for the slower paths (handshakes, latency runs).
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def count(self, data: bytes, acks: bytearray | None = None, kind: int = PUBLISH) -> int:
        """Count the packets of type ``kind`` (PUBLISH by default) completed by ``data``.

        When ``acks`` is given, a PUBACK for every QoS 1 PUBLISH is appended to it.
        Packets of other types are skipped.

        :raises WireError: on a malformed remaining length.
        """
        buf = self._buffer + data if self._buffer else data
        end = len(buf)
        i = 0
        counted = 0
        while i + 2 <= end:
            length = buf[i + 1]
            header = 2
            if length & 0x80:
                length, header = self._long_length(buf, i)
                if header == 0:
                    break
            nxt = i + header + length
            if nxt > end:
                break
            first = buf[i]
            if first & 0xF0 == kind:
                counted += 1
                if acks is not None and first & 0x06 and kind == PUBLISH:
                    id_at = i + header + 2 + (buf[i + header] << 8 | buf[i + header + 1])
                    acks += PUBACK_PREFIX
                    acks += buf[id_at : id_at + 2]
            i = nxt
        self._buffer = buf[i:]
        return counted

    def count_pubacks(self, data: bytes) -> int:
        """Count the PUBACKs completed by ``data``; other packets are skipped.

        A publisher receives almost nothing but 4-byte PUBACKs, so a read made of whole
        PUBACKs only is recognised with three C-speed slices instead of a Python loop.
        """
        quarter, odd = divmod(len(data), 4)
        if (
            not self._buffer
            and not odd
            and data[0::4].count(PUBACK) == quarter
            and data[1::4].count(2) == quarter
        ):
            return quarter
        return self.count(data, kind=PUBACK)

    def puback_ids(self, data: bytes) -> list[int]:
        """The packet ids of the PUBACKs completed by ``data``; other packets are skipped.

        The same fast path as :meth:`count_pubacks` for a read made of whole PUBACKs.
        """
        quarter, odd = divmod(len(data), 4)
        if (
            not self._buffer
            and not odd
            and data[0::4].count(PUBACK) == quarter
            and data[1::4].count(2) == quarter
        ):
            return [hi << 8 | lo for hi, lo in zip(data[2::4], data[3::4], strict=True)]
        return [
            body[0] << 8 | body[1]
            for first, body in self.packets(data)
            if first & 0xF0 == PUBACK and len(body) >= 2
        ]

    def packets(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Yield ``(first_byte, body)`` for each packet completed by ``data``.

        :raises WireError: on a malformed remaining length.
        """
        buf = self._buffer + data if self._buffer else data
        end = len(buf)
        i = 0
        try:
            while i + 2 <= end:
                length = buf[i + 1]
                header = 2
                if length & 0x80:
                    length, header = self._long_length(buf, i)
                    if header == 0:
                        break
                nxt = i + header + length
                if nxt > end:
                    break
                first, i = buf[i], nxt
                yield first, buf[nxt - length : nxt]
        finally:
            self._buffer = buf[i:]

    @staticmethod
    def _long_length(buf: bytes, start: int) -> tuple[int, int]:
        """Decode a multi-byte remaining length at ``start + 1``.

        :returns: ``(length, header_size)``, or ``(0, 0)`` if the bytes are not all here.
        :raises WireError: if the length runs over four bytes.
        """
        value = 0
        for k in range(4):
            at = start + 1 + k
            if at >= len(buf):
                return 0, 0
            byte = buf[at]
            value |= (byte & 0x7F) << (7 * k)
            if not byte & 0x80:
                return value, k + 2
        raise WireError("remaining length longer than four bytes")


def publish_fields(first_byte: int, body: bytes) -> tuple[int, int, int]:
    """``(qos, packet_id, payload_offset)`` of a PUBLISH body returned by :meth:`packets`."""
    topic_end = 2 + (body[0] << 8 | body[1])
    qos = (first_byte >> 1) & 0x03
    if qos:
        return qos, body[topic_end] << 8 | body[topic_end + 1], topic_end + 2
    return 0, 0, topic_end
