"""Key types accepted and produced by :mod:`bastion.pki`, and key generation."""

from __future__ import annotations

from typing import Literal, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""A private key Bastion issues with or stores: EC (NIST curves) or RSA."""

PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
"""A public key Bastion certifies: EC (NIST curves) or RSA."""

KeyType: TypeAlias = Literal["ec", "rsa"]

RSA_KEY_BITS = 3072
"""Size of generated RSA keys (long-lived CA keys: 2048 bits ends at NIST's 2030 horizon)."""


def generate_private_key(key_type: KeyType = "ec") -> PrivateKey:
    """Generate a fresh private key.

    :param key_type: ``"ec"`` for NIST P-256, ``"rsa"`` for RSA-3072 (e = 65537).
    :returns: the new private key.
    :raises ValueError: ``key_type`` is neither ``"ec"`` nor ``"rsa"``.
    """
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    raise ValueError(f"key_type must be 'ec' or 'rsa', not {key_type!r}")


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The hash to sign with ``key``: matched to the curve size for EC, SHA-256 for RSA."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size > 384:
            return hashes.SHA512()
        if key.curve.key_size > 256:
            return hashes.SHA384()
    return hashes.SHA256()


def check_private_key(key: object, name: str = "key") -> PrivateKey:
    """Return ``key`` if it is a supported private key.

    :raises TypeError: ``key`` is not an EC or RSA private key.
    """
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError(f"{name} must be an EC or RSA private key, not {type(key).__name__}")
    return key
