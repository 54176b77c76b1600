"""Values of code signing: profiles, jobs, and what an OTA update needs of a signature."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ProfileStatus(enum.StrEnum):
    ACTIVE = "Active"
    CANCELED = "Canceled"
    REVOKED = "Revoked"


class JobStatus(enum.StrEnum):
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"


class CertificateOrigin(enum.StrEnum):
    GENERATED = "GENERATED"
    IMPORTED = "IMPORTED"


@dataclass(frozen=True, slots=True)
class SigningProfile:
    """A signing profile with its ARNs (no key material: its certificate's ARN only)."""

    name: str
    arn: str
    profile_version: str
    profile_version_arn: str
    platform_id: str
    platform_display_name: str
    certificate_arn: str
    validity_value: int
    validity_type: str
    signing_parameters: Mapping[str, str]
    overrides: Mapping[str, Any]
    tags: Mapping[str, str]
    status: ProfileStatus
    status_reason: str | None
    revoked_at: datetime | None
    revocation_effective_from: datetime | None
    revoked_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SigningJob:
    """A signing job: which file was signed with which profile, and the outcome."""

    job_id: str
    job_owner: str
    profile_name: str
    profile_version: str
    platform_id: str
    platform_display_name: str
    certificate_arn: str
    source_bucket: str
    source_key: str
    source_version: str
    file_size: int
    file_sha256: str
    signed_bucket: str | None
    signed_key: str | None
    status: JobStatus
    status_reason: str | None
    requested_by: str
    created_at: datetime
    completed_at: datetime | None
    signature_expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revocation_reason: str | None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class CodeSignature:
    """What an OTA update puts in its job document for one file.

    :ivar signature: the DER ECDSA signature of the file.
    :ivar certificate_pem: the signing certificate (public), to be checked by the device
        against the code-signing CA it pins.
    :ivar certificate_path: where the device keeps its copy of the certificate (the
        ``certfile`` of the job document), from the profile's ``certname`` parameter.
    :ivar file_name: the Bastion file that was signed, ``file_size`` and
        ``file_sha256`` its bytes then.
    :ivar job_arn: the signing job that made the signature, ``profile_version_arn`` the
        profile version it signed with and ``signed_at`` when: what GetRevocationStatus
        asks about. ``None`` for a signature Bastion did not make (``customCodeSigning``).
    """

    signature: bytes = field(repr=False)
    certificate_pem: str
    certificate_path: str
    file_name: str
    file_size: int
    file_sha256: str
    job_arn: str | None = None
    profile_version_arn: str | None = None
    signed_at: datetime | None = None
