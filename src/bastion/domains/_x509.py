"""What ImportCertificate checks in a certificate, its key and its chain, and which server
names a certificate covers (pure: values in, values out; ``now`` is passed).

A certificate is importable when the three parse as PEM, the key is an EC or RSA key whose
public half is the certificate's, the certificate has not expired, and the chain (when
given) starts with the certificate's issuer, whose signature on it checks out. A server
name is covered by a DNS name of the subject alternative names (or, without any, the
subject's common name): exactly, case-insensitively, or by a wildcard standing for the
whole leftmost label (``*.example.com`` covers ``a.example.com``, not ``example.com``
nor ``a.b.example.com``), as RFC 6125 and TLS clients read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bastion.pki import PrivateKey, load_pem_certificates, load_pem_private_key

from ._errors import CertificateInvalidError

_CURVES: Final = {"secp256r1": "prime256v1"}  # OpenSSL's name, which ACM uses


@dataclass(frozen=True, slots=True)
class ImportedCertificate:
    """A certificate ImportCertificate accepted, with its key and chain."""

    certificate: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]


def check_import(certificate_pem: bytes, private_key_pem: bytes, chain_pem: bytes | None,
                 now: datetime) -> ImportedCertificate:
    """Parse and check what ImportCertificate received (see the module docstring).

    :raises CertificateInvalidError: it does not parse, the key does not match, the
        certificate has expired, or the chain does not issue it.
    """
    try:
        certificates = load_pem_certificates(certificate_pem)
    except ValueError:
        raise CertificateInvalidError("Could not parse the certificate body.") from None
    if len(certificates) != 1:
        raise CertificateInvalidError(
            "The certificate field must contain exactly one certificate.")
    certificate = certificates[0]
    try:
        key = load_pem_private_key(private_key_pem)
    except (ValueError, TypeError):
        raise CertificateInvalidError("The private key is not supported or could not be "
                                      "parsed (an unencrypted EC or RSA PEM key).") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) or \
            key.public_key() != certificate.public_key():
        raise CertificateInvalidError("The private key does not match the certificate.")
    if certificate.not_valid_after_utc <= now:
        raise CertificateInvalidError(
            f"The certificate expired on {certificate.not_valid_after_utc.isoformat()}.")
    chain: tuple[x509.Certificate, ...] = ()
    if chain_pem:
        try:
            chain = tuple(load_pem_certificates(chain_pem))
        except ValueError:
            raise CertificateInvalidError("Could not parse the certificate chain.") from None
        try:
            certificate.verify_directly_issued_by(chain[0])
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateInvalidError(
                "The certificate chain does not start with the certificate's issuer."
            ) from None
    return ImportedCertificate(certificate, key, chain)


def server_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names a certificate is for: its subject alternative names, or its common
    name when it has none."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [name.lower() for name in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return [str(attribute.value).lower() for attribute in
                certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def covers(certificate: x509.Certificate, server_name: str) -> bool:
    """Whether ``certificate`` is valid for ``server_name`` (see the module docstring)."""
    wanted = server_name.lower().rstrip(".")
    for name in server_names(certificate):
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted:
            label, _, rest = wanted.partition(".")
            if label and rest == name[2:]:
                return True
    return False


def key_algorithm(certificate: x509.Certificate) -> str:
    """ACM's ``KeyAlgorithm`` name of the certificate's key (``EC_prime256v1``,
    ``RSA_2048``…)."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA_{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC_{_CURVES.get(key.curve.name, key.curve.name)}"
    return type(key).__name__
