"""Malformed and hostile clients: each closes its own connection, nothing else is affected."""

from __future__ import annotations

import socket
import time

import pytest

from bastion.mqtt import (
    MQTT_3_1_1,
    MQTT_5,
    Connect,
    Publish,
    ReasonCode,
    Subscribe,
    Subscription,
    decode,
    encode,
)
from support.clients import HOST, Client, read_until_closed, tls_socket


def connect_bytes(client_id: str, version: int = MQTT_3_1_1) -> bytes:
    return encode(Connect(client_id, protocol_version=version, keep_alive=30), version)


def connected_socket(device, port, version=MQTT_3_1_1, client_id="raw"):
    sock = tls_socket(device, port, ca=device.ca)
    sock.sendall(connect_bytes(client_id, version))
    sock.settimeout(5)
    head = sock.recv(2)
    rest = sock.recv(head[1])
    connack = decode(head + rest, version)
    assert connack.reason_code is ReasonCode.SUCCESS
    return sock


@pytest.fixture
def bystander(bastion, make_device):
    """A healthy client that must keep working while others misbehave."""
    client = Client(make_device(), bastion.port).connect()
    client.subscribe("bystander/#", 1)
    yield client
    client.publish("bystander/check", b"alive", qos=1)
    assert client.expect(1)[0].payload == b"alive"
    assert not client.disconnected.is_set()
    client.disconnect()


BAD_FIRST_PACKETS = [
    pytest.param(encode(Publish("a/b", b"x"), MQTT_3_1_1), id="publish-before-connect"),
    pytest.param(b"\x10\x05\x00\x04MQT", id="truncated-protocol-name"),
    pytest.param(b"\x10\xff\xff\xff\xff\x7f", id="remaining-length-over-4-bytes"),
    pytest.param(b"\x30", id="half-a-fixed-header-then-silence"),
    pytest.param(b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x1e\x00\x00", id="reserved-connect-flag"),
]


@pytest.mark.parametrize("data", BAD_FIRST_PACKETS)
def test_bad_first_packet_closes_that_connection(bastion, device, bystander, data):
    sock = tls_socket(device, bastion.port, ca=device.ca)
    with sock:
        sock.sendall(data)
        # Nothing but (at most) a refusing CONNACK comes back, then the close.
        assert len(read_until_closed(sock)) <= 4


def test_unsupported_protocol_version_gets_return_code_1(bastion, device, bystander):
    sock = tls_socket(device, bastion.port, ca=device.ca)
    with sock:
        sock.sendall(b"\x10\x0c\x00\x04MQTT\x07\x02\x00\x1e\x00\x00")
        assert read_until_closed(sock) == b"\x20\x02\x00\x01"


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["mqtt311", "mqtt5"])
def test_second_connect_is_a_protocol_error(bastion, device, bystander, version):
    sock = connected_socket(device, bastion.port, version, client_id=f"second-{version}")
    with sock:
        sock.sendall(connect_bytes(f"second-{version}", version))
        data = read_until_closed(sock)
        if version == MQTT_5:
            assert data == b"\xe0\x02\x82\x00" or data.startswith(b"\xe0")
            assert decode(data, MQTT_5).reason_code is ReasonCode.PROTOCOL_ERROR


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["mqtt311", "mqtt5"])
def test_invalid_utf8_topic_closes_with_malformed(bastion, device, bystander, version):
    sock = connected_socket(device, bastion.port, version, client_id=f"utf8-{version}")
    with sock:
        topic = b"bad/\xff\xfe"
        body = len(topic).to_bytes(2, "big") + topic + (b"\x00" if version == MQTT_5 else b"")
        sock.sendall(bytes([0x30, len(body)]) + body)
        data = read_until_closed(sock)
        if version == MQTT_5:
            assert decode(data, MQTT_5).reason_code is ReasonCode.MALFORMED_PACKET
        else:
            assert data == b""


@pytest.mark.parametrize("bad_filter", ["a/#/b", "a+/b", "sport/ten#"])
def test_misplaced_wildcard_closes_the_connection(bastion, device, bystander, bad_filter):
    sock = connected_socket(device, bastion.port, MQTT_5, client_id="wild")
    with sock:
        packet = Subscribe(1, (Subscription("ok/filter"),))
        good = encode(packet, MQTT_5)
        # Patch in the bad filter by hand: the encoder refuses to write one.
        raw = good.replace(b"\x00\x09ok/filter",
                           len(bad_filter).to_bytes(2, "big") + bad_filter.encode())
        raw = bytes([raw[0], len(raw) - 2]) + raw[2:]
        sock.sendall(raw)
        data = read_until_closed(sock)
        code = decode(data, MQTT_5).reason_code
        assert code in (ReasonCode.MALFORMED_PACKET, ReasonCode.TOPIC_FILTER_INVALID)


def test_oversized_publish_closes_the_connection(bastion, device, bystander):
    sock = connected_socket(device, bastion.port, MQTT_5, client_id="big")
    with sock:
        payload = b"x" * (bastion.config.limits.max_payload_bytes + 1)
        sock.sendall(encode(Publish("big/one", payload), MQTT_5))
        data = read_until_closed(sock)
        assert decode(data, MQTT_5).reason_code in (ReasonCode.PACKET_TOO_LARGE,)


def test_client_that_never_sends_connect_is_closed(bastion, device, bystander):
    sock = tls_socket(device, bastion.port, ca=device.ca)
    with sock:
        sock.sendall(b"\x10")  # one byte, then silence
        # The deadline of the wait is the test's bound; the CONNECT deadline itself is
        # tested on a manual clock (tests/unit/broker/test_connect.py).
        assert read_until_closed(sock, timeout=10) == b""


def test_client_that_never_finishes_tls_handshake_is_closed(bastion, bystander):
    with socket.create_connection((HOST, bastion.port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        assert read_until_closed(raw, timeout=10) == b""


def test_keep_alive_timeout_closes_a_silent_client(bastion, device, bystander):
    sock = tls_socket(device, bastion.port, ca=device.ca)
    with sock:
        sock.sendall(encode(Connect("sleepy", keep_alive=1), MQTT_3_1_1))
        sock.settimeout(5)
        assert sock.recv(4) == b"\x20\x02\x00\x00"
        start = time.monotonic()
        assert read_until_closed(sock, timeout=5) == b""
        # Never before one and a half times the keep-alive (the exact bound is tested on
        # a manual clock in tests/unit/broker/test_connect.py).
        assert time.monotonic() - start >= 1.2


def test_plain_tcp_to_the_tls_port_never_reaches_connect(bastion, bystander):
    with socket.create_connection((HOST, bastion.port), timeout=5) as raw:
        raw.sendall(connect_bytes("plain"))
        data = read_until_closed(raw)
        assert b"\x20\x02" not in data  # never a CONNACK
