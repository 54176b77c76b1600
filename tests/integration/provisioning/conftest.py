"""Zero-touch provisioning against a running Bastion: AWS's device SDK (``awsiotsdk``)
doing fleet provisioning by claim, devices of a registered CA connecting for the first
time (JITP/JITR), and pre-provisioning hooks served by a real HTTP server on loopback.

SDK callbacks run on the CRT's threads; they put what arrives into queues that the test
reads with a deadline. Nothing here sleeps.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from awscrt import mqtt, mqtt5
from awsiot import iotidentity, mqtt5_client_builder, mqtt_connection_builder
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig, ProvisioningConfig
from bastion.datadir import DataDir
from bastion.pki import PrivateKey, cert_to_pem, create_root_ca, issue_device_certificate
from bastion.provisioning import ProvisioningService
from support.clients import DeviceFiles
from support.running import RunningBastion

TIMEOUT = 10.0
QOS1 = mqtt.QoS.AT_LEAST_ONCE
HOOK_TIMEOUT = 1.0  # the configured hook deadline of these tests (AWS's is 5 s)

DEVICE_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": "arn:aws:iot:us-east-1:123456789012:topic/fleet/${iot:Connection.Thing.ThingName}/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/fleet/${iot:Connection.Thing.ThingName}/*"},
    ],
})


def fleet_template(*, prefix: str = "sensor-") -> str:
    """A fleet provisioning template: thing ``<prefix><SerialNumber>``, the device policy
    above, and a device configuration."""
    return json.dumps({
        "Parameters": {
            "SerialNumber": {"Type": "String"},
            "Site": {"Type": "String", "Default": "plant-1"},
            "AWS::IoT::Certificate::Id": {"Type": "String"},
        },
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": {"Fn::Join": ["", [prefix, {"Ref": "SerialNumber"}]]},
                    "AttributePayload": {"site": {"Ref": "Site"},
                                         "serial": {"Ref": "SerialNumber"}},
                },
            },
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                               "Status": "Active"},
            },
            "policy": {"Type": "AWS::IoT::Policy",
                       "Properties": {"PolicyDocument": DEVICE_POLICY}},
        },
        "DeviceConfiguration": {
            "topic": {"Fn::Sub": "fleet/${SerialNumber}/telemetry"},
            "site": {"Ref": "Site"},
        },
    })


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def prov_bastion(datadir: DataDir) -> Iterator[RunningBastion]:
    """A running Bastion whose pre-provisioning hooks have :data:`HOOK_TIMEOUT` seconds."""
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(enabled=False),
                    provisioning=ProvisioningConfig(hook_timeout=HOOK_TIMEOUT))
    running = RunningBastion(config, datadir).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def service(prov_bastion: RunningBastion) -> ProvisioningService:
    """The running Bastion's provisioning service (the one both doors call)."""
    return prov_bastion.app.services.provisioning


def write_device(directory: Path, name: str, cert_pem: str, key_pem: str,
                 ca: Path) -> DeviceFiles:
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{name}.cert.pem"
    key = directory / f"{name}.key.pem"
    cert.write_text(cert_pem)
    key.write_text(key_pem)
    key.chmod(0o600)
    return DeviceFiles(name, cert, key, ca)


@pytest.fixture
def make_claim(service: ProvisioningService, datadir: DataDir, tmp_path: Path
               ) -> Callable[[str], DeviceFiles]:
    """``make_claim(template)``: a CreateProvisioningClaim certificate, on disk."""

    def make(template: str) -> DeviceFiles:
        claim = service.create_provisioning_claim(template)
        return write_device(tmp_path / "claims", unique("claim-"), claim.certificate_pem,
                            claim.key_pair.private_key, datadir.ca_cert_path)

    return make


# -- the device SDK ---------------------------------------------------------------------


class Rejected(AssertionError):
    """The service answered on a ``…/rejected`` topic."""

    def __init__(self, error: Any) -> None:
        super().__init__(f"rejected: {error.status_code} {error.error_code}: "
                         f"{error.error_message}")
        self.status_code = error.status_code
        self.error_code = error.error_code
        self.error_message = error.error_message


@dataclass
class IdentityDevice:
    """``awsiot.iotidentity.IotIdentityClient`` over the SDK's MQTT 3.1.1 connection, or
    its MQTT 5 client — a device doing fleet provisioning as written for AWS IoT."""

    files: DeviceFiles
    port: int
    mqtt5_client: bool = False
    client_id: str = field(default_factory=lambda: unique("claim-client-"))

    def __post_init__(self) -> None:
        self.accepted: queue.Queue[Any] = queue.Queue()
        self.rejected: queue.Queue[Any] = queue.Queue()
        self._connection: mqtt.Connection | None = None
        self._client5: mqtt5.Client | None = None
        files = self.files
        if self.mqtt5_client:
            connected: Future[None] = Future()
            self._client5 = mqtt5_client_builder.mtls_from_path(
                endpoint="localhost", port=self.port, ca_filepath=str(files.ca),
                cert_filepath=str(files.cert), pri_key_filepath=str(files.key),
                client_id=self.client_id,
                on_lifecycle_connection_success=lambda data: _resolve(connected),
                on_lifecycle_connection_failure=lambda data: _fail(connected, data))
            self._client5.start()
            connected.result(TIMEOUT)
            self.client = iotidentity.IotIdentityClient(self._client5)
        else:
            self._connection = mqtt_connection_builder.mtls_from_path(
                endpoint="localhost", port=self.port, ca_filepath=str(files.ca),
                cert_filepath=str(files.cert), pri_key_filepath=str(files.key),
                client_id=self.client_id, clean_session=True, keep_alive_secs=30)
            self._connection.connect().result(TIMEOUT)
            self.client = iotidentity.IotIdentityClient(self._connection)

    def _subscribe(self, accepted: Any, rejected: Any, request: Any) -> None:
        future, _ = accepted(request, QOS1, lambda response: self.accepted.put(response))
        future.result(TIMEOUT)
        future, _ = rejected(request, QOS1, lambda error: self.rejected.put(error))
        future.result(TIMEOUT)

    def _answer(self) -> Any:
        deadline = datetime.now(UTC) + timedelta(seconds=TIMEOUT)
        while datetime.now(UTC) < deadline:
            try:
                return self.accepted.get(timeout=0.05)
            except queue.Empty:
                pass
            try:
                raise Rejected(self.rejected.get_nowait())
            except queue.Empty:
                pass
        raise AssertionError("no answer from the provisioning service")

    def create_keys_and_certificate(self) -> iotidentity.CreateKeysAndCertificateResponse:
        c = self.client
        self._subscribe(c.subscribe_to_create_keys_and_certificate_accepted,
                        c.subscribe_to_create_keys_and_certificate_rejected,
                        iotidentity.CreateKeysAndCertificateSubscriptionRequest())
        c.publish_create_keys_and_certificate(
            iotidentity.CreateKeysAndCertificateRequest(), QOS1).result(TIMEOUT)
        return self._answer()

    def create_certificate_from_csr(self, csr: str
                                    ) -> iotidentity.CreateCertificateFromCsrResponse:
        c = self.client
        self._subscribe(c.subscribe_to_create_certificate_from_csr_accepted,
                        c.subscribe_to_create_certificate_from_csr_rejected,
                        iotidentity.CreateCertificateFromCsrSubscriptionRequest())
        c.publish_create_certificate_from_csr(
            iotidentity.CreateCertificateFromCsrRequest(certificate_signing_request=csr),
            QOS1).result(TIMEOUT)
        return self._answer()

    def register_thing(self, template: str, token: str, parameters: dict[str, str]
                       ) -> iotidentity.RegisterThingResponse:
        c = self.client
        self._subscribe(c.subscribe_to_register_thing_accepted,
                        c.subscribe_to_register_thing_rejected,
                        iotidentity.RegisterThingSubscriptionRequest(template_name=template))
        c.publish_register_thing(iotidentity.RegisterThingRequest(
            template_name=template, certificate_ownership_token=token,
            parameters=parameters), QOS1).result(TIMEOUT)
        return self._answer()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.disconnect().result(TIMEOUT)
        if self._client5 is not None:
            self._client5.stop()


def _resolve(future: Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: Future[None], data: Any) -> None:
    if not future.done():
        future.set_exception(AssertionError(f"connection failed: {data.exception}"))


@pytest.fixture
def devices() -> Iterator[list[Any]]:
    """Close every SDK device a test opened."""
    opened: list[Any] = []
    yield opened
    for device in opened:
        with contextlib.suppress(Exception):  # a test that failed mid-way may have closed it
            device.close()


def csr_for(key: PrivateKey, common_name: str = "fleet-device") -> str:
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


# -- pre-provisioning hooks ---------------------------------------------------------------


class HookServer:
    """A real HTTP server on loopback playing a pre-provisioning hook.

    :ivar answer: the JSON answered (or ``None`` to hang until the test ends).
    :ivar calls: the JSON bodies received.
    """

    def __init__(self, answer: dict[str, Any] | None) -> None:
        self.answer = answer
        self.calls: queue.Queue[dict[str, Any]] = queue.Queue()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.calls.put(json.loads(self.rfile.read(length)))
                if hook.answer is None:
                    hook.release.wait(30)  # hangs past the deadline, until teardown
                    return
                body = json.dumps(hook.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hook_server() -> Iterator[Callable[[dict[str, Any] | None], HookServer]]:
    servers: list[HookServer] = []

    def make(answer: dict[str, Any] | None) -> HookServer:
        server = HookServer(answer)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


# -- a customer CA for JITP / JITR ---------------------------------------------------------


@dataclass(frozen=True)
class FactoryCa:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> str:
        return cert_to_pem(self.cert).decode("ascii")

    def issue(self, subject: dict[x509.ObjectIdentifier, str]) -> tuple[str, str]:
        """A device certificate with the given subject, and its key (PEMs)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(oid, value)
                                         for oid, value in subject.items()]))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.cert.public_key()), critical=False)  # type: ignore[arg-type]
                .sign(self.key, hashes.SHA256()))  # type: ignore[arg-type]
        return cert_to_pem(cert).decode("ascii"), key_pem(key)


def new_factory_ca(label: str) -> FactoryCa:
    return FactoryCa(*create_root_ca(f"{label} {uuid.uuid4().hex[:8]}"))


def verification_for(ca: FactoryCa, code: str) -> str:
    cert, _ = issue_device_certificate(ca.cert, ca.key, common_name=code)
    return cert_to_pem(cert).decode("ascii")
