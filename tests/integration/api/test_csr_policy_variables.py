"""A device whose certificate comes from CreateCertificateFromCsr (boto3) with two OU values
and subject alternative names connects over mutual TLS (paho, MQTT 5) and is allowed or
denied by policies written with the certificate policy variables — in Resource and in
Condition, ``ForAnyValue:`` / ``ForAllValues:`` on the multi-valued ``….List`` keys — and
``${iot:CertificateId}``."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.clients import V5, Client, DeviceFiles

from .conftest import ACCOUNT, REGION, ApiBastion

ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
DENIED = 0x87


def _subject(common_name: str) -> x509.Name:
    return x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]),
        x509.RelativeDistinguishedName(
            [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "eng")]),
        x509.RelativeDistinguishedName(
            [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
    ])


def _device(api: ApiBastion, iot: Any, name: str, out: Path, statements: list[dict[str, Any]],
            ) -> DeviceFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_subject(name))
           .add_extension(x509.SubjectAlternativeName([
               x509.DNSName(f"{name}.example.com"),
               x509.DNSName("fleet.example.com"),
               x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
               x509.UniformResourceIdentifier(f"urn:acme:{name}"),
               x509.RFC822Name("ops@example.com"),
           ]), critical=False)
           .sign(key, hashes.SHA256()))
    created = iot.create_certificate_from_csr(
        certificateSigningRequest=csr.public_bytes(serialization.Encoding.PEM).decode(),
        setAsActive=True)
    for part in range(0, len(statements), 6):  # a policy holds at most 2048 characters
        policy_name = f"{name}-policy-{part}"
        iot.create_policy(policyName=policy_name, policyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements[part:part + 6]}))
        iot.attach_policy(policyName=policy_name, target=created["certificateArn"])
    out.mkdir(parents=True, exist_ok=True)
    cert, key_path = out / f"{name}.cert.pem", out / f"{name}.key.pem"
    cert.write_text(created["certificatePem"])
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return DeviceFiles(name, cert, key_path, api.datadir.ca_cert_path,
                       created["certificateId"], created["certificateArn"])


def _allow(action: str, resource: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


STATEMENTS: list[dict[str, Any]] = [
    # Resource: the CN, the second OU, the first DNS SAN, the certificate id
    _allow("iot:Connect", f"{ARN}:client/${{iot:Certificate.Subject.CommonName}}"),
    _allow("iot:Publish", f"{ARN}:topic/ou/${{iot:Certificate.Subject.OrganizationalUnit.1}}/*"),
    _allow("iot:Publish",
           f"{ARN}:topic/san/${{iot:Certificate.Subject.AlternativeName.DNSName}}"),
    _allow("iot:Publish", f"{ARN}:topic/cert/${{iot:CertificateId}}"),
    _allow("iot:Publish", f"{ARN}:topic/issuer/${{iot:Certificate.Issuer.CommonName}}"),
    # Condition on the multi-valued keys
    _allow("iot:Publish", f"{ARN}:topic/any-ops", **{"ForAnyValue:StringEquals": {
        "iot:Certificate.Subject.OrganizationalUnit.List": "ops"}}),
    _allow("iot:Publish", f"{ARN}:topic/any-sales", **{"ForAnyValue:StringEquals": {
        "iot:Certificate.Subject.OrganizationalUnit.List": "sales"}}),
    _allow("iot:Publish", f"{ARN}:topic/all-dns", **{"ForAllValues:StringLike": {
        "iot:Certificate.Subject.AlternativeName.DNSName.List": "*.example.com"}}),
    _allow("iot:Publish", f"{ARN}:topic/all-ops", **{"ForAllValues:StringEquals": {
        "iot:Certificate.Subject.OrganizationalUnit.List": ["ops"]}}),
    _allow("iot:Publish", f"{ARN}:topic/ip", **{"ForAnyValue:IpAddress": {
        "iot:Certificate.Subject.AlternativeName.IPAddress.List": "10.0.0.0/24"}}),
    _allow("iot:Publish", f"{ARN}:topic/mail", StringEquals={
        "iot:Certificate.Subject.AlternativeName.RFC822Name": "ops@example.com"}),
    _allow("iot:Publish", f"{ARN}:topic/uri", **{"ForAnyValue:StringLike": {
        "iot:Certificate.Subject.AlternativeName.UniformResourceIdentifier.List": "urn:acme:*"}}),
    {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/ou/ops/secret",
     "Condition": {"ForAnyValue:StringEquals": {
         "iot:Certificate.Subject.OrganizationalUnit.List": "eng"}}},
]


@pytest.fixture
def csr_device(api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
               tmp_path: Path) -> DeviceFiles:
    return _device(api_bastion, iot, unique("csr-dev"), tmp_path, STATEMENTS)


def test_connect_allowed_only_as_the_certificate_common_name(
        api_bastion: ApiBastion, csr_device: DeviceFiles) -> None:
    refused = Client(csr_device, api_bastion.mqtt_port, version=V5, client_id="someone-else")
    refused.connect(expect_success=False)
    assert refused.connack.value == DENIED
    client = Client(csr_device, api_bastion.mqtt_port, version=V5, client_id=csr_device.name)
    client.connect()
    client.disconnect()


def _publish_code(client: Client, topic: str) -> int:
    info = client.publish(topic, b"x", qos=1)
    return int(client.acks[info.mid].value)


@pytest.mark.parametrize(("topic", "allowed"), [
    ("ou/ops/telemetry", True),          # .1 is the second OU value
    ("ou/eng/telemetry", False),
    ("ou/ops/secret", False),            # Deny: ForAnyValue on the OU list holds (eng)
    ("san/{name}.example.com", True),    # the first DNS name
    ("san/fleet.example.com", False),    # ... and only the first
    ("cert/{certificate_id}", True),
    ("cert/0000", False),
    ("issuer/{issuer}", True),
    ("any-ops", True),
    ("any-sales", False),
    ("all-dns", True),
    ("all-ops", False),                  # ForAllValues: eng is not in ["ops"]
    ("ip", True),
    ("mail", True),
    ("uri", True),
])
def test_policy_variables_of_a_csr_certificate(
        api_bastion: ApiBastion, csr_device: DeviceFiles, topic: str, allowed: bool) -> None:
    issuer = x509.load_pem_x509_certificate(api_bastion.datadir.ca_cert_path.read_bytes()) \
        .subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    topic = topic.format(name=csr_device.name, certificate_id=csr_device.certificate_id,
                         issuer=issuer)
    client = Client(csr_device, api_bastion.mqtt_port, version=V5, client_id=csr_device.name)
    client.connect()
    try:
        assert _publish_code(client, topic) == (0x10 if allowed else DENIED)  # 0x10: no subscribers
    finally:
        client.disconnect()
