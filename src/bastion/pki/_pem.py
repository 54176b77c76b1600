"""PEM encoding and decoding of certificates and private keys."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ._keys import PrivateKey, check_private_key


def cert_to_pem(cert: x509.Certificate) -> bytes:
    """Encode a certificate as PEM.

    :raises TypeError: ``cert`` is not an :class:`x509.Certificate`.
    """
    if not isinstance(cert, x509.Certificate):
        raise TypeError(f"cert must be an x509.Certificate, not {type(cert).__name__}")
    return cert.public_bytes(serialization.Encoding.PEM)


def load_pem_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Decode every certificate of a PEM bundle, in order.

    :raises ValueError: no certificate in ``data``, or one that does not parse.
    """
    return x509.load_pem_x509_certificates(_as_bytes(data))


def load_pem_certificate(data: bytes | str) -> x509.Certificate:
    """Decode exactly one PEM certificate.

    :raises ValueError: ``data`` holds no certificate, an invalid one, or several (use
        :func:`load_pem_certificates` for bundles).
    """
    certs = load_pem_certificates(data)
    if len(certs) != 1:
        raise ValueError(f"expected exactly one PEM certificate, found {len(certs)}")
    return certs[0]


def private_key_to_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """Encode a private key as PKCS#8 PEM, encrypted when a password is given.

    Encryption is ``BestAvailableEncryption`` (PBES2, AES-256-CBC with PBKDF2), so the file
    is readable by OpenSSL (``openssl pkey``) and by :meth:`ssl.SSLContext.load_cert_chain`.

    :param password: ``None`` for an unencrypted key (what a device needs on its disk).
    :raises TypeError: ``key`` is not an EC or RSA private key, or ``password`` not bytes.
    :raises ValueError: ``password`` is empty.
    """
    check_private_key(key)
    encryption: serialization.KeySerializationEncryption
    if password is None:
        encryption = serialization.NoEncryption()
    else:
        if not isinstance(password, bytes):
            raise TypeError(f"password must be bytes or None, not {type(password).__name__}")
        if not password:
            raise ValueError("password must not be empty")
        encryption = serialization.BestAvailableEncryption(password)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_pem_private_key(data: bytes | str, password: bytes | None = None) -> PrivateKey:
    """Decode a PEM private key (PKCS#8 or traditional), decrypting it with ``password``.

    :raises TypeError: the key is encrypted and no password was given, or a password was
        given for an unencrypted key; or it is neither an EC nor an RSA key.
    :raises ValueError: malformed PEM, or a wrong password.
    """
    key = serialization.load_pem_private_key(_as_bytes(data), password=password)
    return check_private_key(key)


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("ascii")
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"PEM data must be bytes or str, not {type(data).__name__}")
