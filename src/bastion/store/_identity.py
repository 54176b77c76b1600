"""Repositories of device certificates and CA certificates."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._rows import CaCertificateRow, CertificateRow
from ._schema import ca_certificates, certificates
from ._sql import execute_write
from ._tags import delete_tags_of


class CertificateRepository:
    """Device certificates (table ``certificates``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: CertificateRow) -> None:
        """:raises ConflictError: a certificate with this id exists."""
        execute_write(self._conn, certificates.insert().values(**_values(row)))

    def get(self, certificate_id: str, *, for_update: bool = False) -> CertificateRow | None:
        stmt = sa.select(certificates).where(certificates.c.certificate_id == certificate_id)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _certificate(found)

    def set_status(self, certificate_id: str, status: str, now: datetime) -> bool:
        """Change the status (bumping ``customer_version`` and ``generation_id``); whether
        the certificate exists."""
        result = self._conn.execute(
            certificates.update()
            .where(certificates.c.certificate_id == certificate_id)
            .values(
                status=status,
                customer_version=certificates.c.customer_version + 1,
                generation_id=str(uuid.uuid4()),
                last_modified_date=now,
            )
        )
        return result.rowcount == 1

    def delete(self, certificate_id: str) -> bool:
        result = execute_write(
            self._conn,
            certificates.delete().where(certificates.c.certificate_id == certificate_id),
        )
        return result.rowcount == 1

    def list_page(
        self,
        *,
        ca_certificate_id: str | None = None,
        ascending: bool,
        limit: int,
        token: str | None,
    ) -> tuple[list[CertificateRow], str | None]:
        """A page of certificates ordered by creation date (then id)."""
        stmt = sa.select(certificates)
        kind = "certificates"
        if ca_certificate_id is not None:
            stmt = stmt.where(certificates.c.ca_certificate_id == ca_certificate_id)
            kind = "certificates-by-ca"
        rows, next_token = keyset_page(
            self._conn,
            stmt,
            [certificates.c.creation_date, certificates.c.certificate_id],
            kind=kind + ("-asc" if ascending else "-desc"),
            limit=limit,
            token=token,
            descending=not ascending,
        )
        return [_certificate(row) for row in rows], next_token


class CaCertificateRepository:
    """Registered CA certificates (table ``ca_certificates``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: CaCertificateRow) -> None:
        """:raises ConflictError: a CA certificate with this id exists."""
        values = _values(row)
        values["registration_config"] = (
            None if row.registration_config is None else dict(row.registration_config)
        )
        execute_write(self._conn, ca_certificates.insert().values(**values))

    def get(self, ca_certificate_id: str, *, for_update: bool = False) -> CaCertificateRow | None:
        stmt = sa.select(ca_certificates).where(
            ca_certificates.c.ca_certificate_id == ca_certificate_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _ca_certificate(found)

    def with_subject(self, subject_hash: str) -> list[CaCertificateRow]:
        """The registered CAs whose subject name hashes to ``subject_hash``."""
        stmt = (
            sa.select(ca_certificates)
            .where(ca_certificates.c.subject_hash == subject_hash)
            .order_by(ca_certificates.c.ca_certificate_id)
        )
        return [_ca_certificate(row) for row in self._conn.execute(stmt)]

    def update(
        self,
        ca_certificate_id: str,
        *,
        status: str,
        auto_registration_status: str,
        registration_config: Mapping[str, Any] | None,
        now: datetime,
    ) -> bool:
        result = self._conn.execute(
            ca_certificates.update()
            .where(ca_certificates.c.ca_certificate_id == ca_certificate_id)
            .values(
                status=status,
                auto_registration_status=auto_registration_status,
                registration_config=(
                    None if registration_config is None else dict(registration_config)
                ),
                customer_version=ca_certificates.c.customer_version + 1,
                generation_id=str(uuid.uuid4()),
                last_modified_date=now,
            )
        )
        return result.rowcount == 1

    def delete(self, ca_certificate_id: str) -> bool:
        result = self._conn.execute(
            ca_certificates.delete().where(ca_certificates.c.ca_certificate_id == ca_certificate_id)
        )
        delete_tags_of(self._conn, "cacert", ca_certificate_id)
        return result.rowcount == 1

    def list_page(
        self, *, ascending: bool, limit: int, token: str | None
    ) -> tuple[list[CaCertificateRow], str | None]:
        rows, next_token = keyset_page(
            self._conn,
            sa.select(ca_certificates),
            [ca_certificates.c.creation_date, ca_certificates.c.ca_certificate_id],
            kind="ca-certificates" + ("-asc" if ascending else "-desc"),
            limit=limit,
            token=token,
            descending=not ascending,
        )
        return [_ca_certificate(row) for row in rows], next_token


_CERTIFICATE_FIELDS = tuple(f.name for f in fields(CertificateRow))
_CA_CERTIFICATE_FIELDS = tuple(f.name for f in fields(CaCertificateRow))


def _values(row: CertificateRow | CaCertificateRow) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def _certificate(row: sa.Row[Any]) -> CertificateRow:
    return CertificateRow(**{name: getattr(row, name) for name in _CERTIFICATE_FIELDS})


def _ca_certificate(row: sa.Row[Any]) -> CaCertificateRow:
    values = {name: getattr(row, name) for name in _CA_CERTIFICATE_FIELDS}
    if values["registration_config"] is not None:
        values["registration_config"] = dict(values["registration_config"])
    return CaCertificateRow(**values)
