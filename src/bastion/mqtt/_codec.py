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
from ._packets import MQTT_3_1_1, MQTT_5, Connect, Packet
from ._reader import check_fixed_header, read_packet, read_publish
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
        packets = self.drain(1)
        return packets[0] if packets else None

    def drain(self, limit: int = 0, *, until_disconnect: bool = False) -> list[Packet]:
        """Every complete packet buffered (at most ``limit`` when it is not 0), in order.
        With ``until_disconnect``, nothing after a DISCONNECT is read (a server ignores
        what a client sends after it).

        The broker's hot path: one memoryview over the buffer for the whole call, and
        PUBLISH read without the general dispatch. A PUBLISH of MQTT 3.1/3.1.1 keeps its
        bytes as received (:attr:`Publish.raw`), which a broker may forward unchanged.

        :raises MQTTError: as :meth:`next_packet`; packets before the bad one are lost.
        """
        buffer = self._buffer
        size = len(buffer)
        start = self._offset
        packets: list[Packet] = []
        max_packet_size = self.max_packet_size
        with memoryview(buffer) as view:
            while size - start >= 2:
                first_byte = buffer[start]
                pos = start + 1
                length = 0
                shift = 0
                while True:
                    if pos >= size:
                        self._offset = start
                        return packets
                    byte = buffer[pos]
                    pos += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift == 28:
                        self._offset = start
                        raise MalformedPacketError("remaining length longer than four bytes")
                end = pos + length
                self._offset = start  # where a failure leaves the decoder
                if end - start > max_packet_size:
                    raise PacketTooLargeError(
                        f"packet of {end - start} bytes exceeds the maximum of "
                        f"{max_packet_size}")
                packet_type = first_byte >> 4
                version = self.version
                read_as = MQTT_3_1_1 if version is None or packet_type == 1 else version
                if packet_type != 3 or (first_byte & 0x06) == 0x06 or (
                        first_byte & 0x08 and not first_byte & 0x06):
                    check_fixed_header(first_byte, read_as)  # (a good PUBLISH skips the call)
                if end > size:
                    return packets
                if packet_type == 3:
                    publish = read_publish(first_byte & 0x0F, view, pos, end, read_as)
                    if read_as != MQTT_5:
                        publish.raw = bytes(view[start:end])
                    packets.append(publish)
                else:
                    packet = read_packet(first_byte, view, pos, end, read_as)
                    if version is None and packet_type == 1:
                        assert isinstance(packet, Connect)
                        self.version = packet.protocol_version
                    packets.append(packet)
                start = end
                if len(packets) == limit or (packet_type == 14 and until_disconnect):
                    break
        self._offset = start
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
