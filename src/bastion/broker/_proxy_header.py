"""The PROXY protocol, version 2: the binary header a TCP load balancer (HAProxy's
``send-proxy-v2``) sends before the client's own bytes to say who the client is.

Theory of operation
-------------------
Sans-IO: :func:`parse_proxy_header` is given everything received on the connection so far
and answers "not yet" (``None``), the header (with how many bytes it took; the rest is the
client's TLS), or raises :class:`ProxyHeaderError`. It reads nothing past the length the
header declares, and it fails as early as the bytes allow: a TLS ClientHello (first byte
``0x16``) is refused on its first byte, a header declaring more than
:data:`MAX_HEADER_BYTES` or an address family we do not take is refused once its 16 fixed
bytes are in, without waiting for the rest. So whoever calls it never buffers more than
:data:`MAX_HEADER_BYTES`.

The layout (haproxy.org, ``proxy-protocol.txt``, section 2.2)::

    12 bytes   signature  \\r\\n\\r\\n\\0\\r\\nQUIT\\n
     1 byte    version (high nibble, must be 2) | command (low: 0 LOCAL, 1 PROXY)
     1 byte    family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
               | transport (low: 0 UNSPEC, 1 STREAM, 2 DGRAM)
     2 bytes   length of what follows, network byte order
    then       INET:  source, destination (4 bytes each), source port, destination port
               INET6: the same with 16-byte addresses
               TLVs to the end: type (1 byte), length (2 bytes), value

A PROXY command must carry TCP over IPv4 (``0x11``) or IPv6 (``0x21``); anything else
(UNSPEC, UDP, unix sockets) is refused, since it would leave the client's address unknown.
A LOCAL command (the balancer's own health check) carries no client; its address block is
ignored, as the specification asks. TLVs (ALPN, authority, CRC32C, SSL, unique id, ...)
are walked only to check they end exactly at the declared length; their values are not
used. An IPv4 address sent as IPv4-mapped IPv6 (a dual-stack balancer) is reported as
IPv4, so that ``aws:SourceIp`` conditions on IPv4 ranges match it.

Why not the ``proxy-protocol`` package (PyPI): its asyncio side reads through a
``StreamReader`` (the listeners here are plain ``asyncio.Protocol``\\ s), and its v2
parser lets other errors through (``struct.error`` for a length shorter than the
addresses), accepts a TLV cut off by the declared length, and answers an unknown family
with an "unknown" result instead of a refusal. This module is the hundred lines we need.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final

SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
"""The 12 bytes every PROXY v2 header starts with."""

MAX_HEADER_BYTES: Final = 536
"""The largest header accepted, signature to last TLV (HAProxy's own limit)."""

_FIXED = 16  # signature, version/command, family/transport, length
_TCP4: Final = 0x11
_TCP6: Final = 0x21
_ADDRESS_BYTES: Final = {_TCP4: 12, _TCP6: 36}
_TLV_HEAD = 3


class ProxyHeaderError(Exception):
    """Remote violation: the bytes are not a PROXY v2 header we accept.

    The peer (a load balancer, or someone posing as one) is at fault; its connection is
    closed before any TLS, so it sees the TCP connection end and nothing else.
    """


class ProxyCommand(enum.Enum):
    LOCAL = 0  # the balancer's own connection (a health check): no client behind it
    PROXY = 1  # relayed for a client, whose address the header carries


Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One parsed header.

    :ivar command: LOCAL or PROXY.
    :ivar source: the client's address and port (PROXY only; ``None`` for LOCAL).
    :ivar destination: the address and port the client connected to (PROXY only).
    :ivar length: bytes the header took, signature to last TLV; what follows is the
        client's.
    """

    command: ProxyCommand
    source: Address | None
    destination: Address | None
    length: int


def parse_proxy_header(data: bytes | bytearray | memoryview) -> ProxyHeader | None:
    """Parse the PROXY v2 header at the start of ``data``, the bytes received so far.

    :param data: everything received on the connection so far (may hold more than the
        header: the bytes after ``length`` are not looked at).
    :returns: the header, or ``None`` when ``data`` is a valid beginning of one but not
        all of it has arrived.
    :raises ProxyHeaderError: ``data`` cannot begin a header we accept (wrong signature,
        version or command; a PROXY command for anything but TCP over IPv4/IPv6; a length
        over :data:`MAX_HEADER_BYTES` or too short for the addresses; a TLV running past
        the declared length).
    """
    view = memoryview(data).cast("B")
    have = len(view)
    head = min(have, len(SIGNATURE))
    if view[:head] != SIGNATURE[:head]:
        raise ProxyHeaderError("no PROXY v2 signature")
    if have < _FIXED:
        return None
    version, command_code = view[12] >> 4, view[12] & 0x0F
    if version != 2:
        raise ProxyHeaderError(f"PROXY protocol version {version}, not 2")
    try:
        command = ProxyCommand(command_code)
    except ValueError:
        raise ProxyHeaderError(f"unknown PROXY v2 command {command_code:#x}") from None
    family = view[13]
    total = _FIXED + int.from_bytes(view[14:16], "big")
    if total > MAX_HEADER_BYTES:
        raise ProxyHeaderError(f"header of {total} bytes, over the {MAX_HEADER_BYTES}-byte"
                               " limit")
    address_bytes = 0
    if command is ProxyCommand.PROXY:
        if family not in _ADDRESS_BYTES:
            raise ProxyHeaderError(f"address family/transport {family:#04x}: only TCP over "
                                   "IPv4 (0x11) or IPv6 (0x21) is accepted")
        address_bytes = _ADDRESS_BYTES[family]
        if total - _FIXED < address_bytes:
            raise ProxyHeaderError(f"length {total - _FIXED} too short for the "
                                   f"{address_bytes} bytes of addresses")
    if have < total:
        return None
    if command is ProxyCommand.LOCAL:
        return ProxyHeader(command, None, None, total)
    source, destination = _addresses(view[_FIXED:_FIXED + address_bytes])
    _skip_tlvs(view[_FIXED + address_bytes:total])
    return ProxyHeader(command, source, destination, total)


def _addresses(block: memoryview) -> tuple[Address, Address]:
    size = (len(block) - 4) // 2  # 4 or 16
    ports = block[2 * size:]
    return (
        (_address_text(bytes(block[:size])), int.from_bytes(ports[:2], "big")),
        (_address_text(bytes(block[size:2 * size])), int.from_bytes(ports[2:4], "big")),
    )


def _address_text(packed: bytes) -> str:
    address = ipaddress.ip_address(packed)  # 4 or 16 bytes: always a valid address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _skip_tlvs(tlvs: memoryview) -> None:
    offset, end = 0, len(tlvs)
    while offset < end:
        if end - offset < _TLV_HEAD:
            raise ProxyHeaderError(f"{end - offset} stray bytes after the last TLV")
        offset += _TLV_HEAD + int.from_bytes(tlvs[offset + 1:offset + 3], "big")
        if offset > end:
            raise ProxyHeaderError("a TLV runs past the header's declared length")
