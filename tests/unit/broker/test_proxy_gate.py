"""ProxyHeaderGate on an in-memory transport, and ProxyTrust: who may connect, what is
handed on, and when the connection is closed instead."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from bastion.broker._proxy import PeerName, ProxyHeaderGate, ProxyTrust
from support.proxy import SAMPLE_TLVS, proxy_v2

BALANCER = ("10.1.2.3", 40000)
TRUST = ProxyTrust.parse(["10.0.0.0/8", "2001:db8:b::/48"])
CLIENT_HELLO = bytes.fromhex("16030100c8010000c40303") + bytes(32)


class FakeTCP:
    """An accepted socket's transport: records closing and protocol changes."""

    def __init__(self, peername: tuple[Any, ...] = BALANCER) -> None:
        self.peername = peername
        self.closed = False
        self.aborted = asyncio.Event()
        self.protocol: asyncio.BaseProtocol | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peername if name == "peername" else default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True
        self.aborted.set()


class Next(asyncio.Protocol):
    """The protocol the gate hands over to (the TLSStream in the broker)."""

    def __init__(self, peername: PeerName) -> None:
        self.peername = peername
        self.transport: Any = None
        self.data: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data.append(data)


class Gated:
    def __init__(self, peername: tuple[Any, ...] = BALANCER, timeout: float = 10.0) -> None:
        self.next: list[Next] = []

        def make(peer: PeerName) -> Next:
            self.next.append(Next(peer))
            return self.next[-1]

        self.gate = ProxyHeaderGate(TRUST, make, timeout)
        self.tcp = FakeTCP(peername)
        self.gate.connection_made(self.tcp)  # type: ignore[arg-type]

    def send(self, *chunks: bytes) -> None:
        """Deliver ``chunks`` as TCP reads, to whichever protocol the transport has."""
        for chunk in chunks:
            protocol = self.tcp.protocol or self.gate
            protocol.data_received(chunk)  # type: ignore[attr-defined]


def run(scenario: Any) -> None:
    asyncio.run(scenario())


@pytest.mark.parametrize("split", [None, 1, 7, 16, 27], ids=lambda s: f"split-{s}")
def test_header_then_tls_is_handed_over(split: int | None) -> None:
    async def scenario() -> None:
        gated = Gated()
        data = proxy_v2(("203.0.113.7", 5555), tlvs=SAMPLE_TLVS) + CLIENT_HELLO
        if split is None:
            gated.send(data)
        else:  # the header arrives in pieces, the last one with the ClientHello
            gated.send(*(data[i:i + split] for i in range(0, len(data), split)))
        [handed] = gated.next
        assert handed.peername == ("203.0.113.7", 5555)
        assert gated.tcp.protocol is handed and handed.transport is gated.tcp
        assert b"".join(handed.data) == CLIENT_HELLO
        assert not gated.tcp.closed
        gated.gate.data_received(b"more")  # a late call to the old protocol is ignored
        assert b"".join(handed.data) == CLIENT_HELLO
    run(scenario)


def test_ipv6_client_gets_a_socket_shaped_peername() -> None:
    async def scenario() -> None:
        gated = Gated(("2001:db8:b::9", 40000, 0, 0))
        gated.send(proxy_v2(("2001:db8::7", 5555), ("2001:db8::1", 8883)))
        assert gated.next[0].peername == ("2001:db8::7", 5555, 0, 0)
        assert gated.next[0].data == []
    run(scenario)


@pytest.mark.parametrize("peer", [("192.0.2.1", 1), ("11.0.0.1", 1), ("::1", 1, 0, 0),
                                  ("", 0), None], ids=str)
def test_untrusted_peer_is_refused_before_reading(peer: Any) -> None:
    async def scenario() -> None:
        gated = Gated(peer)
        assert gated.tcp.closed
        gated.send(proxy_v2() + CLIENT_HELLO)
        assert gated.next == []
    run(scenario)


@pytest.mark.parametrize("data", [
    pytest.param(CLIENT_HELLO, id="tls-without-header"),
    pytest.param(proxy_v2(family=0x12), id="udp"),
    pytest.param(proxy_v2(tlvs=b"\x01\x00\x09abc"), id="tlv-past-the-end"),
])
def test_malformed_header_closes(data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        gated = Gated()
        with caplog.at_level("INFO", "bastion.broker.proxy"):
            gated.send(data)
        assert gated.tcp.closed and not gated.tcp.aborted.is_set()
        assert gated.next == []
        assert "10.1.2.3" in caplog.text and "refused" in caplog.text
    run(scenario)


def test_local_command_closes_without_tls() -> None:
    async def scenario() -> None:
        gated = Gated()
        gated.send(proxy_v2(local=True))
        assert gated.tcp.closed and not gated.tcp.aborted.is_set()
        assert gated.next == []
    run(scenario)


def test_half_a_header_is_cut_at_the_timeout() -> None:
    async def scenario() -> None:
        gated = Gated(timeout=0.05)
        gated.send(proxy_v2()[:20])
        await asyncio.wait_for(gated.tcp.aborted.wait(), 5)
        assert gated.next == []
    run(scenario)


def test_the_timeout_ends_with_the_header() -> None:
    async def scenario() -> None:
        gated = Gated(timeout=0.05)
        gated.send(proxy_v2())
        assert gated.gate._timer is None  # cancelled: the TLS stream has its own
        gated.gate.connection_lost(None)
    run(scenario)


def test_eof_inside_the_header_closes() -> None:
    async def scenario() -> None:
        gated = Gated()
        gated.send(proxy_v2()[:10])
        assert gated.gate.eof_received() is False  # the transport closes itself
        gated.gate.connection_lost(None)
        assert gated.next == []
    run(scenario)


# -- ProxyTrust ------------------------------------------------------------------------


def test_trust_entries() -> None:
    trust = ProxyTrust.parse(["10.0.0.5", " 192.168.0.0/16 ", "2001:db8::/32", "::1"])
    assert trust.networks == (ipaddress.ip_network("10.0.0.5/32"),
                              ipaddress.ip_network("192.168.0.0/16"),
                              ipaddress.ip_network("2001:db8::/32"),
                              ipaddress.ip_network("::1/128"))
    for host in ("10.0.0.5", "192.168.7.7", "2001:db8::5", "::1",
                 "::ffff:10.0.0.5",       # a dual-stack socket's view of an IPv4 peer
                 "2001:db8::5%eth0"):     # a scoped address
        assert trust.trusts(host), host
    for host in ("10.0.0.6", "192.169.0.1", "2001:db9::1", "127.0.0.1", "", "localhost",
                 "::ffff:10.0.0.6"):
        assert not trust.trusts(host), host


@pytest.mark.parametrize("entry,error", [
    ("10.0.0.1/8", ValueError),   # host bits: 10.0.0.0/8 or 10.0.0.1?
    ("10.0.0.0/33", ValueError),
    ("balancer.example", ValueError),
    ("", ValueError),
    (10, TypeError),
])
def test_bad_trust_entries(entry: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        ProxyTrust.parse([entry])
