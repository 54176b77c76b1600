"""Repository of the ACM analog and domain configurations (tables
``server_certificates`` and ``domain_configurations``). A certificate that a domain
configuration names cannot be deleted: the foreign key refuses it
(:class:`~bastion.store.ConflictError`), beneath the service's own check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ._errors import ConflictError
from ._schema import domain_configurations, server_certificates


@dataclass(frozen=True, slots=True)
class ServerCertificateRow:
    certificate_id: str        # the UUID of the ACM-shaped ARN
    certificate_pem: str
    chain_pem: str | None
    sealed_key: bytes
    domain_name: str | None
    imported_at: datetime


@dataclass(frozen=True, slots=True)
class DomainConfigurationRow:
    name: str
    arn_suffix: str
    domain_name: str | None
    certificate_id: str | None
    service_type: str
    status: str
    security_policy: str | None
    settings: Mapping[str, Any]
    last_status_change: datetime
    created_at: datetime


class DomainRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- server certificates ------------------------------------------------------------

    def save_certificate(self, row: ServerCertificateRow) -> None:
        """Insert ``row``, or replace the certificate of that id (a re-import)."""
        t = server_certificates
        values = {"certificate_pem": row.certificate_pem, "chain_pem": row.chain_pem,
                  "sealed_key": row.sealed_key, "domain_name": row.domain_name,
                  "imported_at": row.imported_at}
        if self._conn.execute(t.update().where(t.c.certificate_id == row.certificate_id)
                              .values(**values)).rowcount == 0:
            self._conn.execute(t.insert().values(certificate_id=row.certificate_id, **values))

    def certificate(self, certificate_id: str) -> ServerCertificateRow | None:
        t = server_certificates
        found = self._conn.execute(sa.select(t).where(t.c.certificate_id == certificate_id)
                                   ).first()
        return None if found is None else _certificate(found)

    def certificates(self) -> list[ServerCertificateRow]:
        t = server_certificates
        return [_certificate(r) for r in self._conn.execute(
            sa.select(t).order_by(t.c.imported_at, t.c.certificate_id))]

    def delete_certificate(self, certificate_id: str) -> bool:
        """:raises ConflictError: a domain configuration still names it."""
        t = server_certificates
        try:
            with self._conn.begin_nested():
                return bool(self._conn.execute(
                    t.delete().where(t.c.certificate_id == certificate_id)).rowcount)
        except IntegrityError as error:
            raise ConflictError(f"server certificate {certificate_id} is in use") from error

    # -- domain configurations ----------------------------------------------------------

    def insert_domain(self, row: DomainConfigurationRow) -> None:
        """:raises ConflictError: the name or the domain name is taken."""
        try:
            with self._conn.begin_nested():
                self._conn.execute(domain_configurations.insert().values(**_domain_values(row)))
        except IntegrityError as error:
            raise ConflictError(f"domain configuration {row.name} exists") from error

    def update_domain(self, row: DomainConfigurationRow) -> bool:
        t = domain_configurations
        values = _domain_values(row)
        del values["name"]
        return bool(self._conn.execute(t.update().where(t.c.name == row.name)
                                       .values(**values)).rowcount)

    def domain(self, name: str) -> DomainConfigurationRow | None:
        t = domain_configurations
        found = self._conn.execute(sa.select(t).where(t.c.name == name)).first()
        return None if found is None else _domain(found)

    def domains(self) -> list[DomainConfigurationRow]:
        t = domain_configurations
        return [_domain(r) for r in self._conn.execute(sa.select(t).order_by(t.c.name))]

    def domains_using(self, certificate_id: str) -> list[str]:
        t = domain_configurations
        return list(self._conn.execute(sa.select(t.c.name).where(
            t.c.certificate_id == certificate_id).order_by(t.c.name)).scalars())

    def delete_domain(self, name: str) -> bool:
        t = domain_configurations
        return bool(self._conn.execute(t.delete().where(t.c.name == name)).rowcount)


def _certificate(r: sa.Row[Any]) -> ServerCertificateRow:
    return ServerCertificateRow(r.certificate_id, r.certificate_pem, r.chain_pem,
                                bytes(r.sealed_key), r.domain_name, r.imported_at)


def _domain(r: sa.Row[Any]) -> DomainConfigurationRow:
    return DomainConfigurationRow(r.name, r.arn_suffix, r.domain_name, r.certificate_id,
                                  r.service_type, r.status, r.security_policy,
                                  dict(r.settings), r.last_status_change, r.created_at)


def _domain_values(row: DomainConfigurationRow) -> dict[str, Any]:
    return {"name": row.name, "arn_suffix": row.arn_suffix, "domain_name": row.domain_name,
            "certificate_id": row.certificate_id, "service_type": row.service_type,
            "status": row.status, "security_policy": row.security_policy,
            "settings": dict(row.settings), "last_status_change": row.last_status_change,
            "created_at": row.created_at}
