"""The dangerous corner: sealed signing keys sign and verify; a blob moved to another
certificate, or sealed under another master key, does not unseal; only P-256 keys are
taken; the code-signing CA certifies for code signing only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from bastion.pki import Keystore, SecretTamperedError, create_root_ca, issue_device_certificate
from bastion.signing import ValidationError, _keys, check_code_signing_chain, verify_file_signature


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_a_sealed_key_signs_what_its_certificate_verifies() -> None:
    keystore = Keystore.generate()
    ca_cert, ca_sealed = _keys.new_ca(keystore)
    sealed, public_key = _keys.seal_new_key(keystore, "cert-1")
    certificate = _keys.issue_with_ca(keystore, ca_cert, ca_sealed, common_name="fw",
                                      public_key=public_key)
    signature = _keys.sign_with(keystore, "cert-1", sealed, b"firmware")
    verify_file_signature(certificate, b"firmware", signature)
    with pytest.raises(ValidationError):
        verify_file_signature(certificate, b"firmwarE", signature)
    check_code_signing_chain(certificate, ca_cert, datetime.now(UTC))
    assert b"PRIVATE" not in sealed
    usage = ca_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CODE_SIGNING]
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length \
        == 0


def test_a_sealed_key_is_bound_to_its_certificate_and_master_key() -> None:
    keystore = Keystore.generate()
    sealed, _ = _keys.seal_new_key(keystore, "cert-1")
    with pytest.raises(SecretTamperedError):
        _keys.sign_with(keystore, "cert-2", sealed, b"data")
    with pytest.raises(SecretTamperedError):
        _keys.sign_with(Keystore.generate(), "cert-1", sealed, b"data")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SecretTamperedError):
        _keys.sign_with(keystore, "cert-1", tampered, b"data")


@pytest.mark.parametrize("key", [
    ec.generate_private_key(ec.SECP384R1()),
    rsa.generate_private_key(public_exponent=65537, key_size=2048),
], ids=["p384", "rsa"])
def test_only_p256_keys_are_imported(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
                                     ) -> None:
    with pytest.raises(ValidationError, match="P-256"):
        _keys.seal_imported_key(Keystore.generate(), "c", _pem(key))


def test_an_imported_key_signs() -> None:
    keystore = Keystore.generate()
    key = ec.generate_private_key(ec.SECP256R1())
    sealed, public_key = _keys.seal_imported_key(keystore, "c", _pem(key))
    assert public_key == key.public_key()
    with pytest.raises(ValidationError):
        _keys.seal_imported_key(keystore, "c", b"not a key")
    public_key.verify(_keys.sign_with(keystore, "c", sealed, b"x"), b"x",
                      ec.ECDSA(hashes.SHA256()))


def test_the_chain_check_refuses_what_is_not_a_code_signing_leaf_of_the_ca() -> None:
    keystore = Keystore.generate()
    ca_cert, ca_sealed = _keys.new_ca(keystore)
    other_ca, _ = _keys.new_ca(keystore)
    _, public_key = _keys.seal_new_key(keystore, "c")
    leaf = _keys.issue_with_ca(keystore, ca_cert, ca_sealed, common_name="fw",
                               public_key=public_key)
    now = datetime.now(UTC)
    with pytest.raises(ValidationError, match="not issued"):
        check_code_signing_chain(leaf, other_ca, now)
    with pytest.raises(ValidationError, match="not valid now"):
        check_code_signing_chain(leaf, ca_cert, now + timedelta(days=365 * 11))
    with pytest.raises(ValidationError, match="CA certificate"):
        check_code_signing_chain(ca_cert, ca_cert, now)
    # A device certificate of the device CA is no code-signing certificate.
    device_ca, device_ca_key = create_root_ca()
    device, _ = issue_device_certificate(device_ca, device_ca_key, common_name="d")
    with pytest.raises(ValidationError, match="not a code-signing"):
        check_code_signing_chain(device, device_ca, now)
