"""Listeners behind a TCP load balancer: who may send a PROXY v2 header, and the protocol
that reads it before TLS.

Theory of operation
-------------------
With the PROXY protocol on, every connection to the listener must come from a trusted
balancer (:class:`ProxyTrust`) and start with a PROXY v2 header (:mod:`._proxy_header`).
Both rules are absolute, since either exception would let a connection carry a false
address into ``aws:SourceIp``, the connection journal and Detect: a header from anyone
else would be a client choosing its own address, and a trusted balancer's connection
without one would carry the balancer's.

:class:`ProxyHeaderGate` is the first ``asyncio.Protocol`` of each accepted socket. It
refuses an untrusted peer at once, buffers at most the header (the parser fails as soon
as the bytes cannot be one), and then:

- PROXY: creates the next protocol (the :class:`~._tls.TLSStream`) for the client's
  address, moves the TCP transport to it (``set_protocol``) and hands it whatever came
  after the header, so the TLS handshake starts exactly at the header's end;
- LOCAL (the balancer's health check): closes the connection, without TLS.

A malformed header, an EOF inside it, or a header not complete within ``timeout`` closes
the connection with one INFO line (the peer and why); nothing else is affected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._proxy_header import ProxyCommand, ProxyHeaderError, parse_proxy_header

log = logging.getLogger("bastion.broker.proxy")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ProxyTrust:
    """The load balancers allowed to connect and to say, in a PROXY header, who the
    client is."""

    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> ProxyTrust:
        """Networks from addresses (``10.0.0.5``, ``2001:db8::5``) and CIDR blocks
        (``10.0.0.0/8``).

        :raises TypeError: an entry is not a string.
        :raises ValueError: an entry is not an address or a network, or a network has
            host bits set (``10.0.0.1/8``: which was meant?).
        """
        networks: list[Network] = []
        for entry in entries:
            if not isinstance(entry, str):
                raise TypeError(f"a trusted proxy must be a string, not "
                                f"{type(entry).__name__}")
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=True))
            except ValueError as exc:
                raise ValueError(f"trusted proxy {entry!r}: {exc}") from None
        return cls(tuple(networks))

    def trusts(self, host: str) -> bool:
        """Whether the peer address ``host`` (as ``peername`` gives it) is a trusted
        balancer. An IPv4-mapped IPv6 address (a dual-stack socket) counts as its IPv4
        address; anything that is not an IP address is not trusted."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


PeerName = tuple[Any, ...]
"""A ``peername`` as a socket gives it: ``(host, port)``, or ``(host, port, 0, 0)``."""


class ProxyHeaderGate(asyncio.Protocol):
    """Reads a connection's PROXY v2 header, then hands the connection to
    ``next_protocol(client_peername)``."""

    __slots__ = ("_buffer", "_closing", "_next", "_peer", "_tcp", "_timer", "_trust")

    def __init__(self, trust: ProxyTrust, next_protocol: Callable[[PeerName], asyncio.Protocol],
                 timeout: float) -> None:
        """
        :param trust: who may connect.
        :param next_protocol: builds the protocol that takes the connection over, given the
            client's address (like a ``peername``).
        :param timeout: seconds from the accept to the header's last byte.
        """
        self._trust = trust
        self._next = next_protocol
        self._buffer = b""
        self._tcp: asyncio.Transport | None = None
        self._peer: object = None
        self._closing = False
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            timeout, self._timed_out)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = transport  # type: ignore[assignment]
        peer = self._peer = transport.get_extra_info("peername")
        if not self._trust.trusts(str(peer[0]) if peer else ""):
            log.info("connection from %s refused: not a trusted proxy", peer)
            self._refuse()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        received = self._buffer + data if self._buffer else data
        try:
            header = parse_proxy_header(received)
        except ProxyHeaderError as exc:
            log.info("PROXY header from %s refused: %s", self._peer, exc)
            self._refuse()
            return
        if header is None:
            self._buffer = bytes(received)  # fewer than MAX_HEADER_BYTES (see the parser)
            return
        self._cancel_timer()
        self._buffer = b""
        tcp = self._tcp
        assert tcp is not None
        if header.command is ProxyCommand.LOCAL:
            log.debug("PROXY LOCAL (health check) from %s", self._peer)
            self._refuse()
            return
        assert header.source is not None
        host, port = header.source
        peername: PeerName = (host, port, 0, 0) if ":" in host else (host, port)
        self._closing = True  # this protocol is done; the next one owns the transport
        protocol = self._next(peername)
        tcp.set_protocol(protocol)
        protocol.connection_made(tcp)
        rest = received[header.length:]
        if rest and not tcp.is_closing():
            protocol.data_received(bytes(rest))

    def eof_received(self) -> bool:
        if not self._closing:
            log.info("PROXY header from %s refused: connection closed inside it", self._peer)
            self._closing = True
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._cancel_timer()

    def _timed_out(self) -> None:
        self._timer = None
        if not self._closing and self._tcp is not None:
            log.info("PROXY header from %s timed out", self._peer)
            self._closing = True
            self._tcp.abort()

    def _refuse(self) -> None:
        self._closing = True
        self._cancel_timer()
        if self._tcp is not None:
            self._tcp.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
