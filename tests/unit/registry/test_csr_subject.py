"""CreateCertificateFromCsr issues the CSR's whole subject and its alternative names; a CSR
signed with SHA-1 is refused. ``issue_certificate_from_csr`` (the MQTT
``$aws/certificates/create-from-csr`` topic and fleet provisioning) shares the code."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from bastion.registry import CertificateStatus, IdentityService, InvalidRequestError

SUBJECT = x509.Name([
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "eng")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops")]),
    # one multi-valued RDN: CN + serialNumber
    x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "42"),
    ]),
])
ALT_NAMES: list[x509.GeneralName] = [
    x509.DNSName("sensor-7.example.com"),
    x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
    x509.UniformResourceIdentifier("urn:acme:sensor:7"),
    x509.RFC822Name("ops@example.com"),
    x509.IPAddress(ipaddress.ip_address("2001:db8::7")),
]


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, subject: x509.Name = SUBJECT,
         alt_names: list[x509.GeneralName] | None = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if alt_names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


#: AlgorithmIdentifier sha1WithRSAEncryption (1.2.840.113549.1.1.5), NULL parameters.
_SHA1_WITH_RSA = _tlv(0x30, bytes.fromhex("06092a864886f70d0101050500"))


def sha1_csr(key: rsa.RSAPrivateKey) -> str:
    """A CSR really signed with SHA-1 (cryptography no longer builds one: sign the
    CertificationRequestInfo by hand)."""
    info = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT).sign(
        key, hashes.SHA256()).tbs_certrequest_bytes
    signature = key.sign(info, padding.PKCS1v15(), hashes.SHA1())
    der = _tlv(0x30, info + _SHA1_WITH_RSA + _tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()


def _issued(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_whole_subject_in_order_and_alternative_names(
        identity: IdentityService, ec_key: ec.EllipticCurvePrivateKey) -> None:
    record = identity.create_certificate_from_csr(_csr(ec_key, alt_names=ALT_NAMES))
    cert = _issued(record.certificate_pem)
    assert cert.subject.public_bytes() == SUBJECT.public_bytes()
    assert [len(rdn) for rdn in cert.subject.rdns] == [1, 1, 1, 1, 2]
    assert list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) \
        == ALT_NAMES


def test_other_alternative_name_kinds_are_dropped(
        identity: IdentityService, ec_key: ec.EllipticCurvePrivateKey) -> None:
    names: list[x509.GeneralName] = [
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])),
        x509.DNSName("kept.example.com"),
        x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
    ]
    cert = _issued(identity.create_certificate_from_csr(_csr(ec_key, alt_names=names))
                   .certificate_pem)
    assert list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) \
        == [x509.DNSName("kept.example.com")]


def test_no_alternative_names_means_no_extension_and_empty_subject_gets_default_cn(
        identity: IdentityService, ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = _issued(identity.create_certificate_from_csr(_csr(ec_key, subject=x509.Name([])))
                   .certificate_pem)
    assert cert.subject.rfc4514_string() == "CN=AWS IoT Certificate"
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_issue_from_csr_shares_the_subject_and_names(
        identity: IdentityService, ec_key: ec.EllipticCurvePrivateKey) -> None:
    record = identity.issue_certificate_from_csr(
        _csr(ec_key, alt_names=ALT_NAMES), status=CertificateStatus.PENDING_ACTIVATION)
    cert = _issued(record.certificate_pem)
    assert cert.subject == SUBJECT
    assert len(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == 5


@pytest.mark.parametrize("issue", ["create", "issue"])
def test_sha1_csr_is_refused(identity: IdentityService, rsa2048_key: rsa.RSAPrivateKey,
                             issue: str) -> None:
    pem = sha1_csr(rsa2048_key)
    csr = x509.load_pem_x509_csr(pem.encode())  # well-formed and truly signed, only weak
    rsa2048_key.public_key().verify(csr.signature, csr.tbs_certrequest_bytes,
                                    padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(InvalidRequestError) as caught:
        if issue == "create":
            identity.create_certificate_from_csr(pem)
        else:
            identity.issue_certificate_from_csr(pem, status=CertificateStatus.ACTIVE)
    assert "unsupported signature algorithm (SHA1)" in str(caught.value)
    assert caught.value.aws_error_type == "InvalidRequestException"
