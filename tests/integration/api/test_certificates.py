"""Certificates, CA certificates and the registration code through boto3."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.pki import cert_to_pem, create_root_ca, issue_device_certificate

from .conftest import ACCOUNT, REGION

Unique = Callable[[str], str]


def csr_pem(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_create_keys_and_certificate(iot: Any) -> None:
    created = iot.create_keys_and_certificate(setAsActive=True)
    cert_id = created["certificateId"]
    assert created["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cert_id}"
    certificate = x509.load_pem_x509_certificate(created["certificatePem"].encode())
    assert hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest() \
        == cert_id
    key = serialization.load_pem_private_key(created["keyPair"]["PrivateKey"].encode(), None)
    assert key.public_key() == certificate.public_key()
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["ownedBy"] == ACCOUNT
    assert description["certificateMode"] == "DEFAULT"
    assert description["caCertificateId"]
    assert description["validity"]["notAfter"].year == 2049
    assert description["creationDate"].tzinfo is not None
    assert "PrivateKey" not in str(description)


def test_certificate_lifecycle(iot: Any) -> None:
    record = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem("dev-csr"))
    cert_id = record["certificateId"]
    assert x509.load_pem_x509_certificate(record["certificatePem"].encode()).subject \
        .get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev-csr"
    describe = iot.describe_certificate
    assert describe(certificateId=cert_id)["certificateDescription"]["status"] == "INACTIVE"
    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    with pytest.raises(iot.exceptions.CertificateStateException) as caught:
        iot.delete_certificate(certificateId=cert_id)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 406
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    with pytest.raises(iot.exceptions.CertificateStateException):
        iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_certificate(certificateId=cert_id, newStatus="PENDING_TRANSFER")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_certificate(certificateId=cert_id, newStatus="LOST")
    iot.create_policy(policyName=f"p-{cert_id[:8]}", policyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",'
        '"Resource":"*"}]}'))
    iot.attach_policy(policyName=f"p-{cert_id[:8]}", target=record["certificateArn"])
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_certificate(certificateId=cert_id)
    iot.delete_certificate(certificateId=cert_id, forceDelete=True)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        describe(certificateId=cert_id)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_certificate_from_csr(certificateSigningRequest="not a csr")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        describe(certificateId="z" * 64)


def test_list_certificates_pages(iot: Any) -> None:
    created = {iot.create_keys_and_certificate()["certificateId"] for _ in range(5)}
    seen: list[str] = []
    kwargs: dict[str, Any] = {"pageSize": 2, "ascendingOrder": False}
    while True:
        page = iot.list_certificates(**kwargs)
        assert len(page["certificates"]) <= 2
        seen.extend(c["certificateId"] for c in page["certificates"])
        if "nextMarker" not in page:
            break
        kwargs["marker"] = page["nextMarker"]
    assert created <= set(seen)
    assert len(seen) == len(set(seen))
    summary = next(c for c in iot.list_certificates(pageSize=250)["certificates"]
                   if c["certificateId"] in created)
    assert set(summary) == {"certificateArn", "certificateId", "status", "certificateMode",
                            "creationDate"}


def test_register_certificates_with_and_without_ca(iot: Any, unique: Unique) -> None:
    ca_cert, ca_key = create_root_ca(unique("Test CA"))
    ca_pem = cert_to_pem(ca_cert).decode()
    code = iot.get_registration_code()["registrationCode"]
    assert len(code) == 64
    assert iot.get_registration_code()["registrationCode"] == code
    wrong, _ = issue_device_certificate(ca_cert, ca_key, common_name="not-the-code")
    with pytest.raises(iot.exceptions.RegistrationCodeValidationException):
        iot.register_ca_certificate(caCertificate=ca_pem,
                                    verificationCertificate=cert_to_pem(wrong).decode())
    verification, _ = issue_device_certificate(ca_cert, ca_key, common_name=code)
    registered = iot.register_ca_certificate(
        caCertificate=ca_pem, verificationCertificate=cert_to_pem(verification).decode(),
        setAsActive=True, allowAutoRegistration=True,
        registrationConfig={"templateBody": "{}"})
    ca_id = registered["certificateId"]
    assert registered["certificateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:cacert/{ca_id}"
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.register_ca_certificate(
            caCertificate=ca_pem, verificationCertificate=cert_to_pem(verification).decode())
    described = iot.describe_ca_certificate(certificateId=ca_id)
    assert described["certificateDescription"]["status"] == "ACTIVE"
    assert described["certificateDescription"]["autoRegistrationStatus"] == "ENABLE"
    assert described["registrationConfig"] == {"templateBody": "{}"}
    listed = iot.list_ca_certificates(pageSize=250)["certificates"]
    assert ca_id in {c["certificateId"] for c in listed}

    device, _ = issue_device_certificate(ca_cert, ca_key, common_name="registered-device")
    device_pem = cert_to_pem(device).decode()
    record = iot.register_certificate(certificatePem=device_pem, caCertificatePem=ca_pem,
                                      status="ACTIVE")
    assert iot.describe_certificate(certificateId=record["certificateId"])[
        "certificateDescription"]["caCertificateId"] == ca_id
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"]
    assert [c["certificateId"] for c in by_ca] == [record["certificateId"]]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.register_certificate(certificatePem=device_pem, caCertificatePem=ca_pem)
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem="-----BEGIN CERTIFICATE-----\nnope\n"
                                                "-----END CERTIFICATE-----\n")

    other_ca, other_key = create_root_ca(unique("Other CA"))
    sni, _ = issue_device_certificate(other_ca, other_key, common_name="sni-device")
    without = iot.register_certificate_without_ca(certificatePem=cert_to_pem(sni).decode())
    description = iot.describe_certificate(certificateId=without["certificateId"])[
        "certificateDescription"]
    assert description["certificateMode"] == "SNI_ONLY"
    assert description["status"] == "INACTIVE"
    assert "caCertificateId" not in description

    with pytest.raises(iot.exceptions.CertificateStateException):
        iot.delete_ca_certificate(certificateId=ca_id)  # still ACTIVE
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE",
                              newAutoRegistrationStatus="DISABLE")
    described = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert (described["status"], described["autoRegistrationStatus"]) == ("INACTIVE",
                                                                           "DISABLE")
    iot.delete_ca_certificate(certificateId=ca_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_ca_certificate(certificateId=ca_id)
    iot.delete_registration_code()
    assert iot.get_registration_code()["registrationCode"] != code
