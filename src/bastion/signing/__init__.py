"""Code signing: AWS Signer's profiles and jobs, signing Bastion's files with keys that
never leave it, under a code-signing CA kept apart from the device CA.

* :class:`SigningService` — signing certificates (generated or imported), profiles,
  jobs, revocation; and :meth:`SigningService.signature_for_ota` for OTA updates.
* The platform catalogue (:data:`PLATFORMS`, :func:`get_platform`): ECDSA P-256 with
  SHA-256 (``AmazonFreeRTOS-Default``) only.
* :func:`verify_file_signature`, :func:`check_code_signing_chain` — what a device checks.
* Values: :class:`SigningProfile`, :class:`SigningJob`, :class:`CodeSignature` and their
  statuses.
* Errors: :class:`SigningError` (``aws_error_type``, ``http_status``) and its subclasses.

The private keys live in :mod:`._keys`, the dangerous corner.
"""

from __future__ import annotations

from ._errors import ConflictError, NotFoundError, SigningError, ValidationError
from ._model import (
    CertificateOrigin,
    CodeSignature,
    JobStatus,
    ProfileStatus,
    SigningJob,
    SigningProfile,
)
from ._platforms import FREERTOS_ECDSA, PLATFORMS, Platform, get_platform
from ._service import CA_KEY_SECRET, CERTNAME_PARAMETER, SigningService
from ._verify import check_code_signing_chain, verify_file_signature

__all__ = [
    "CA_KEY_SECRET",
    "CERTNAME_PARAMETER",
    "FREERTOS_ECDSA",
    "PLATFORMS",
    "CertificateOrigin",
    "CodeSignature",
    "ConflictError",
    "JobStatus",
    "NotFoundError",
    "Platform",
    "ProfileStatus",
    "SigningError",
    "SigningJob",
    "SigningProfile",
    "SigningService",
    "ValidationError",
    "check_code_signing_chain",
    "get_platform",
    "verify_file_signature",
]
