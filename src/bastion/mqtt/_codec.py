"""The MQTT codec: :class:`PacketDecoder` for byte streams, :func:`decode` for one packet,
and the encoders of :mod:`._writer`.

Theory of operation
-------------------
Bytes from the network are appended to one ``bytearray``. ``next_packet`` reads the fixed
header at the current offset; as soon as the remaining length is known it is checked
against ``max_packet_size`` (so an oversized packet is refused before its body is
buffered) and the type and flags are checked. When the whole packet is buffered its body
is decoded from a ``memoryview`` and the offset moves past it. Consumed bytes are dropped
once per :meth:`PacketDecoder.feed`, not once per packet, so a read holding many small
packets costs one compaction.

The protocol version decides how most packets are read. It is unknown until the CONNECT:
a CONNECT always carries its own version, and the first one decoded sets
:attr:`PacketDecoder.version`. Other packets read while the version is still unknown are
read as MQTT 3.1.1 (the connection state rejects them anyway: CONNECT must come first).

After an exception the decoder is unusable (the offending packet stays at the front of the
buffer and raises again): the connection must be closed.
"""

from __future__ import annotations

from collections.abc import Iterator

from ._errors import MalformedPacketError, PacketTooLargeError
from ._packets import MQTT_3_1_1, Connect, Packet
from ._reader import check_fixed_header, read_packet
from ._writer import encode, encode_publish, publish_packet_id_offset, with_packet_id

__all__ = [
    "MAX_PACKET_SIZE",
    "PacketDecoder",
    "decode",
    "encode",
    "encode_publish",
    "publish_packet_id_offset",
    "with_packet_id",
]

#: The largest packet MQTT can express: 1 byte of type, 4 of length, 268435455 of body.
MAX_PACKET_SIZE = 268_435_460


class PacketDecoder:
    """Splits a byte stream into packets.

    :param max_packet_size: the largest packet accepted, fixed header included (the
        Maximum Packet Size we announce in MQTT 5).
    :param version: the protocol version, if already known (a client's decoder); ``None``
        on a server until the CONNECT has been decoded.
    """

    __slots__ = ("_buffer", "_offset", "max_packet_size", "version")

    def __init__(self, *, max_packet_size: int = MAX_PACKET_SIZE,
                 version: int | None = None) -> None:
        self._buffer = bytearray()
        self._offset = 0
        self.max_packet_size = max_packet_size
        self.version = version

    @property
    def buffered(self) -> int:
        """How many received bytes are not yet part of a returned packet."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes) -> None:
        """Append bytes received from the network."""
        buffer = self._buffer
        if self._offset:
            # Drop what has been consumed (cheap: bytearray deletes from the front in place).
            del buffer[: self._offset]
            self._offset = 0
        buffer += data

    def next_packet(self) -> Packet | None:
        """The next complete packet, or ``None`` if more bytes are needed.

        :raises MalformedPacketError: the bytes break a malformed-packet rule (remaining
            length longer than four bytes, reserved packet type or flags, a field running
            past the end of the packet, bytes left over, invalid UTF-8, ...).
        :raises PacketTooLargeError: the packet is larger than ``max_packet_size``; raised
            as soon as its fixed header is buffered.
        :raises UnsupportedProtocolVersionError: a CONNECT with a protocol level we do not
            speak.
        :raises RemoteProtocolError: a packet breaking a rule the spec calls a protocol
            error, with the reason code it names.
        """
        buffer = self._buffer
        start = self._offset
        size = len(buffer)
        if size - start < 2:
            return None
        first_byte = buffer[start]
        pos = start + 1
        length = 0
        shift = 0
        while True:
            if pos >= size:
                return None
            byte = buffer[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift == 28:
                raise MalformedPacketError("remaining length longer than four bytes")
        end = pos + length
        if end - start > self.max_packet_size:
            raise PacketTooLargeError(
                f"packet of {end - start} bytes exceeds the maximum of {self.max_packet_size}"
            )
        version = self.version
        is_connect = first_byte >> 4 == 1
        read_as = MQTT_3_1_1 if version is None or is_connect else version
        check_fixed_header(first_byte, read_as)
        if end > size:
            return None
        with memoryview(buffer) as view:
            packet = read_packet(first_byte, view, pos, end, read_as)
        self._offset = end
        if version is None and is_connect:
            assert isinstance(packet, Connect)
            self.version = packet.protocol_version
        return packet

    def drain(self) -> list[Packet]:
        """Every complete packet buffered, in order.

        :raises MQTTError: as :meth:`next_packet`; packets before the bad one are lost.
        """
        packets = []
        while (packet := self.next_packet()) is not None:
            packets.append(packet)
        return packets

    def __iter__(self) -> Iterator[Packet]:
        """Yield complete packets until more bytes are needed (see :meth:`next_packet`)."""
        while (packet := self.next_packet()) is not None:
            yield packet


def decode(data: bytes, version: int | None) -> Packet:
    """Decode ``data``, which must hold exactly one whole packet.

    :param version: the protocol version; ``None`` reads a CONNECT (which carries its own)
        and anything else as MQTT 3.1.1.
    :raises MalformedPacketError: ``data`` holds less or more than one packet, or the packet
        is malformed.
    :raises RemoteProtocolError: as :meth:`PacketDecoder.next_packet`.
    """
    decoder = PacketDecoder(version=version)
    decoder.feed(data)
    packet = decoder.next_packet()
    if packet is None:
        raise MalformedPacketError("incomplete packet")
    if decoder.buffered:
        raise MalformedPacketError(f"{decoder.buffered} bytes after the packet")
    return packet
