"""The PROXY v2 header parser: a table of headers HAProxy sends and of malformed ones, and
Hypothesis for what must hold of any input (only ProxyHeaderError; nothing read past the
declared length; a prefix is "not yet" or the same refusal)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bastion.broker._proxy_header import (
    MAX_HEADER_BYTES,
    ProxyCommand,
    ProxyHeader,
    ProxyHeaderError,
    parse_proxy_header,
)
from support.proxy import SAMPLE_TLVS, SIGNATURE, TCP4, TCP6, UDP4, UNIX, UNSPEC, proxy_v2, tlv

CLIENT_HELLO = bytes.fromhex("160301020001")  # what follows the header: the client's TLS
DST = ("198.51.100.1", 8883)
DST6 = ("2001:db8::1", 8883)


def outcome(data: bytes) -> ProxyHeader | str | None:
    """The parser's answer, with a refusal as its message (comparable)."""
    try:
        return parse_proxy_header(data)
    except ProxyHeaderError as exc:
        return f"refused: {exc}"


# -- what a balancer sends ---------------------------------------------------------------

VALID = [
    pytest.param(proxy_v2(("203.0.113.7", 5555), DST), ProxyCommand.PROXY,
                 ("203.0.113.7", 5555), DST, id="tcp4"),
    pytest.param(proxy_v2(("2001:db8::7", 5555), DST6), ProxyCommand.PROXY,
                 ("2001:db8::7", 5555), DST6, id="tcp6"),
    pytest.param(proxy_v2(("::ffff:203.0.113.7", 5555), ("::ffff:198.51.100.1", 8883)),
                 ProxyCommand.PROXY, ("203.0.113.7", 5555), DST, id="tcp6-ipv4-mapped"),
    pytest.param(proxy_v2(("203.0.113.7", 0), ("0.0.0.0", 65535)), ProxyCommand.PROXY,
                 ("203.0.113.7", 0), ("0.0.0.0", 65535), id="tcp4-port-bounds"),
    pytest.param(proxy_v2(("203.0.113.7", 5555), DST, tlvs=SAMPLE_TLVS), ProxyCommand.PROXY,
                 ("203.0.113.7", 5555), DST, id="tcp4-with-tlvs"),
    pytest.param(proxy_v2(("2001:db8::7", 5555), DST6, tlvs=tlv(0x04, b"")),
                 ProxyCommand.PROXY, ("2001:db8::7", 5555), DST6, id="tcp6-empty-tlv"),
    pytest.param(proxy_v2(tlvs=tlv(0x04, bytes(MAX_HEADER_BYTES - 16 - 12 - 3))),
                 ProxyCommand.PROXY, ("203.0.113.7", 5555), DST, id="exactly-the-limit"),
    pytest.param(proxy_v2(local=True), ProxyCommand.LOCAL, None, None, id="local"),
    pytest.param(proxy_v2(local=True, tlvs=SAMPLE_TLVS), ProxyCommand.LOCAL, None, None,
                 id="local-with-tlvs"),
    pytest.param(proxy_v2(local=True, family=TCP4), ProxyCommand.LOCAL, None, None,
                 id="local-with-addresses"),
    # LOCAL's address block is ignored, whatever it holds (the specification says so).
    pytest.param(proxy_v2(local=True, family=UNIX, addresses=b"junk"), ProxyCommand.LOCAL,
                 None, None, id="local-ignores-its-block"),
]


@pytest.mark.parametrize("header,command,source,destination", VALID)
def test_valid_headers(header: bytes, command: ProxyCommand, source: object,
                       destination: object) -> None:
    assert parse_proxy_header(header + CLIENT_HELLO) == ProxyHeader(
        command, source, destination, len(header))
    assert parse_proxy_header(bytearray(header)) == parse_proxy_header(memoryview(header))


@pytest.mark.parametrize("header", [p.values[0] for p in VALID], ids=[p.id for p in VALID])
def test_every_prefix_of_a_header_is_not_yet(header: bytes) -> None:
    for end in range(len(header)):
        assert parse_proxy_header(header[:end]) is None, end


# -- what is refused -------------------------------------------------------------------

INVALID = [
    pytest.param(CLIENT_HELLO[:1], "signature", id="tls-without-header"),
    pytest.param(b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 8883\r\n", "signature",
                 id="proxy-v1-text"),
    pytest.param(SIGNATURE[:11] + b"X", "signature", id="signature-last-byte"),
    pytest.param(b"\r\n\r\n\x00\r\n", None, id="signature-prefix-is-not-yet"),
    pytest.param(proxy_v2(version=1), "version 1", id="version-1"),
    pytest.param(proxy_v2(version=3), "version 3", id="version-3"),
    pytest.param(SIGNATURE + b"\x22\x11\x00\x0c", "command 0x2", id="command-2"),
    pytest.param(SIGNATURE + b"\x2f\x11\x00\x0c", "command 0xf", id="command-f"),
    pytest.param(proxy_v2(family=UNSPEC), "0x00", id="proxy-unspec"),
    pytest.param(proxy_v2(family=UDP4), "0x12", id="proxy-udp4"),
    pytest.param(proxy_v2(family=0x22), "0x22", id="proxy-udp6"),
    pytest.param(proxy_v2(family=UNIX, addresses=bytes(216)), "0x31", id="proxy-unix"),
    pytest.param(proxy_v2(family=0x41), "0x41", id="proxy-unknown-family"),
    pytest.param(proxy_v2(length=11)[:16], "too short", id="tcp4-length-11"),
    pytest.param(proxy_v2(("2001:db8::7", 1), DST6, length=35)[:16], "too short",
                 id="tcp6-length-35"),
    pytest.param(proxy_v2(length=0), "too short", id="tcp4-length-0"),
    pytest.param(proxy_v2(length=MAX_HEADER_BYTES - 15)[:16], "limit", id="over-the-limit"),
    pytest.param(proxy_v2(local=True, length=0xFFFF)[:16], "limit", id="local-over-the-limit"),
    pytest.param(proxy_v2(tlvs=b"\x04"), "stray", id="one-stray-byte"),
    pytest.param(proxy_v2(tlvs=tlv(0x04, b"") + b"\x04\x00"), "stray", id="two-stray-bytes"),
    pytest.param(proxy_v2(tlvs=tlv(0x01, b"mqtt")[:-1]), "runs past", id="tlv-runs-past"),
    pytest.param(proxy_v2(tlvs=tlv(0x20, b"\x01" + tlv(0x21, b"TLSv1.3")))[:-1],
                 None, id="truncated-is-not-yet"),
]


@pytest.mark.parametrize("data,reason", INVALID)
def test_invalid_headers(data: bytes, reason: str | None) -> None:
    if reason is None:
        assert parse_proxy_header(data) is None
        return
    with pytest.raises(ProxyHeaderError, match=reason):
        parse_proxy_header(data)
    # More bytes do not change the answer: the refusal came as early as it could.
    with pytest.raises(ProxyHeaderError, match=reason):
        parse_proxy_header(data + bytes(MAX_HEADER_BYTES))


def test_refusal_comes_at_the_first_wrong_byte() -> None:
    for end in range(1, len(SIGNATURE) + 1):
        wrong = SIGNATURE[:end - 1] + bytes([SIGNATURE[end - 1] ^ 0x80])
        with pytest.raises(ProxyHeaderError, match="signature"):
            parse_proxy_header(wrong)


# -- any input -------------------------------------------------------------------------

ports = st.integers(0, 65535)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
tlvs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=64)), max_size=6).map(
    lambda items: b"".join(tlv(kind, value) for kind, value in items))


@st.composite
def valid_headers(draw: st.DrawFn) -> tuple[bytes, ProxyHeader]:
    """A header from support.proxy and what it must parse to."""
    local = draw(st.booleans())
    addresses = draw(st.sampled_from([ipv4, ipv6]))
    source, destination = (draw(addresses), draw(ports)), (draw(addresses), draw(ports))
    extra = draw(tlvs)
    header = proxy_v2(source, destination, local=local, tlvs=extra)
    if local:
        return header, ProxyHeader(ProxyCommand.LOCAL, None, None, len(header))

    def expected(address: tuple[str, int]) -> tuple[str, int]:
        parsed = ipaddress.ip_address(address[0])
        mapped = getattr(parsed, "ipv4_mapped", None)
        return str(mapped or parsed), address[1]
    return header, ProxyHeader(ProxyCommand.PROXY, expected(source), expected(destination),
                               len(header))


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A valid header with some bytes changed, cut or added: mostly near misses."""
    header = bytearray(draw(valid_headers())[0])
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(header) - 1))
        header[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):  # a declared length unrelated to the body
        header[14:16] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    header = header[:draw(st.integers(0, len(header)))]
    return bytes(header) + draw(st.binary(max_size=64))


any_input = st.one_of(
    st.binary(max_size=700),
    st.binary(max_size=600).map(lambda tail: SIGNATURE + tail),
    st.builds(lambda cmd, fam, tail: SIGNATURE + bytes([cmd, fam]) + tail,
              st.integers(0, 255), st.sampled_from([TCP4, TCP6, UNSPEC, UDP4, UNIX]),
              st.binary(max_size=600)),
    mangled(),
)

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(valid_headers(), st.binary(max_size=64))
def test_round_trip(case: tuple[bytes, ProxyHeader], after: bytes) -> None:
    header, expected = case
    assert parse_proxy_header(header + after) == expected


@FUZZ
@given(any_input, st.binary(max_size=64))
@example(SIGNATURE + b"\x21\x11\x00\x0e" + bytes(12) + b"\x01\x00", b"")  # 2 stray bytes
@example(SIGNATURE + b"\x21\x11\x00\x04abcd", b"")  # addresses cut short
def test_any_input_is_parsed_or_refused_within_its_declared_length(data: bytes,
                                                                   junk: bytes) -> None:
    result = outcome(data)  # anything but ProxyHeaderError escapes and fails the test
    if isinstance(result, ProxyHeader):
        assert result.length <= min(len(data), MAX_HEADER_BYTES)
        assert result.length == 16 + int.from_bytes(data[14:16], "big")
    if len(data) >= 16:
        declared_end = 16 + int.from_bytes(data[14:16], "big")
        if len(data) >= declared_end:
            # Nothing past the declared length is looked at: cut there, or followed by
            # anything else, the answer is the same.
            assert outcome(data[:declared_end]) == result
            assert outcome(data[:declared_end] + junk) == result


@FUZZ
@given(any_input)
def test_a_prefix_is_not_yet_or_the_same_refusal(data: bytes) -> None:
    result = outcome(data)
    for end in range(len(data)):
        earlier = outcome(data[:end])
        if isinstance(result, str):
            assert earlier is None or earlier == result
        elif isinstance(result, ProxyHeader) and end >= result.length:
            assert earlier == result
        else:
            assert earlier is None  # no refusal on the way to a header or to "not yet"
