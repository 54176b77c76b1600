"""Checks on certificates and CSRs received from callers (pure functions).

What AWS IoT accepts: keys RSA of at least 2048 bits or EC on P-256, P-384 or P-521;
signatures with SHA-256, SHA-384 or SHA-512; certificates inside their validity period
when registered. Everything else is refused with the error class the caller names, so
the same check answers ``CertificateValidationException`` for RegisterCertificate and
``InvalidRequestException`` for CreateCertificateFromCsr.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bastion.pki import REQUESTED_ALTERNATIVE_NAME_TYPES, PublicKey

from ._errors import RegistryError

MIN_RSA_BITS: Final = 2048
ALLOWED_CURVES: Final = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
ALLOWED_HASHES: Final = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
MAX_CERTIFICATE_PEM: Final = 65536
MAX_CSR_PEM: Final = 4096


def load_certificate(
    pem: str, what: str, error: type[RegistryError], *, max_length: int = MAX_CERTIFICATE_PEM
) -> x509.Certificate:
    """Decode exactly one PEM certificate.

    :raises TypeError: ``pem`` is not a str.
    :raises error: too long, not PEM, not exactly one certificate.
    """
    if not isinstance(pem, str):
        raise TypeError(f"{what} must be a str, not {type(pem).__name__}")
    if not pem.strip() or len(pem) > max_length:
        raise error(f"The {what} is empty or longer than {max_length} characters")
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise error(f"The {what} is not a valid PEM certificate") from None
    if len(certs) != 1:
        raise error(f"The {what} must hold exactly one certificate, not {len(certs)}")
    return certs[0]


def load_csr(pem: str, error: type[RegistryError]) -> x509.CertificateSigningRequest:
    """Decode a PEM CSR and check its self-signature, signature hash and key.

    :raises TypeError: ``pem`` is not a str.
    :raises error: malformed, tampered with (bad signature), weak key or hash.
    """
    if not isinstance(pem, str):
        raise TypeError(f"certificate_signing_request must be a str, not {type(pem).__name__}")
    if not pem.strip() or len(pem) > MAX_CSR_PEM:
        raise error(f"The certificate signing request is empty or longer than {MAX_CSR_PEM}")
    try:
        csr = x509.load_pem_x509_csr(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise error("The certificate signing request is not a valid PEM CSR") from None
    # The hash first: cryptography does not verify SHA-1 signatures at all, and a SHA-1 CSR
    # must be answered as such, not as a tampered one.
    check_csr_signature_hash(csr, error)
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise error("The certificate signing request's signature is not valid")
    check_public_key(csr.public_key(), "certificate signing request", error)
    return csr


#: What AWS IoT answers a CSR signed with SHA-1 (or MD5) [wording unverified: AWS documents
#: only that SHA-1 signatures are not supported for CreateCertificateFromCsr].
WEAK_CSR_HASH_MESSAGE: Final = (
    "The certificate signing request is signed with an unsupported signature algorithm "
    "({algorithm}). Use SHA256, SHA384 or SHA512 with RSA or ECDSA."
)


def check_csr_signature_hash(
    csr: x509.CertificateSigningRequest, error: type[RegistryError]
) -> None:
    """:raises error: the CSR is signed with a hash other than SHA-256/384/512 (SHA-1 is
    named in the message)."""
    try:
        algorithm = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if not isinstance(algorithm, ALLOWED_HASHES):
        name = "unknown" if algorithm is None else algorithm.name.upper().replace("-", "")
        raise error(WEAK_CSR_HASH_MESSAGE.format(algorithm=name))


def requested_alternative_names(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    """The CSR's requested subject alternative names (extensionRequest) of the kinds a
    certificate issued for it carries: DNS, IP address, URI and e-mail, in order."""
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except ValueError:  # a malformed extensionRequest: no names rather than a 500
        return []
    return [name for name in extension.value if isinstance(name, REQUESTED_ALTERNATIVE_NAME_TYPES)]


def check_public_key(key: object, what: str, error: type[RegistryError]) -> PublicKey:
    """Return ``key`` if it is RSA ≥ 2048 bits or EC on P-256/P-384/P-521.

    :raises error: any other key.
    """
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise error(
                f"The {what}'s RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} "
                "are required"
            )
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ALLOWED_CURVES):
            raise error(
                f"The {what}'s EC key uses curve {key.curve.name}; only P-256, P-384 and "
                "P-521 are accepted"
            )
        return key
    raise error(f"The {what}'s key type is not supported; use RSA (2048+) or EC P-256/384/521")


def check_signature_hash(
    item: x509.Certificate | x509.CertificateSigningRequest, what: str, error: type[RegistryError]
) -> None:
    """:raises error: signed with a hash other than SHA-256/384/512."""
    try:
        algorithm = item.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if not isinstance(algorithm, ALLOWED_HASHES):
        raise error(f"The {what} is not signed with SHA-256, SHA-384 or SHA-512")


def check_validity(cert: x509.Certificate, now: datetime, what: str, error: type[RegistryError]) -> None:
    """:raises error: ``now`` is outside the certificate's validity period."""
    if now < cert.not_valid_before_utc:
        raise error(f"The {what} is not yet valid")
    if now > cert.not_valid_after_utc:
        raise error(f"The {what} has expired")


def check_certificate(
    cert: x509.Certificate, now: datetime, what: str, error: type[RegistryError]
) -> None:
    """All the sanity checks of a certificate being registered: validity, key, hash."""
    check_validity(cert, now, what, error)
    check_signature_hash(cert, what, error)
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise error(f"The {what}'s public key cannot be read") from None
    check_public_key(key, what, error)


def is_ca(cert: x509.Certificate) -> bool:
    """Whether the certificate has ``basicConstraints CA:TRUE``."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def is_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``cert`` and ``cert`` names ``issuer``'s subject as
    its issuer."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def name_hash(name: x509.Name) -> str:
    """A stable key of a distinguished name: SHA-256 of its DER, lowercase hex."""
    return hashlib.sha256(name.public_bytes()).hexdigest()


def common_name(name: x509.Name) -> str | None:
    """The first CN of ``name`` as text, or ``None``."""
    for attribute in name.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attribute.value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None
