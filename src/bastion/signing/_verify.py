"""Checking a code signature and its certificate chain (what a device does; Bastion does it
too before it hands a caller's own signature to devices).

Pure: values in, an answer or a :class:`~bastion.signing.ValidationError` out; the time is
a parameter. The chain is one level deep — a code-signing certificate issued directly by
the pinned code-signing CA — and checked with :mod:`cryptography`
(:meth:`~cryptography.x509.Certificate.verify_directly_issued_by`): issuer name and
signature, then validity, ``CA:FALSE``, extended key usage ``codeSigning``. The file's
signature is ECDSA P-256 over SHA-256, DER-encoded.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ._errors import ValidationError
from ._keys import check_p256


def verify_file_signature(certificate: x509.Certificate, data: bytes, signature: bytes) -> None:
    """Check that ``signature`` is the certificate key's signature of ``data``.

    :raises ValidationError: not a P-256 certificate, or the signature does not verify.
    """
    public_key = check_p256(certificate.public_key())
    try:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValidationError("The signature does not verify the file with the "
                              "certificate's key") from None


def check_code_signing_chain(certificate: x509.Certificate, ca: x509.Certificate,
                             now: datetime) -> None:
    """Check that ``certificate`` is a code-signing certificate issued by ``ca``, valid
    at ``now``.

    :raises ValidationError: another issuer, a bad signature, outside its validity, a CA
        certificate, or no ``codeSigning`` extended key usage.
    """
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ValidationError("The certificate was not issued by the code-signing CA") \
            from None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ValidationError("The code-signing certificate is not valid now")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        if constraints.value.ca:
            raise ValidationError("A CA certificate cannot sign code")
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise ValidationError("The certificate is not a code-signing certificate") from None
    if ExtendedKeyUsageOID.CODE_SIGNING not in usage.value:
        raise ValidationError("The certificate is not a code-signing certificate")
