"""Bastion behind a TCP load balancer: the PROXY v2 header on real sockets, before real
TLS with certificates from the data directory's CA.

The test client plays the balancer: it connects from 127.0.0.1 (configured as trusted),
writes the header a balancer would, then the device's TLS and MQTT. The address in the
header must be what policies (``aws:SourceIp``), the ClientConnected event and the
connection journal see; anything else must close the connection.
"""

from __future__ import annotations

import queue
import socket
import ssl
import uuid
from collections.abc import Iterator

import pytest

from bastion.broker import ClientConnected
from bastion.datadir import DataDir
from bastion.mqtt import MQTT_3_1_1, Connack, Connect, Pingreq, Pingresp, ReasonCode, decode
from bastion.mqtt import encode as encode_packet
from conftest import start_bastion
from support.clients import HOST, read_until_closed, tls_socket, wait_for
from support.proxy import SAMPLE_TLVS, UDP4, proxy_v2, tlv
from support.running import RunningBastion

LOOPBACK = ("127.0.0.1",)


@pytest.fixture(scope="module")
def proxied(datadir: DataDir) -> Iterator[RunningBastion]:
    """Bastion with the PROXY protocol on, trusting the test client's 127.0.0.1."""
    running = start_bastion(datadir, proxy_protocol=True, proxy_trusted=LOOPBACK)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def connected_events(proxied: RunningBastion) -> Iterator[queue.Queue[ClientConnected]]:
    events: queue.Queue[ClientConnected] = queue.Queue()
    unsubscribe = proxied.call(lambda: proxied.app.bus.subscribe(ClientConnected, events.put))
    yield events
    proxied.call(unsubscribe)


def mqtt_connect(sock: ssl.SSLSocket, client_id: str) -> Connack:
    sock.sendall(encode_packet(Connect(client_id, keep_alive=30), MQTT_3_1_1))
    head = sock.recv(2)
    assert head, "closed instead of CONNACK"
    packet = decode(head + sock.recv(head[1]), MQTT_3_1_1)
    assert isinstance(packet, Connack)
    return packet


def raw(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5)
    if data:
        sock.sendall(data)
    return sock


def handshake_refused(device, port: int, preamble: bytes = b"") -> None:
    """The device's TLS handshake does not complete."""
    try:
        sock = tls_socket(device, port, ca=device.ca, preamble=preamble)
    except OSError:  # SSLError, ConnectionResetError, BrokenPipeError
        return
    with sock:
        # A reset before the handshake began: Python wraps a socket that is no longer
        # connected without attempting a handshake at all.
        assert sock.version() is None, "the TLS handshake completed"


def closed_without_tls(sock: socket.socket) -> None:
    """The server closes the connection, and sends nothing (no TLS record) first."""
    with sock:
        assert read_until_closed(sock) == b""


@pytest.mark.parametrize("header,ip,port", [
    pytest.param(proxy_v2(("203.0.113.7", 5555)), "203.0.113.7", 5555, id="ipv4"),
    pytest.param(proxy_v2(("2001:db8::7", 5555), ("2001:db8::1", 8883)), "2001:db8::7", 5555,
                 id="ipv6"),
    pytest.param(proxy_v2(("::ffff:203.0.113.7", 6000), ("::ffff:198.51.100.1", 8883)),
                 "203.0.113.7", 6000, id="ipv4-mapped"),
    pytest.param(proxy_v2(("203.0.113.8", 7000), tlvs=SAMPLE_TLVS), "203.0.113.8", 7000,
                 id="with-tlvs"),
])
def test_the_client_address_comes_from_the_header(proxied, connected_events, device,
                                                  header, ip, port):
    client_id = f"proxied-{uuid.uuid4().hex[:8]}"
    with tls_socket(device, proxied.port, ca=device.ca, preamble=header) as sock:
        assert mqtt_connect(sock, client_id).reason_code is ReasonCode.SUCCESS
        event = connected_events.get(timeout=5)
        assert (event.client_id, event.source_ip, event.source_port) == (client_id, ip, port)
        session = proxied.call(lambda: proxied.app.broker.directory.get(client_id))
        assert session is not None
        assert (session.principal.source_ip, session.principal.source_port) == (ip, port)

    journal = proxied.app.journal

    def rows():
        proxied.run(journal.flush())
        with proxied.app.plane.store.transaction() as uow:
            return [r for r in uow.connections.of_certificate(device.certificate_id)
                    if r.client_id == client_id]

    wait_for(lambda: len(rows()) == 1, 5, "the connection journaled")
    assert rows()[0].source_ip == ip


def test_source_ip_policies_see_the_client_address(proxied, plane, make_device):
    name = f"proxy-source-ip-{uuid.uuid4().hex[:8]}"
    plane.policies.create_policy(name, (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",'
        '"Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}'))
    device = make_device(policy=name)
    inside = proxy_v2(("203.0.113.9", 1234))
    with tls_socket(device, proxied.port, ca=device.ca, preamble=inside) as sock:
        assert mqtt_connect(sock, "inside").reason_code is ReasonCode.SUCCESS
    # The balancer's own address (127.0.0.1) is outside too: what decides is the header.
    outside = proxy_v2(("198.51.100.9", 1234))
    with tls_socket(device, proxied.port, ca=device.ca, preamble=outside) as sock:
        assert mqtt_connect(sock, "outside").reason_code is ReasonCode.NOT_AUTHORIZED


def test_a_trusted_balancer_must_send_the_header(proxied, device):
    # A TLS client straight at the listener would carry the balancer's own address.
    handshake_refused(device, proxied.port)


def test_local_command_is_closed_cleanly(proxied):
    with raw(proxied.port, proxy_v2(local=True)) as sock:
        assert sock.recv(1) == b""  # an orderly FIN, not a reset


@pytest.mark.parametrize("data", [
    pytest.param(b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + bytes(12), id="bad-signature"),
    pytest.param(b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 8883\r\n", id="proxy-v1"),
    pytest.param(proxy_v2(length=600), id="length-over-the-limit"),
    pytest.param(proxy_v2(length=4), id="length-short-of-the-addresses"),
    pytest.param(proxy_v2(family=UDP4), id="udp"),
    pytest.param(proxy_v2(family=0x00), id="unspec"),
    pytest.param(proxy_v2(tlvs=tlv(0x01, b"mqtt")[:-1]), id="tlv-runs-past-the-length"),
])
def test_malformed_header_is_closed_and_nobody_else_notices(proxied, device, caplog, data):
    bystander = tls_socket(device, proxied.port, ca=device.ca, preamble=proxy_v2())
    with bystander:
        assert mqtt_connect(bystander, "bystander").reason_code is ReasonCode.SUCCESS
        with caplog.at_level("INFO", "bastion.broker.proxy"):
            closed_without_tls(raw(proxied.port, data))
            wait_for(lambda: "PROXY header from ('127.0.0.1'" in caplog.text, 5,
                     "the refusal logged")
        assert "refused" in caplog.text
        bystander.sendall(encode_packet(Pingreq(), MQTT_3_1_1))
        assert isinstance(decode(bystander.recv(2), MQTT_3_1_1), Pingresp)


def test_half_a_header_then_silence_is_cut_at_the_connect_timeout(proxied, caplog):
    with caplog.at_level("INFO", "bastion.broker.proxy"):
        closed_without_tls(raw(proxied.port, proxy_v2(tlvs=SAMPLE_TLVS)[:30]))
        wait_for(lambda: "timed out" in caplog.text, 5, "the timeout logged")


def test_silence_from_the_start_is_cut_too(proxied):
    closed_without_tls(raw(proxied.port))


def test_an_untrusted_peer_is_refused_even_with_a_header(datadir, device, caplog):
    running = start_bastion(datadir, proxy_protocol=True, proxy_trusted=("192.0.2.1",))
    try:
        with caplog.at_level("INFO", "bastion.broker.proxy"):
            closed_without_tls(raw(running.port, proxy_v2(("203.0.113.7", 5555))))
        assert "not a trusted proxy" in caplog.text
        # Its TLS client cannot get in either way: with the header it is refused before
        # TLS, without it as well.
        for preamble in (proxy_v2(), b""):
            handshake_refused(device, running.port, preamble)
    finally:
        running.stop()


def test_off_by_default_a_header_is_not_taken(bastion, device):
    # Without proxy_protocol nobody may claim an address: the header is not TLS.
    handshake_refused(device, bastion.port, proxy_v2())
