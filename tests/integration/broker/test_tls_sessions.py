"""TLS session resumption: off unless configured (every connection proves possession of
the device's private key); when turned on, a resumed session is still checked at CONNECT."""

from __future__ import annotations

import socket
import ssl

import pytest

from bastion.mqtt import MQTT_3_1_1, Connack, Connect, PacketDecoder, ReasonCode, encode
from conftest import start_bastion
from support.clients import HOST


def _context(device):
    context = ssl.create_default_context(cafile=str(device.ca))
    context.load_cert_chain(str(device.cert), str(device.key))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def _connect(context, port, client_id, session=None):
    """A TLS 1.3 connection that sends CONNECT and reads the CONNACK (session tickets,
    if any, arrive before it). Returns the socket and the CONNACK."""
    raw = socket.create_connection((HOST, port), timeout=5)
    sock = context.wrap_socket(raw, server_hostname=HOST, session=session)
    sock.sendall(encode(Connect(client_id), MQTT_3_1_1))
    decoder = PacketDecoder(version=MQTT_3_1_1)
    connack = None
    while connack is None:
        data = sock.recv(4096)
        if not data:
            break
        decoder.feed(data)
        connack = decoder.next_packet()
    return sock, connack


def test_no_session_ticket_by_default(bastion, make_device):
    device = make_device()
    context = _context(device)
    sock, connack = _connect(context, bastion.port, device.name)
    with sock:
        assert isinstance(connack, Connack) and connack.reason_code is ReasonCode.SUCCESS
        assert sock.version() == "TLSv1.3"
        assert not sock.session.has_ticket
    # Offering that session again is a full handshake.
    again, _ = _connect(context, bastion.port, device.name, session=sock.session)
    with again:
        assert not again.session_reused


@pytest.fixture
def resuming_bastion(datadir):
    running = start_bastion(datadir, tls_session_tickets=1)
    try:
        yield running
    finally:
        running.stop()


def test_configured_tickets_resume_and_connect_is_still_checked(resuming_bastion, make_device):
    device = make_device()
    context = _context(device)
    sock, connack = _connect(context, resuming_bastion.port, device.name)
    with sock:
        assert connack.reason_code is ReasonCode.SUCCESS
        session = sock.session
        assert session.has_ticket
    resumed, connack = _connect(context, resuming_bastion.port, device.name, session=session)
    with resumed:
        assert resumed.session_reused
        assert connack.reason_code is ReasonCode.SUCCESS
    # A resumed session skips the certificate exchange, not the registry: once the
    # certificate is revoked, resuming gets the same refusal as a full handshake.
    resuming_bastion.app.plane.identity.update_certificate(device.certificate_id, "REVOKED")
    refused, connack = _connect(context, resuming_bastion.port, device.name, session=session)
    with refused:
        assert refused.session_reused
        assert connack is not None and connack.reason_code is not ReasonCode.SUCCESS
