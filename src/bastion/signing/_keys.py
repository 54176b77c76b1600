"""The dangerous corner of code signing: signing keys and the code-signing CA's key.

Theory of operation
-------------------
Every private key of code signing is an EC P-256 key, kept in the store sealed by the
installation's master key (:meth:`bastion.pki.Keystore.seal`, AES-256-GCM) as unencrypted
PKCS#8 DER *inside* the sealed blob. The associated data binds a blob to its row
(``bastion signing key v1:<certificate id>``, ``bastion code-signing ca v1``), so a blob
copied to another row fails to unseal.

Nothing outside this module sees a private key: :func:`seal_new_key` and
:func:`seal_imported_key` answer the sealed blob and the *public* key,
:func:`sign_with` unseals, signs and drops the key, :func:`issue_with_ca` unseals the CA
key to sign one certificate. No function returns, logs or formats a private key, so no
API answer can carry one.

Signatures are ECDSA over SHA-256, DER-encoded (:mod:`cryptography`; nothing is
hand-rolled). ECDSA's nonce comes from OpenSSL's generator.
"""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.pki import (
    Keystore,
    create_code_signing_ca,
    issue_code_signing_certificate,
)

from ._errors import ValidationError

CA_ASSOCIATED_DATA: Final = b"bastion code-signing ca v1"
_KEY_LABEL: Final = b"bastion signing key v1:"


def _key_aad(certificate_id: str) -> bytes:
    return _KEY_LABEL + certificate_id.encode("ascii")


def _seal(keystore: Keystore, key: ec.EllipticCurvePrivateKey, aad: bytes) -> bytes:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return keystore.seal(der, associated_data=aad)


def _unseal(keystore: Keystore, sealed: bytes, aad: bytes) -> ec.EllipticCurvePrivateKey:
    """:raises bastion.pki.SecretTamperedError: the blob fails authentication."""
    key = serialization.load_der_private_key(keystore.unseal(sealed, associated_data=aad),
                                             password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):  # pragma: no cover - we sealed it
        raise TypeError("a sealed signing key is not an EC key")
    return key


def check_p256(public_key: object) -> ec.EllipticCurvePublicKey:
    """:raises ValidationError: not an EC P-256 public key."""
    if not (isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)):
        raise ValidationError("Signing keys must be ECDSA P-256 keys")
    return public_key


def seal_new_key(keystore: Keystore, certificate_id: str
                 ) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    """Generate a P-256 signing key for the certificate ``certificate_id``.

    :returns: the sealed key and its public key.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    return _seal(keystore, key, _key_aad(certificate_id)), key.public_key()


def seal_imported_key(keystore: Keystore, certificate_id: str, pem: bytes,
                      password: bytes | None = None
                      ) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    """Seal an operator's P-256 key (PEM, PKCS#8 or SEC1) for ``certificate_id``.

    :returns: the sealed key and its public key.
    :raises ValidationError: not a PEM private key, a wrong password, or not P-256.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (TypeError, ValueError):
        raise ValidationError("Not a PEM private key (or a wrong password)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValidationError("Signing keys must be ECDSA P-256 keys")
    check_p256(key.public_key())
    return _seal(keystore, key, _key_aad(certificate_id)), key.public_key()


def sign_with(keystore: Keystore, certificate_id: str, sealed: bytes, data: bytes) -> bytes:
    """The DER ECDSA P-256 / SHA-256 signature of ``data`` by the sealed key.

    :raises bastion.pki.SecretTamperedError: the blob fails authentication.
    """
    key = _unseal(keystore, sealed, _key_aad(certificate_id))
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def new_ca(keystore: Keystore) -> tuple[x509.Certificate, bytes]:
    """A new code-signing CA: its certificate and its sealed key."""
    cert, key = create_code_signing_ca()
    return cert, _seal(keystore, key, CA_ASSOCIATED_DATA)


def issue_with_ca(keystore: Keystore, ca_cert: x509.Certificate, sealed_ca_key: bytes, *,
                  common_name: str, public_key: ec.EllipticCurvePublicKey) -> x509.Certificate:
    """A code-signing certificate for ``public_key``, signed by the CA's sealed key.

    :raises bastion.pki.SecretTamperedError: the CA blob fails authentication.
    """
    ca_key = _unseal(keystore, sealed_ca_key, CA_ASSOCIATED_DATA)
    return issue_code_signing_certificate(ca_cert, ca_key, common_name=common_name,
                                          public_key=public_key)
