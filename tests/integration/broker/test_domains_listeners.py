"""The listeners of a Bastion of their own (no API: the domain service is called
directly). The ALPN listener (port 443 in production) serves domain configurations by
SNI as the ``mqtts`` listener does: an AWS IoT SDK's handshake (ALPN ``x-amzn-mqtt-ca``)
with a domain's server name gets that domain's certificate and completes an MQTT
CONNECT; a TLS 1.3-only domain refuses TLS 1.2 there too. The default domain takes a
security policy of its own, live, for unknown names and clients sending none."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from bastion.config import ApiConfig, Config, MQTTConfig
from bastion.controlplane import ProvisionedDevice, provision_device
from bastion.datadir import init_data_dir
from bastion.mqtt import MQTT_3_1_1, Connect, encode
from support.clients import HOST
from support.running import RunningBastion
from support.server_certs import OperatorCa

DOMAIN = "mqtt.alpn.example.test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[RunningBastion, ProvisionedDevice, OperatorCa]]:
    root = tmp_path_factory.mktemp("alpn")
    datadir = init_data_dir(root / "data")
    config = Config(mqtt=MQTTConfig(host=HOST, port=0, alpn_port=_free_port()),
                    api=ApiConfig(enabled=False))
    running = RunningBastion(config, datadir).start()
    try:
        app = running.app
        device = provision_device(app.plane, datadir, "alpn-device", root / "devices")
        ca = OperatorCa()
        issued = ca.issue(DOMAIN)
        domains = app.services.domains
        arn = domains.import_certificate(issued.certificate_pem, issued.key_pem,
                                         issued.chain_pem)
        before = app.domains.generation if app.domains is not None else 0
        domains.create_domain_configuration(
            "alpn", domain_name=DOMAIN, server_certificate_arns=[arn],
            security_policy_name="IoTSecurityPolicy_TLS13_1_3_2022_10")
        deadline = time.monotonic() + 10
        while app.domains is not None and app.domains.generation == before:
            assert time.monotonic() < deadline, "the domain was never served"
            time.sleep(0.02)
        yield running, device, ca
    finally:
        running.stop()


def _connect(running: RunningBastion, device: ProvisionedDevice, ca: OperatorCa, *,
             maximum: ssl.TLSVersion | None = None) -> tuple[str, str | None, bytes]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca.pem.decode())
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    context.set_alpn_protocols(["x-amzn-mqtt-ca"])
    if maximum is not None:
        context.maximum_version = maximum
    raw = socket.create_connection((HOST, running.app.port("mqtts-alpn")), timeout=5)
    # the handshake runs inside the block, so a refused one still closes the socket
    with raw, context.wrap_socket(raw, server_hostname=DOMAIN,
                                  do_handshake_on_connect=False) as sock:
        sock.do_handshake()
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        name = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)[0].value
        sock.sendall(encode(Connect(device.thing_name, keep_alive=30), MQTT_3_1_1))
        answer = b""
        while len(answer) < 4:
            chunk = sock.recv(4 - len(answer))
            if not chunk:
                break
            answer += chunk
        return str(name), sock.selected_alpn_protocol(), answer


def test_the_alpn_listener_serves_the_domain(
        served: tuple[RunningBastion, ProvisionedDevice, OperatorCa]) -> None:
    running, device, ca = served
    assert _connect(running, device, ca) == (DOMAIN, "x-amzn-mqtt-ca", b"\x20\x02\x00\x00")


def test_the_alpn_listener_keeps_the_domains_policy(
        served: tuple[RunningBastion, ProvisionedDevice, OperatorCa]) -> None:
    running, device, ca = served
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        _connect(running, device, ca, maximum=ssl.TLSVersion.TLSv1_2)


def _default_handshake(running: RunningBastion, device: ProvisionedDevice,
                       server_name: str | None, maximum: ssl.TLSVersion | None) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    context.load_verify_locations(cafile=str(running.app.datadir.ca_cert_path))
    context.check_hostname = False
    if maximum is not None:
        context.maximum_version = maximum
    raw = socket.create_connection((HOST, running.port), timeout=5)
    with raw, context.wrap_socket(raw, server_hostname=server_name,
                                  do_handshake_on_connect=False) as sock:
        sock.do_handshake()
        return str(sock.version())


def test_the_default_domain_takes_a_policy_live(
        served: tuple[RunningBastion, ProvisionedDevice, OperatorCa]) -> None:
    running, device, _ = served
    domains, routing = running.app.services.domains, running.app.domains
    assert routing is not None
    tls12 = ssl.TLSVersion.TLSv1_2
    assert _default_handshake(running, device, "other.example.test", tls12) == "TLSv1.2"

    def policy(name: str) -> None:
        before = routing.generation
        domains.update_domain_configuration("iot:Data-ATS", security_policy_name=name)
        deadline = time.monotonic() + 10
        while routing.generation == before:
            assert time.monotonic() < deadline, "the policy never reached the listeners"
            time.sleep(0.02)

    policy("IoTSecurityPolicy_TLS13_1_3_2022_10")
    try:
        for server_name in ("other.example.test", None):
            with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
                _default_handshake(running, device, server_name, tls12)
            assert _default_handshake(running, device, server_name, None) == "TLSv1.3"
    finally:
        policy("IoTSecurityPolicy_TLS13_1_2_2022_10")
    assert _default_handshake(running, device, None, tls12) == "TLSv1.2"
