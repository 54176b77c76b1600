"""Repository of policies, their versions, and their attachments to targets."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._rows import AttachedPolicy, PolicyRow, PolicyTarget, PolicyVersionRow
from ._schema import policies, policy_targets, policy_versions
from ._sql import count, execute_write
from ._tags import delete_tags_of


class PolicyRepository:
    """Policies (tables ``policies``, ``policy_versions``, ``policy_targets``).

    Version ids are integers that only grow: a policy remembers the last id it handed out,
    so a deleted version's id is never reused.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- policies -------------------------------------------------------------------

    def insert(self, name: str, document: str, now: datetime) -> PolicyRow:
        """Create a policy with version 1 as its default.

        :raises ConflictError: the name is taken.
        """
        row = PolicyRow(
            name=name,
            default_version_id=1,
            last_version_id=1,
            generation_id=str(uuid.uuid4()),
            creation_date=now,
            last_modified_date=now,
        )
        execute_write(
            self._conn,
            policies.insert().values(
                name=row.name,
                default_version_id=row.default_version_id,
                last_version_id=row.last_version_id,
                generation_id=row.generation_id,
                creation_date=row.creation_date,
                last_modified_date=row.last_modified_date,
            ),
        )
        self._conn.execute(
            policy_versions.insert().values(
                policy_name=name, version_id=1, document=document, creation_date=now
            )
        )
        return row

    def get(self, name: str, *, for_update: bool = False) -> PolicyRow | None:
        """The policy; ``for_update`` locks it (PostgreSQL) until the transaction ends."""
        stmt = sa.select(policies).where(policies.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _policy(found)

    def delete(self, name: str) -> bool:
        """Delete a policy and its versions; whether it existed.

        :raises ConflictError: the policy is still attached to a target.
        """
        result = execute_write(self._conn, policies.delete().where(policies.c.name == name))
        delete_tags_of(self._conn, "policy", name)
        return result.rowcount == 1

    def list_page(self, *, limit: int, token: str | None) -> tuple[list[PolicyRow], str | None]:
        rows, next_token = keyset_page(
            self._conn, sa.select(policies), [policies.c.name], kind="policies", limit=limit,
            token=token,
        )
        return [_policy(row) for row in rows], next_token

    # -- versions -------------------------------------------------------------------

    def add_version(
        self, name: str, document: str, now: datetime, *, set_as_default: bool
    ) -> PolicyVersionRow:
        """Add a version with the next id. The caller holds the policy's row lock."""
        current = self.get(name)
        if current is None:
            raise LookupError(name)
        version = PolicyVersionRow(
            policy_name=name,
            version_id=current.last_version_id + 1,
            document=document,
            creation_date=now,
        )
        self._conn.execute(
            policy_versions.insert().values(
                policy_name=name,
                version_id=version.version_id,
                document=document,
                creation_date=now,
            )
        )
        values: dict[str, Any] = {
            "last_version_id": version.version_id,
            "last_modified_date": now,
            "generation_id": str(uuid.uuid4()),
        }
        if set_as_default:
            values["default_version_id"] = version.version_id
        self._conn.execute(policies.update().where(policies.c.name == name).values(**values))
        return version

    def versions(self, name: str) -> list[PolicyVersionRow]:
        """Every version of the policy, newest first."""
        stmt = (
            sa.select(policy_versions)
            .where(policy_versions.c.policy_name == name)
            .order_by(policy_versions.c.version_id.desc())
        )
        return [_version(row) for row in self._conn.execute(stmt)]

    def count_versions(self, name: str) -> int:
        return count(
            self._conn,
            sa.select(policy_versions.c.version_id).where(policy_versions.c.policy_name == name),
        )

    def get_version(self, name: str, version_id: int) -> PolicyVersionRow | None:
        stmt = sa.select(policy_versions).where(
            policy_versions.c.policy_name == name, policy_versions.c.version_id == version_id
        )
        found = self._conn.execute(stmt).first()
        return None if found is None else _version(found)

    def set_default_version(self, name: str, version_id: int, now: datetime) -> None:
        self._conn.execute(
            policies.update()
            .where(policies.c.name == name)
            .values(
                default_version_id=version_id,
                last_modified_date=now,
                generation_id=str(uuid.uuid4()),
            )
        )

    def delete_version(self, name: str, version_id: int) -> bool:
        result = self._conn.execute(
            policy_versions.delete().where(
                policy_versions.c.policy_name == name, policy_versions.c.version_id == version_id
            )
        )
        return result.rowcount == 1

    # -- attachments ----------------------------------------------------------------

    def attach(self, name: str, target: PolicyTarget, now: datetime) -> bool:
        """Attach the policy to a target; ``False`` if it already was.

        :raises ConflictError: the policy does not exist.
        """
        if self.is_attached(name, target):
            return False
        execute_write(
            self._conn,
            policy_targets.insert().values(
                policy_name=name,
                target_type=target.target_type,
                target_id=target.target_id,
                creation_date=now,
            ),
        )
        return True

    def detach(self, name: str, target: PolicyTarget) -> bool:
        """Detach; ``False`` if it was not attached."""
        result = self._conn.execute(policy_targets.delete().where(*_match(name, target)))
        return result.rowcount == 1

    def is_attached(self, name: str, target: PolicyTarget) -> bool:
        stmt = sa.select(policy_targets.c.policy_name).where(*_match(name, target))
        return self._conn.execute(stmt).first() is not None

    def detach_all_from(self, target: PolicyTarget) -> list[str]:
        """Detach every policy from ``target``; the names of those that were attached."""
        names = self.names_attached_to(target)
        self._conn.execute(
            policy_targets.delete().where(
                policy_targets.c.target_type == target.target_type,
                policy_targets.c.target_id == target.target_id,
            )
        )
        return names

    def names_attached_to(self, target: PolicyTarget) -> list[str]:
        stmt = (
            sa.select(policy_targets.c.policy_name)
            .where(
                policy_targets.c.target_type == target.target_type,
                policy_targets.c.target_id == target.target_id,
            )
            .order_by(policy_targets.c.policy_name)
        )
        return list(self._conn.execute(stmt).scalars())

    def count_targets(self, name: str) -> int:
        return count(
            self._conn,
            sa.select(policy_targets.c.target_id).where(policy_targets.c.policy_name == name),
        )

    def targets_page(
        self, name: str, *, limit: int, token: str | None
    ) -> tuple[list[PolicyTarget], str | None]:
        stmt = sa.select(policy_targets).where(policy_targets.c.policy_name == name)
        rows, next_token = keyset_page(
            self._conn,
            stmt,
            [policy_targets.c.target_type, policy_targets.c.target_id],
            kind="policy-targets",
            limit=limit,
            token=token,
        )
        return [PolicyTarget(row.target_type, row.target_id) for row in rows], next_token

    def attached_to(self, targets: Iterable[PolicyTarget]) -> list[AttachedPolicy]:
        """Every attachment of a policy to one of ``targets``, with the policy's default
        version, ordered by policy name then target."""
        wanted = sorted({(t.target_type, t.target_id) for t in targets})
        if not wanted:
            return []
        condition = sa.or_(
            *(
                sa.and_(policy_targets.c.target_type == kind, policy_targets.c.target_id == ident)
                for kind, ident in wanted
            )
        )
        stmt = (
            sa.select(
                policy_targets.c.target_type,
                policy_targets.c.target_id,
                *[column.label(f"p_{column.name}") for column in policies.c],
                *[column.label(f"v_{column.name}") for column in policy_versions.c],
            )
            .join(policies, policies.c.name == policy_targets.c.policy_name)
            .join(
                policy_versions,
                sa.and_(
                    policy_versions.c.policy_name == policies.c.name,
                    policy_versions.c.version_id == policies.c.default_version_id,
                ),
            )
            .where(condition)
            .order_by(
                policy_targets.c.policy_name,
                policy_targets.c.target_type,
                policy_targets.c.target_id,
            )
        )
        result: list[AttachedPolicy] = []
        for row in self._conn.execute(stmt):
            mapping = row._mapping
            policy = PolicyRow(
                **{c.name: mapping[f"p_{c.name}"] for c in policies.c}
            )
            version = PolicyVersionRow(
                **{c.name: mapping[f"v_{c.name}"] for c in policy_versions.c}
            )
            result.append(
                AttachedPolicy(policy, version, PolicyTarget(row.target_type, row.target_id))
            )
        return result


def _match(name: str, target: PolicyTarget) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        policy_targets.c.policy_name == name,
        policy_targets.c.target_type == target.target_type,
        policy_targets.c.target_id == target.target_id,
    )


def _policy(row: sa.Row[Any]) -> PolicyRow:
    return PolicyRow(
        name=row.name,
        default_version_id=row.default_version_id,
        last_version_id=row.last_version_id,
        generation_id=row.generation_id,
        creation_date=row.creation_date,
        last_modified_date=row.last_modified_date,
    )


def _version(row: sa.Row[Any]) -> PolicyVersionRow:
    return PolicyVersionRow(
        policy_name=row.policy_name,
        version_id=row.version_id,
        document=row.document,
        creation_date=row.creation_date,
    )
