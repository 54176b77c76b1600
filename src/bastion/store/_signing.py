"""Repositories of code signing (tables ``signing_certificates``, ``signing_profiles``,
``signing_jobs``) and of OTA updates (``ota_updates``).

The store keeps the sealed private key of a signing certificate as an opaque blob: only
:mod:`bastion.signing` seals and unseals it, and no row but
:class:`SigningCertificateRow` carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import ota_updates, signing_certificates, signing_jobs, signing_profiles
from ._sql import execute_write


@dataclass(frozen=True, slots=True)
class SigningCertificateRow:
    certificate_id: str
    certificate_pem: str
    sealed_key: bytes = field(repr=False)
    origin: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SigningProfileRow:
    name: str
    profile_version: str
    platform_id: str
    certificate_id: str
    document: Mapping[str, Any]
    status: str
    status_reason: str | None
    revoked_at: datetime | None
    revocation_effective_from: datetime | None
    revoked_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SigningJobRow:
    job_id: str
    client_request_token: str
    profile_name: str
    profile_version: str
    platform_id: str
    certificate_id: str
    source_bucket: str
    source_key: str
    source_version: str
    file_size: int
    file_sha256: str
    signature: bytes
    signed_bucket: str | None
    signed_key: str | None
    status: str
    status_reason: str | None
    requested_by: str
    created_at: datetime
    completed_at: datetime | None
    signature_expires_at: datetime | None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class OtaUpdateRow:
    ota_update_id: str
    job_id: str | None
    status: str
    document: Mapping[str, Any]
    error: Mapping[str, Any] | None
    creation_date: datetime
    last_modified_date: datetime


def _fields(row: sa.Row[tuple[object, ...]]) -> dict[str, Any]:
    return dict(row._mapping)


class SigningRepository:
    """Signing certificates, profiles and jobs."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- certificates ------------------------------------------------------------------

    def insert_certificate(self, row: SigningCertificateRow) -> None:
        """:raises ConflictError: the id exists."""
        execute_write(self._conn, signing_certificates.insert().values(
            certificate_id=row.certificate_id, certificate_pem=row.certificate_pem,
            sealed_key=row.sealed_key, origin=row.origin, created_at=row.created_at))

    def get_certificate(self, certificate_id: str) -> SigningCertificateRow | None:
        found = self._conn.execute(sa.select(signing_certificates).where(
            signing_certificates.c.certificate_id == certificate_id)).first()
        if found is None:
            return None
        data = _fields(found)
        data["sealed_key"] = bytes(data["sealed_key"])
        return SigningCertificateRow(**data)

    # -- profiles ----------------------------------------------------------------------

    def insert_profile(self, row: SigningProfileRow) -> None:
        """:raises ConflictError: a profile of that name exists."""
        execute_write(self._conn, signing_profiles.insert().values(
            name=row.name, profile_version=row.profile_version, platform_id=row.platform_id,
            certificate_id=row.certificate_id, document=dict(row.document),
            status=row.status, status_reason=row.status_reason, revoked_at=row.revoked_at,
            revocation_effective_from=row.revocation_effective_from,
            revoked_by=row.revoked_by, created_at=row.created_at))

    def get_profile(self, name: str) -> SigningProfileRow | None:
        found = self._conn.execute(sa.select(signing_profiles).where(
            signing_profiles.c.name == name)).first()
        return None if found is None else SigningProfileRow(**_fields(found))

    def set_profile_status(self, name: str, *, status: str, status_reason: str | None,
                           revoked_at: datetime | None = None,
                           effective_from: datetime | None = None,
                           revoked_by: str | None = None) -> bool:
        """Change a profile's status (and revocation record); ``False``: no such profile."""
        result = self._conn.execute(signing_profiles.update().where(
            signing_profiles.c.name == name).values(
                status=status, status_reason=status_reason, revoked_at=revoked_at,
                revocation_effective_from=effective_from, revoked_by=revoked_by))
        return result.rowcount == 1

    def list_profiles(self, *, limit: int, token: str | None = None,
                      statuses: frozenset[str] | None = None,
                      platform_id: str | None = None
                      ) -> tuple[list[SigningProfileRow], str | None]:
        """Profiles by name, ``limit`` at a time, filtered by status and platform.

        :raises InvalidPageTokenError: ``token`` is not one this method returned.
        """
        stmt = sa.select(signing_profiles)
        if statuses is not None:
            stmt = stmt.where(signing_profiles.c.status.in_(sorted(statuses)))
        if platform_id is not None:
            stmt = stmt.where(signing_profiles.c.platform_id == platform_id)
        rows, next_token = keyset_page(self._conn, stmt, (signing_profiles.c.name,),
                                       kind="signing-profiles", limit=limit, token=token)
        return [SigningProfileRow(**_fields(r)) for r in rows], next_token

    # -- jobs --------------------------------------------------------------------------

    def insert_job(self, row: SigningJobRow) -> None:
        """:raises ConflictError: the id or the client request token exists."""
        execute_write(self._conn, signing_jobs.insert().values(
            **{name: getattr(row, name) for name in SigningJobRow.__dataclass_fields__}))

    def _job(self, found: sa.Row[tuple[object, ...]]) -> SigningJobRow:
        data = _fields(found)
        data["signature"] = bytes(data["signature"])
        return SigningJobRow(**data)

    def get_job(self, job_id: str) -> SigningJobRow | None:
        found = self._conn.execute(sa.select(signing_jobs).where(
            signing_jobs.c.job_id == job_id)).first()
        return None if found is None else self._job(found)

    def get_job_by_token(self, client_request_token: str) -> SigningJobRow | None:
        found = self._conn.execute(sa.select(signing_jobs).where(
            signing_jobs.c.client_request_token == client_request_token)).first()
        return None if found is None else self._job(found)

    def revoke_job(self, job_id: str, *, at: datetime, by: str, reason: str) -> bool:
        """Record the revocation of a job's signature; ``False``: no such job."""
        result = self._conn.execute(signing_jobs.update().where(
            signing_jobs.c.job_id == job_id).values(
                revoked_at=at, revoked_by=by, revocation_reason=reason))
        return result.rowcount == 1

    def list_jobs(self, *, limit: int, token: str | None = None, status: str | None = None,
                  platform_id: str | None = None, requested_by: str | None = None,
                  is_revoked: bool | None = None,
                  expires_before: datetime | None = None,
                  expires_after: datetime | None = None
                  ) -> tuple[list[SigningJobRow], str | None]:
        """Jobs oldest first, ``limit`` at a time, filtered.

        :raises InvalidPageTokenError: ``token`` is not one this method returned.
        """
        table = signing_jobs
        stmt = sa.select(table)
        if status is not None:
            stmt = stmt.where(table.c.status == status)
        if platform_id is not None:
            stmt = stmt.where(table.c.platform_id == platform_id)
        if requested_by is not None:
            stmt = stmt.where(table.c.requested_by == requested_by)
        if is_revoked is not None:
            stmt = stmt.where(table.c.revoked_at.is_not(None) if is_revoked
                              else table.c.revoked_at.is_(None))
        if expires_before is not None:
            stmt = stmt.where(table.c.signature_expires_at < expires_before)
        if expires_after is not None:
            stmt = stmt.where(table.c.signature_expires_at > expires_after)
        rows, next_token = keyset_page(self._conn, stmt, (table.c.created_at, table.c.job_id),
                                       kind="signing-jobs", limit=limit, token=token)
        return [self._job(r) for r in rows], next_token


class OtaUpdateRepository:
    """OTA updates (table ``ota_updates``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: OtaUpdateRow) -> None:
        """:raises ConflictError: an OTA update of that id exists."""
        execute_write(self._conn, ota_updates.insert().values(
            ota_update_id=row.ota_update_id, job_id=row.job_id, status=row.status,
            document=dict(row.document), error=None if row.error is None else dict(row.error),
            creation_date=row.creation_date, last_modified_date=row.last_modified_date))

    def get(self, ota_update_id: str) -> OtaUpdateRow | None:
        found = self._conn.execute(sa.select(ota_updates).where(
            ota_updates.c.ota_update_id == ota_update_id)).first()
        return None if found is None else OtaUpdateRow(**_fields(found))

    def delete(self, ota_update_id: str) -> bool:
        result = self._conn.execute(ota_updates.delete().where(
            ota_updates.c.ota_update_id == ota_update_id))
        return result.rowcount == 1

    def list_page(self, *, limit: int, token: str | None = None, status: str | None = None
                  ) -> tuple[list[OtaUpdateRow], str | None]:
        """OTA updates by id, ``limit`` at a time.

        :raises InvalidPageTokenError: ``token`` is not one this method returned.
        """
        stmt = sa.select(ota_updates)
        if status is not None:
            stmt = stmt.where(ota_updates.c.status == status)
        rows, next_token = keyset_page(self._conn, stmt, (ota_updates.c.ota_update_id,),
                                       kind="ota-updates", limit=limit, token=token)
        return [OtaUpdateRow(**_fields(r)) for r in rows], next_token
