from __future__ import annotations

import hashlib
import ipaddress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bastion.pki import (
    certificate_id,
    create_root_ca,
    generate_private_key,
    issue_device_certificate,
    issue_server_certificate,
)

if TYPE_CHECKING:
    from tests.unit.pki.conftest import CA


def _ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def test_certificate_id_is_lowercase_hex_sha256_of_der(ca: CA) -> None:
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    assert certificate_id(ca.cert) == hashlib.sha256(der).hexdigest()
    assert len(certificate_id(ca.cert)) == 64
    assert certificate_id(ca.cert) == certificate_id(ca.cert).lower()


def test_certificate_id_rejects_non_certificates() -> None:
    with pytest.raises(TypeError):
        certificate_id(b"not a certificate")  # type: ignore[arg-type]


def test_root_ca_defaults(ca: CA) -> None:
    cert = ca.cert
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert isinstance(ca.key.curve, ec.SECP256R1)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test Root CA"
    cert.verify_directly_issued_by(cert)

    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca  # type: ignore[attr-defined]
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign  # type: ignore[attr-defined]
    assert not usage.value.digital_signature  # type: ignore[attr-defined]
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key())

    assert 0 < cert.serial_number < 2**159
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3650) <= lifetime <= timedelta(days=3650, minutes=6)


def test_root_ca_serials_are_random() -> None:
    first, _ = create_root_ca(valid_days=1)
    second, _ = create_root_ca(valid_days=1)
    assert first.serial_number != second.serial_number
    assert first.subject.rfc4514_string() == "CN=Bastion Root CA"


def test_root_ca_with_rsa_key() -> None:
    cert, key = create_root_ca("RSA CA", key_type="rsa", valid_days=30)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072
    cert.verify_directly_issued_by(cert)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"key_type": "dsa"}, ValueError, id="unknown-key-type"),
        pytest.param({"valid_days": 0}, ValueError, id="zero-days"),
        pytest.param({"common_name": " "}, ValueError, id="blank-cn"),
        pytest.param({"common_name": "x" * 65}, ValueError, id="cn-too-long"),
    ],
)
def test_root_ca_rejects_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        create_root_ca(**kwargs)  # type: ignore[arg-type]


def test_server_certificate(ca: CA) -> None:
    addresses = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    cert, key = issue_server_certificate(
        ca.cert, ca.key, dns_names=["localhost", "broker.example"], ip_addresses=addresses
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca.cert)
    assert cert.subject.rfc4514_string() == "CN=localhost"

    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "broker.example"]  # type: ignore[attr-defined]
    assert san.get_values_for_type(x509.IPAddress) == addresses  # type: ignore[attr-defined]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]  # type: ignore[call-overload]
    assert not _ext(cert, x509.BasicConstraints).value.ca  # type: ignore[attr-defined]
    assert _ext(cert, x509.KeyUsage).value.digital_signature  # type: ignore[attr-defined]
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    ca_ski = _ext(ca.cert, x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest  # type: ignore[attr-defined]
    assert _ext(cert, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    )
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=825) <= lifetime <= timedelta(days=825, minutes=6)


def test_server_certificate_with_ip_only_is_named_after_the_address(ca: CA) -> None:
    cert, _ = issue_server_certificate(
        ca.cert, ca.key, ip_addresses=[ipaddress.ip_address("10.0.0.1")]
    )
    assert cert.subject.rfc4514_string() == "CN=10.0.0.1"


def test_server_certificate_needs_a_name(ca: CA) -> None:
    with pytest.raises(ValueError, match="at least one"):
        issue_server_certificate(ca.cert, ca.key, dns_names=[], ip_addresses=[])


def test_server_certificate_rejects_string_ip(ca: CA) -> None:
    with pytest.raises(TypeError):
        issue_server_certificate(ca.cert, ca.key, ip_addresses=["127.0.0.1"])  # type: ignore[list-item]


def test_device_certificate_generates_key(ca: CA) -> None:
    cert, key = issue_device_certificate(ca.cert, ca.key, common_name="thermostat-1")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca.cert)
    assert cert.subject.rfc4514_string() == "CN=thermostat-1"
    assert cert.issuer == ca.cert.subject
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # type: ignore[call-overload]
    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca  # type: ignore[attr-defined]
    _ext(cert, x509.AuthorityKeyIdentifier)
    _ext(cert, x509.SubjectKeyIdentifier)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3650) <= lifetime <= timedelta(days=3650, minutes=6)


def test_device_certificate_for_given_public_key_returns_no_key(ca: CA) -> None:
    device_key = generate_private_key("rsa")
    cert, key = issue_device_certificate(
        ca.cert, ca.key, common_name="csr-device", public_key=device_key.public_key()
    )
    assert key is None
    assert cert.public_key() == device_key.public_key()


def test_device_certificate_can_be_issued_already_expired(ca: CA) -> None:
    start = datetime.now(UTC) - timedelta(days=10)
    cert, _ = issue_device_certificate(
        ca.cert, ca.key, common_name="expired", not_before=start, valid_days=1
    )
    assert cert.not_valid_before_utc == start.replace(microsecond=0)
    assert cert.not_valid_after_utc == (start + timedelta(days=1)).replace(microsecond=0)
    assert cert.not_valid_after_utc < datetime.now(UTC)


def test_device_certificate_explicit_not_after(ca: CA) -> None:
    end = datetime.now(UTC) - timedelta(minutes=1)
    cert, _ = issue_device_certificate(ca.cert, ca.key, common_name="d", not_after=end)
    assert cert.not_valid_after_utc == end.replace(microsecond=0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"valid_days": 0}, ValueError, id="zero-days"),
        pytest.param({"valid_days": 1.5}, TypeError, id="float-days"),
        pytest.param({"not_before": datetime(2020, 1, 1)}, ValueError, id="naive-not-before"),
        pytest.param(
            {
                "not_before": datetime(2020, 1, 2, tzinfo=UTC),
                "not_after": datetime(2020, 1, 1, tzinfo=UTC),
            },
            ValueError,
            id="ends-before-start",
        ),
        pytest.param({"public_key": b"key"}, TypeError, id="bad-public-key"),
        pytest.param({"common_name": ""}, ValueError, id="empty-cn"),
    ],
)
def test_device_certificate_rejects_bad_arguments(
    ca: CA, kwargs: dict[str, object], error: type[Exception]
) -> None:
    arguments: dict[str, object] = {"common_name": "device", **kwargs}
    with pytest.raises(error):
        issue_device_certificate(ca.cert, ca.key, **arguments)  # type: ignore[call-overload]


def test_issuer_key_must_match_issuer_certificate(ca: CA, other_ca: CA) -> None:
    with pytest.raises(ValueError, match="not the private key"):
        issue_device_certificate(ca.cert, other_ca.key, common_name="device")


def test_issuer_must_be_a_ca(ca: CA) -> None:
    leaf, leaf_key = issue_device_certificate(ca.cert, ca.key, common_name="leaf")
    with pytest.raises(ValueError, match="not a CA"):
        issue_device_certificate(leaf, leaf_key, common_name="grandchild")


def test_issuer_key_type_is_checked(ca: CA) -> None:
    with pytest.raises(TypeError):
        issue_server_certificate(ca.cert, "key", dns_names=["x"])  # type: ignore[arg-type]
