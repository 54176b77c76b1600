"""A TLS client without a certificate, with an expired one, or from an unknown CA never
reaches CONNECT."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest

from bastion.pki import cert_to_pem, create_root_ca, issue_device_certificate, private_key_to_pem
from bastion.datadir import load_ca
from support.clients import DeviceFiles, Client, tls_socket
from bastion.mqtt import MQTT_3_1_1, Connect, encode


def _write(tmp_path, name, cert, key, ca_path):
    cert_path = tmp_path / f"{name}.cert.pem"
    key_path = tmp_path / f"{name}.key.pem"
    cert_path.write_bytes(cert_to_pem(cert))
    key_path.write_bytes(private_key_to_pem(key))
    return DeviceFiles(name, cert_path, key_path, ca_path)


def _refused(bastion, device, ca_path):
    """The handshake fails, or the first read after it does: no CONNACK either way."""
    try:
        sock = tls_socket(device, bastion.port, ca=ca_path)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return
    with sock:
        try:
            sock.sendall(encode(Connect("x"), MQTT_3_1_1))
            data = sock.recv(4)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return
        assert data == b"", f"got {data!r}: the server accepted the client"


def test_no_client_certificate_is_refused(bastion, ca_path):
    _refused(bastion, None, ca_path)


def test_certificate_from_unknown_ca_is_refused(bastion, ca_path, tmp_path):
    other_ca, other_key = create_root_ca("Not Bastion")
    cert, key = issue_device_certificate(other_ca, other_key, common_name="intruder")
    _refused(bastion, _write(tmp_path, "intruder", cert, key, ca_path), ca_path)


def test_expired_certificate_is_refused(bastion, datadir, ca_path, tmp_path):
    ca_cert, ca_key = load_ca(datadir)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    cert, key = issue_device_certificate(ca_cert, ca_key, common_name="old",
                                         not_before=past, valid_days=1)
    _refused(bastion, _write(tmp_path, "old", cert, key, ca_path), ca_path)


def test_tls_1_1_is_refused(bastion, device):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(device.ca))
    context.load_cert_chain(str(device.cert), str(device.key))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our side really offer TLS 1.1
    import socket

    with socket.create_connection(("127.0.0.1", bastion.port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            context.wrap_socket(raw, server_hostname="127.0.0.1").close()


def test_valid_device_is_accepted_as_control(bastion, device):
    client = Client(device, bastion.port).connect()
    client.disconnect()
