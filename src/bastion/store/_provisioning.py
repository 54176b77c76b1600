"""Repository of provisioning: templates and their versions, ownership tokens, claims."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import (
    provisioning_claims,
    provisioning_ownership_tokens,
    provisioning_template_versions,
    provisioning_templates,
)
from ._sql import execute_write
from ._tags import delete_tags_of


@dataclass(frozen=True, slots=True)
class ProvisioningTemplateRow:
    """A stored template. ``pre_provisioning_hook`` is ``{"targetArn", "payloadVersion"}``
    as AWS spells it; ``tags`` are ``(key, value)`` pairs."""

    name: str
    template_id: str
    template_type: str
    description: str | None
    enabled: bool
    provisioning_role_arn: str
    pre_provisioning_hook: Mapping[str, str] | None
    tags: tuple[tuple[str, str], ...]
    default_version_id: int
    last_version_id: int
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class TemplateVersionRow:
    template_name: str
    version_id: int
    template_body: str
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class OwnershipTokenRow:
    """An ownership token, known only by its SHA-256 (``token_hash``)."""

    token_hash: str
    certificate_id: str
    claim_certificate_id: str
    creation_date: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProvisioningClaimRow:
    certificate_id: str
    template_name: str
    expiration: datetime
    creation_date: datetime


class ProvisioningRepository:
    """Tables ``provisioning_templates``, ``provisioning_template_versions``,
    ``provisioning_ownership_tokens`` and ``provisioning_claims``."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- templates ------------------------------------------------------------------

    def insert_template(self, row: ProvisioningTemplateRow, first: TemplateVersionRow) -> None:
        """Insert a template and its first version.

        :raises ConflictError: a template with this name or id exists.
        """
        execute_write(
            self._conn,
            provisioning_templates.insert().values(
                name=row.name,
                template_id=row.template_id,
                template_type=row.template_type,
                description=row.description,
                enabled=row.enabled,
                provisioning_role_arn=row.provisioning_role_arn,
                pre_provisioning_hook=(
                    None if row.pre_provisioning_hook is None else dict(row.pre_provisioning_hook)
                ),
                tags=[{"Key": key, "Value": value} for key, value in row.tags],
                default_version_id=row.default_version_id,
                last_version_id=row.last_version_id,
                creation_date=row.creation_date,
                last_modified_date=row.last_modified_date,
            ),
        )
        self.insert_version(first)

    def get_template(self, name: str, *, for_update: bool = False) -> ProvisioningTemplateRow | None:
        stmt = sa.select(provisioning_templates).where(provisioning_templates.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _template(found)

    def templates_page(
        self, *, limit: int, token: str | None
    ) -> tuple[list[ProvisioningTemplateRow], str | None]:
        """Templates by name.

        :raises InvalidPageTokenError: ``token`` is not one of this listing's.
        """
        rows, next_token = keyset_page(
            self._conn,
            sa.select(provisioning_templates),
            [provisioning_templates.c.name],
            kind="provisioning-templates",
            limit=limit,
            token=token,
        )
        return [_template(found) for found in rows], next_token

    def update_template(self, name: str, now: datetime, **values: Any) -> bool:
        """Set columns of a template (``description``, ``enabled``, ``default_version_id``,
        ``last_version_id``, ``provisioning_role_arn``, ``pre_provisioning_hook``) and its
        ``last_modified_date``; whether it exists."""
        allowed = {"description", "enabled", "default_version_id", "last_version_id",
                   "provisioning_role_arn", "pre_provisioning_hook"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        result = self._conn.execute(
            provisioning_templates.update()
            .where(provisioning_templates.c.name == name)
            .values(last_modified_date=now, **values)
        )
        return result.rowcount == 1

    def delete_template(self, name: str) -> bool:
        """Delete a template with its versions; whether it existed."""
        self._conn.execute(
            provisioning_template_versions.delete().where(
                provisioning_template_versions.c.template_name == name
            )
        )
        result = self._conn.execute(
            provisioning_templates.delete().where(provisioning_templates.c.name == name)
        )
        delete_tags_of(self._conn, "provisioningtemplate", name)
        return result.rowcount == 1

    # -- versions -------------------------------------------------------------------

    def insert_version(self, row: TemplateVersionRow) -> None:
        """:raises ConflictError: the version exists, or the template does not."""
        execute_write(
            self._conn,
            provisioning_template_versions.insert().values(
                template_name=row.template_name,
                version_id=row.version_id,
                template_body=row.template_body,
                creation_date=row.creation_date,
            ),
        )

    def get_version(self, name: str, version_id: int) -> TemplateVersionRow | None:
        versions = provisioning_template_versions
        stmt = sa.select(versions).where(
            versions.c.template_name == name, versions.c.version_id == version_id
        )
        found = self._conn.execute(stmt).first()
        return None if found is None else _version(found)

    def versions_page(
        self, name: str, *, limit: int, token: str | None
    ) -> tuple[list[TemplateVersionRow], str | None]:
        """The versions of a template, oldest first.

        :raises InvalidPageTokenError: ``token`` is not one of this listing's.
        """
        versions = provisioning_template_versions
        rows, next_token = keyset_page(
            self._conn,
            sa.select(versions).where(versions.c.template_name == name),
            [versions.c.version_id],
            kind="provisioning-template-versions",
            limit=limit,
            token=token,
        )
        return [_version(found) for found in rows], next_token

    def count_versions(self, name: str) -> int:
        versions = provisioning_template_versions
        stmt = sa.select(sa.func.count()).where(versions.c.template_name == name)
        return int(self._conn.execute(stmt).scalar_one())

    def delete_version(self, name: str, version_id: int) -> bool:
        versions = provisioning_template_versions
        result = self._conn.execute(
            versions.delete().where(
                versions.c.template_name == name, versions.c.version_id == version_id
            )
        )
        return result.rowcount == 1

    # -- ownership tokens -----------------------------------------------------------

    def insert_token(self, row: OwnershipTokenRow) -> None:
        """:raises ConflictError: a token with this hash exists (never in practice)."""
        execute_write(
            self._conn,
            provisioning_ownership_tokens.insert().values(
                token_hash=row.token_hash,
                certificate_id=row.certificate_id,
                claim_certificate_id=row.claim_certificate_id,
                creation_date=row.creation_date,
                expires_at=row.expires_at,
                used_at=row.used_at,
            ),
        )

    def get_token(self, token_hash: str) -> OwnershipTokenRow | None:
        tokens = provisioning_ownership_tokens
        found = self._conn.execute(
            sa.select(tokens).where(tokens.c.token_hash == token_hash)
        ).first()
        return None if found is None else _token(found)

    def use_token(self, token_hash: str, now: datetime) -> bool:
        """Mark an unused token used, atomically: of two concurrent callers exactly one
        gets ``True``."""
        tokens = provisioning_ownership_tokens
        result = self._conn.execute(
            tokens.update()
            .where(tokens.c.token_hash == token_hash, tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return result.rowcount == 1

    def release_token(self, token_hash: str) -> None:
        """Make a used token usable again (its use failed)."""
        tokens = provisioning_ownership_tokens
        self._conn.execute(
            tokens.update().where(tokens.c.token_hash == token_hash).values(used_at=None)
        )

    def expired_tokens(self, now: datetime, *, limit: int) -> list[OwnershipTokenRow]:
        """Up to ``limit`` tokens whose expiry has passed, oldest first."""
        tokens = provisioning_ownership_tokens
        stmt = (
            sa.select(tokens)
            .where(tokens.c.expires_at <= now)
            .order_by(tokens.c.expires_at, tokens.c.token_hash)
            .limit(limit)
        )
        return [_token(found) for found in self._conn.execute(stmt)]

    def delete_tokens(self, token_hashes: Sequence[str]) -> int:
        if not token_hashes:
            return 0
        tokens = provisioning_ownership_tokens
        result = self._conn.execute(
            tokens.delete().where(tokens.c.token_hash.in_(list(token_hashes)))
        )
        return int(result.rowcount)

    # -- claims ---------------------------------------------------------------------

    def insert_claim(self, row: ProvisioningClaimRow) -> None:
        """:raises ConflictError: a claim for this certificate exists."""
        execute_write(
            self._conn,
            provisioning_claims.insert().values(
                certificate_id=row.certificate_id,
                template_name=row.template_name,
                expiration=row.expiration,
                creation_date=row.creation_date,
            ),
        )

    def get_claim(self, certificate_id: str) -> ProvisioningClaimRow | None:
        claims = provisioning_claims
        found = self._conn.execute(
            sa.select(claims).where(claims.c.certificate_id == certificate_id)
        ).first()
        return None if found is None else _claim(found)

    def expired_claims(self, now: datetime, *, limit: int) -> list[ProvisioningClaimRow]:
        """Up to ``limit`` claims past their expiration, oldest first."""
        claims = provisioning_claims
        stmt = (
            sa.select(claims)
            .where(claims.c.expiration <= now)
            .order_by(claims.c.expiration, claims.c.certificate_id)
            .limit(limit)
        )
        return [_claim(found) for found in self._conn.execute(stmt)]

    def delete_claim(self, certificate_id: str) -> bool:
        claims = provisioning_claims
        result = self._conn.execute(
            claims.delete().where(claims.c.certificate_id == certificate_id)
        )
        return result.rowcount == 1


def _template(found: sa.Row[Any]) -> ProvisioningTemplateRow:
    values = found._mapping
    hook = values["pre_provisioning_hook"]
    tags = values["tags"] or []
    return ProvisioningTemplateRow(
        name=values["name"],
        template_id=values["template_id"],
        template_type=values["template_type"],
        description=values["description"],
        enabled=bool(values["enabled"]),
        provisioning_role_arn=values["provisioning_role_arn"],
        pre_provisioning_hook=None if hook is None else {str(k): str(v) for k, v in hook.items()},
        tags=tuple((str(tag["Key"]), str(tag.get("Value", ""))) for tag in tags),
        default_version_id=int(values["default_version_id"]),
        last_version_id=int(values["last_version_id"]),
        creation_date=values["creation_date"],
        last_modified_date=values["last_modified_date"],
    )


def _version(found: sa.Row[Any]) -> TemplateVersionRow:
    values = found._mapping
    return TemplateVersionRow(
        template_name=values["template_name"],
        version_id=int(values["version_id"]),
        template_body=values["template_body"],
        creation_date=values["creation_date"],
    )


def _token(found: sa.Row[Any]) -> OwnershipTokenRow:
    values = found._mapping
    return OwnershipTokenRow(
        token_hash=values["token_hash"],
        certificate_id=values["certificate_id"],
        claim_certificate_id=values["claim_certificate_id"],
        creation_date=values["creation_date"],
        expires_at=values["expires_at"],
        used_at=values["used_at"],
    )


def _claim(found: sa.Row[Any]) -> ProvisioningClaimRow:
    values = found._mapping
    return ProvisioningClaimRow(
        certificate_id=values["certificate_id"],
        template_name=values["template_name"],
        expiration=values["expiration"],
        creation_date=values["creation_date"],
    )
