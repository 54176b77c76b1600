"""JITP and JITR: a device whose certificate a registered CA signed connects for the first
time. With a template on the CA it is provisioned and connects at once; without one its
certificate is registered PENDING_ACTIVATION, the registered event is published and the
connection is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from bastion.controlplane import ControlPlane
from bastion.datadir import DataDir
from bastion.pki import certificate_id
from bastion.registry import CertificateStatus, RegistrationConfig, ResourceNotFoundError
from support.clients import V5, V311, Client, DeviceFiles
from support.running import RunningBastion

from .conftest import FactoryCa, new_factory_ca, unique, verification_for, write_device

JITP_TEMPLATE = json.dumps({
    "Parameters": {
        "AWS::IoT::Certificate::CommonName": {"Type": "String"},
        "AWS::IoT::Certificate::Country": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
                "AttributePayload": {"country": {"Ref": "AWS::IoT::Certificate::Country"}},
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                           "Status": "ACTIVE"},
            "OverrideSettings": {"Status": "DO_NOTHING"},
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {"PolicyDocument": json.dumps({
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "iot:Connect",
                     "Resource": "arn:aws:iot:us-east-1:123456789012:client/"
                                 "${iot:Connection.Thing.ThingName}"},
                    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive",
                                                   "iot:Subscribe"],
                     "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/line/*",
                                  "arn:aws:iot:us-east-1:123456789012:topicfilter/line/*"]},
                ]})},
        },
    },
})


def register_ca(plane: ControlPlane, ca: FactoryCa, config: RegistrationConfig | None
                ) -> str:
    code = plane.identity.get_registration_code()
    record = plane.identity.register_ca_certificate(
        ca.pem, verification_for(ca, code), set_as_active=True,
        allow_auto_registration=True, registration_config=config)
    return record.certificate_id


@pytest.fixture
def factory(plane: ControlPlane) -> tuple[FactoryCa, str]:
    """A customer CA registered with a JITP template (before Bastion starts, so that its
    TLS trusts the CA from the first handshake)."""
    ca = new_factory_ca("JITP Factory CA")
    return ca, register_ca(plane, ca, RegistrationConfig(
        template_body=JITP_TEMPLATE, role_arn="arn:aws:iam::123456789012:role/JITP"))


@pytest.fixture
def jitr_factory(plane: ControlPlane) -> tuple[FactoryCa, str]:
    ca = new_factory_ca("JITR Factory CA")
    return ca, register_ca(plane, ca, None)


@pytest.fixture
def closed_factory(plane: ControlPlane) -> FactoryCa:
    """A registered, ACTIVE CA whose auto-registration is disabled."""
    ca = new_factory_ca("Closed Factory CA")
    code = plane.identity.get_registration_code()
    plane.identity.register_ca_certificate(ca.pem, verification_for(ca, code),
                                           set_as_active=True)
    return ca


def factory_device(ca: FactoryCa, directory: Path, datadir: DataDir, *, name: str,
                   country: str | None = "DE") -> DeviceFiles:
    subject = {NameOID.COMMON_NAME: name}
    if country is not None:
        subject[NameOID.COUNTRY_NAME] = country
    cert_pem, key_pem = ca.issue(subject)
    return write_device(directory, name, cert_pem, key_pem, datadir.ca_cert_path)


def cert_id(files: DeviceFiles) -> str:
    from cryptography import x509

    return certificate_id(x509.load_pem_x509_certificate(files.cert.read_bytes()))


@pytest.mark.parametrize("version", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_jitp_device_connects_on_first_sight(
        factory: tuple[FactoryCa, str], prov_bastion: RunningBastion, datadir: DataDir,
        tmp_path: Path, version: int) -> None:
    ca, ca_id = factory
    name = unique("line-robot-")
    files = factory_device(ca, tmp_path, datadir, name=name)

    client = Client(files, prov_bastion.port, version=version, client_id=name).connect()
    try:
        client.subscribe("line/7", 1)
        client.publish("line/7", b"first", qos=1)
        assert client.expect(1)[0].payload == b"first"
    finally:
        client.disconnect()

    plane = prov_bastion.app.plane
    record = plane.identity.describe_certificate(cert_id(files))
    assert record.status is CertificateStatus.ACTIVE
    assert record.ca_certificate_id == ca_id
    assert plane.registry.describe_thing(name).attributes == {"country": "DE"}
    principals, _ = plane.registry.list_thing_principals(name)
    assert principals == [record.certificate_arn]


def test_jitp_refuses_a_certificate_missing_a_template_parameter(
        factory: tuple[FactoryCa, str], prov_bastion: RunningBastion, datadir: DataDir,
        tmp_path: Path) -> None:
    ca, _ = factory
    name = unique("no-country-")
    files = factory_device(ca, tmp_path, datadir, name=name, country=None)

    client = Client(files, prov_bastion.port, version=V5, client_id=name)
    client.connect(expect_success=False)
    assert client.connack.value == 0x87
    record = prov_bastion.app.plane.identity.describe_certificate(cert_id(files))
    assert record.status is CertificateStatus.PENDING_ACTIVATION


def test_jitr_registers_pending_activation_and_publishes_the_event(
        jitr_factory: tuple[FactoryCa, str], prov_bastion: RunningBastion, datadir: DataDir,
        make_device: Callable[..., DeviceFiles], tmp_path: Path) -> None:
    ca, ca_id = jitr_factory
    watcher = Client(make_device(), prov_bastion.port, version=V5).connect()
    watcher.subscribe(f"$aws/events/certificates/registered/{ca_id}", 1)
    name = unique("jitr-")
    files = factory_device(ca, tmp_path, datadir, name=name)

    device = Client(files, prov_bastion.port, version=V5, client_id=name)
    device.connect(expect_success=False)
    assert device.connack.value == 0x87  # AWS drops the first connection too

    event = json.loads(watcher.expect(1)[0].payload)
    identifier = cert_id(files)
    assert event["certificateId"] == identifier
    assert event["caCertificateId"] == ca_id
    assert event["certificateStatus"] == "PENDING_ACTIVATION"
    assert event["awsAccountId"] == "123456789012"
    assert isinstance(event["timestamp"], int)
    assert event["certificateRegistrationTimestamp"].isdigit()
    plane = prov_bastion.app.plane
    record = plane.identity.describe_certificate(identifier)
    assert record.status is CertificateStatus.PENDING_ACTIVATION

    # Presenting a PENDING_ACTIVATION certificate publishes the event again (as AWS does).
    again = Client(files, prov_bastion.port, version=V311, client_id=name)
    again.connect(expect_success=False)
    assert json.loads(watcher.expect(1)[0].payload)["certificateId"] == identifier

    # What a JITR rule would do: activate and attach a policy. Then the device connects.
    plane.identity.update_certificate(identifier, CertificateStatus.ACTIVE)
    plane.policies.attach_policy("bastion-test-open", record.certificate_arn)
    Client(files, prov_bastion.port, version=V5, client_id=name).connect().disconnect()
    watcher.disconnect()


def test_a_ca_without_auto_registration_registers_nothing(
        closed_factory: FactoryCa, prov_bastion: RunningBastion, datadir: DataDir,
        tmp_path: Path) -> None:
    name = unique("closed-")
    files = factory_device(closed_factory, tmp_path, datadir, name=name)

    client = Client(files, prov_bastion.port, version=V5, client_id=name)
    client.connect(expect_success=False)
    assert client.connack.value == 0x87
    with pytest.raises(ResourceNotFoundError):
        prov_bastion.app.plane.identity.describe_certificate(cert_id(files))
