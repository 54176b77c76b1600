"""A CA registered through the verification-certificate flow is trusted by the live
broker's TLS without a restart; deactivating it drops its devices."""

from __future__ import annotations

from bastion.pki import cert_to_pem, create_root_ca, issue_device_certificate, private_key_to_pem
from bastion.registry import CaCertificateStatus
from support.clients import V5, Client, DeviceFiles


def test_new_ca_is_trusted_live_and_deactivation_drops_its_devices(bastion, plane, tmp_path):
    plane = bastion.app.plane
    ca_cert, ca_key = create_root_ca("Factory Line CA")
    code = plane.identity.get_registration_code()
    verification, _ = issue_device_certificate(ca_cert, ca_key, common_name=code)
    record = plane.identity.register_ca_certificate(
        cert_to_pem(ca_cert).decode(), cert_to_pem(verification).decode(), set_as_active=True)

    device_cert, device_key = issue_device_certificate(ca_cert, ca_key, common_name="line-7")
    registered = plane.identity.register_certificate(
        cert_to_pem(device_cert).decode(), cert_to_pem(ca_cert).decode(), status="ACTIVE")
    plane.policies.attach_policy("bastion-test-open", registered.certificate_arn)
    (tmp_path / "line-7.cert.pem").write_bytes(cert_to_pem(device_cert))
    (tmp_path / "line-7.key.pem").write_bytes(private_key_to_pem(device_key))
    device = DeviceFiles("line-7", tmp_path / "line-7.cert.pem", tmp_path / "line-7.key.pem",
                         bastion.datadir.ca_cert_path)

    client = Client(device, bastion.port, version=V5, client_id="line-7").connect()
    client.subscribe("line/7", 1)
    client.publish("line/7", b"up", qos=1)
    assert client.expect(1)[0].payload == b"up"

    plane.identity.update_ca_certificate(record.certificate_id,
                                         new_status=CaCertificateStatus.INACTIVE)
    assert client.disconnected.wait(1.0)
    again = Client(device, bastion.port, version=V5, client_id="line-7")
    again.connect(expect_success=False)
    assert again.connack.value == 0x87


def test_certificate_from_unregistered_ca_fails_the_handshake(bastion, tmp_path):
    import ssl

    import pytest

    from support.clients import tls_socket

    ca_cert, ca_key = create_root_ca("Unregistered CA")
    cert, key = issue_device_certificate(ca_cert, ca_key, common_name="rogue")
    (tmp_path / "rogue.cert.pem").write_bytes(cert_to_pem(cert))
    (tmp_path / "rogue.key.pem").write_bytes(private_key_to_pem(key))
    device = DeviceFiles("rogue", tmp_path / "rogue.cert.pem", tmp_path / "rogue.key.pem",
                         bastion.datadir.ca_cert_path)
    try:
        sock = tls_socket(device, bastion.port, ca=device.ca)
    except (ssl.SSLError, ConnectionResetError):
        return  # refused in the handshake
    with sock:  # TLS 1.3 reports the client-certificate failure on the first read
        sock.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x1e\x00\x00")
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            if sock.recv(4) == b"":
                raise ConnectionResetError("closed without CONNACK")
