"""PROXY protocol v2 headers as a load balancer (HAProxy's ``send-proxy-v2``) writes them.

Built here from the specification (haproxy.org, ``proxy-protocol.txt``, section 2.2), not
with the broker's parser, so that the tests check one against the other.
"""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
TCP4, TCP6, UNSPEC, UDP4, UNIX = 0x11, 0x21, 0x00, 0x12, 0x31


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


# What HAProxy may send: ALPN, authority (SNI), unique id, and an SSL block with a subtlv.
SAMPLE_TLVS = (tlv(0x01, b"x-amzn-mqtt-ca") + tlv(0x02, b"iot.example.com")
               + tlv(0x05, b"\x00" * 16) + tlv(0x20, b"\x01\x00\x00\x00\x00"
                                                 + tlv(0x21, b"TLSv1.3")))


def proxy_v2(source: tuple[str, int] = ("203.0.113.7", 5555),
             destination: tuple[str, int] = ("198.51.100.1", 8883), *,
             local: bool = False, family: int | None = None, tlvs: bytes = b"",
             addresses: bytes | None = None, version: int = 2, length: int | None = None
             ) -> bytes:
    """A PROXY v2 header.

    ``family`` defaults to UNSPEC for LOCAL (what HAProxy's health checks send) and to the
    addresses' (TCP over IPv4 or IPv6) for PROXY; the address block is empty for UNSPEC
    unless ``addresses`` gives it. ``version`` and ``length`` (the declared length)
    override the real ones, for malformed headers.
    """
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if family is None:
        family = UNSPEC if local else TCP6 if src.version == 6 else TCP4
    if addresses is None:
        addresses = b"" if family == UNSPEC else (
            src.packed + dst.packed + struct.pack("!HH", source[1], destination[1]))
    body = addresses + tlvs
    declared = len(body) if length is None else length
    command = 0x0 if local else 0x1
    return SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", declared) + body
