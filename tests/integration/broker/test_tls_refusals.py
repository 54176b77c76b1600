"""A TLS client without a certificate, with an expired one, or from an unknown CA never
reaches CONNECT."""

from __future__ import annotations

import datetime as dt
import ssl
import warnings

import pytest

from bastion.datadir import load_ca
from bastion.mqtt import MQTT_3_1_1, Connect, encode
from bastion.pki import cert_to_pem, create_root_ca, issue_device_certificate, private_key_to_pem
from support.clients import Client, DeviceFiles, tls_socket


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
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    cert, key = issue_device_certificate(ca_cert, ca_key, common_name="old",
                                         not_before=past, valid_days=1)
    _refused(bastion, _write(tmp_path, "old", cert, key, ca_path), ca_path)


def _versioned_context(device, version):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(device.ca))
    context.load_cert_chain(str(device.cert), str(device.key))
    with warnings.catch_warnings():  # offering TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our side really offer TLS 1.1
    return context


@pytest.mark.parametrize("version,accepted", [
    (ssl.TLSVersion.TLSv1_1, False),
    (ssl.TLSVersion.TLSv1_2, True),   # control: the same client, one version up, works
    (ssl.TLSVersion.TLSv1_3, True),
])
def test_tls_version_floor_is_1_2(bastion, device, version, accepted):
    import socket

    context = _versioned_context(device, version)
    with socket.create_connection(("127.0.0.1", bastion.port), timeout=5) as raw:
        if accepted:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(encode(Connect(f"tls-{version.name}"), MQTT_3_1_1))
                assert tls.recv(4) == b"\x20\x02\x00\x00"
        else:
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(raw, server_hostname="127.0.0.1").close()


def test_valid_device_is_accepted_as_control(bastion, device):
    client = Client(device, bastion.port).connect()
    client.disconnect()
