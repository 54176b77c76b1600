from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bastion.pki import (
    cert_to_pem,
    generate_private_key,
    load_pem_certificate,
    load_pem_certificates,
    load_pem_private_key,
    private_key_to_pem,
)

if TYPE_CHECKING:
    from tests.unit.pki.conftest import CA


def test_certificate_round_trip(ca: CA) -> None:
    pem = cert_to_pem(ca.cert)
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert load_pem_certificate(pem) == ca.cert
    assert load_pem_certificate(pem.decode("ascii")) == ca.cert


def test_bundle_keeps_order(ca: CA, other_ca: CA) -> None:
    bundle = cert_to_pem(ca.cert) + cert_to_pem(other_ca.cert)
    assert load_pem_certificates(bundle) == [ca.cert, other_ca.cert]


def test_single_certificate_loader_rejects_bundles(ca: CA, other_ca: CA) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        load_pem_certificate(cert_to_pem(ca.cert) + cert_to_pem(other_ca.cert))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello", id="garbage"),
        pytest.param(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", id="bad-der"
        ),
    ],
)
def test_invalid_certificates_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        load_pem_certificates(data)


def test_unencrypted_private_key_round_trip() -> None:
    key = generate_private_key()
    pem = private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert load_pem_private_key(pem).private_numbers() == key.private_numbers()


def test_encrypted_private_key_needs_its_password() -> None:
    key = generate_private_key()
    pem = private_key_to_pem(key, b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert load_pem_private_key(pem, b"correct horse").private_numbers() == key.private_numbers()
    with pytest.raises(ValueError):
        load_pem_private_key(pem, b"battery staple")
    with pytest.raises(TypeError):
        load_pem_private_key(pem)


def test_private_key_password_is_checked() -> None:
    key = generate_private_key()
    with pytest.raises(ValueError):
        private_key_to_pem(key, b"")
    with pytest.raises(TypeError):
        private_key_to_pem(key, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        private_key_to_pem("not a key", None)  # type: ignore[arg-type]
