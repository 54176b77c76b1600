"""Repository of resource tags (table ``resource_tags``).

A tag belongs to a resource named as ``(resource_type, resource_id)``: the resource type
as it appears in the resource's ARN (``thinggroup``, ``rule``, ``cacert``…) and its name
or id. :data:`TAGGABLE` says, for each type that can carry tags, which table column holds
the resource's key, so that "does this resource exist?" is answered here, in SQL, for
every kind alike. Tags have no foreign key (one table serves every kind): each
repository's ``delete`` of a taggable resource calls :func:`delete_tags_of` in the same
transaction, so tags go with their resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import (
    audit_scheduled_audits,
    billing_groups,
    ca_certificates,
    detect_custom_metrics,
    detect_dimensions,
    detect_security_profiles,
    job_templates,
    jobs,
    mitigation_actions,
    policies,
    provisioning_templates,
    resource_tags,
    role_aliases,
    thing_groups,
    thing_types,
    topic_rules,
)

TAGGABLE: Final[Mapping[str, sa.Column[Any]]] = {
    "billinggroup": billing_groups.c.name,
    "cacert": ca_certificates.c.ca_certificate_id,
    "custommetric": detect_custom_metrics.c.name,
    "dimension": detect_dimensions.c.name,
    "job": jobs.c.job_id,
    "jobtemplate": job_templates.c.template_id,
    "mitigationaction": mitigation_actions.c.name,
    "policy": policies.c.name,
    "provisioningtemplate": provisioning_templates.c.name,
    "rolealias": role_aliases.c.name,
    "rule": topic_rules.c.name,
    "scheduledaudit": audit_scheduled_audits.c.name,
    "securityprofile": detect_security_profiles.c.name,
    "thinggroup": thing_groups.c.name,
    "thingtype": thing_types.c.name,
}
"""Resource type (as in ARNs) → the column holding the resource's name or id."""


def delete_tags_of(conn: sa.Connection, resource_type: str, resource_id: str) -> int:
    """Delete every tag of one resource (called by the repository deleting it)."""
    t = resource_tags
    result = conn.execute(t.delete().where(t.c.resource_type == resource_type,
                                           t.c.resource_id == resource_id))
    return int(result.rowcount)


class TagRepository:
    """Tags of resources of the kinds in :data:`TAGGABLE`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def resource_exists(self, resource_type: str, resource_id: str) -> bool:
        """Whether the resource exists.

        :raises KeyError: ``resource_type`` is not taggable.
        """
        column = TAGGABLE[resource_type]
        stmt = sa.select(column).where(column == resource_id).limit(1)
        return self._conn.execute(stmt).first() is not None

    def tags_of(self, resource_type: str, resource_id: str) -> dict[str, str]:
        """Every tag of the resource, by key."""
        t = resource_tags
        stmt = (sa.select(t.c.key, t.c.value)
                .where(t.c.resource_type == resource_type, t.c.resource_id == resource_id)
                .order_by(t.c.key))
        return {row.key: row.value for row in self._conn.execute(stmt)}

    def page(self, resource_type: str, resource_id: str, *, limit: int, token: str | None
             ) -> tuple[list[tuple[str, str]], str | None]:
        """A page of ``(key, value)`` pairs ordered by key.

        :raises InvalidPageTokenError: ``token`` is not one of this listing's.
        """
        t = resource_tags
        stmt = sa.select(t.c.key, t.c.value).where(t.c.resource_type == resource_type,
                                                    t.c.resource_id == resource_id)
        rows, next_token = keyset_page(self._conn, stmt, [t.c.key], kind="resource-tags",
                                       limit=limit, token=token)
        return [(row.key, row.value) for row in rows], next_token

    def put(self, resource_type: str, resource_id: str, tags: Mapping[str, str]) -> None:
        """Add ``tags`` to the resource, replacing the values of keys it already has."""
        if not tags:
            return
        t = resource_tags
        self._conn.execute(t.delete().where(t.c.resource_type == resource_type,
                                            t.c.resource_id == resource_id,
                                            t.c.key.in_(sorted(tags))))
        self._conn.execute(t.insert(), [
            {"resource_type": resource_type, "resource_id": resource_id, "key": key,
             "value": value} for key, value in sorted(tags.items())])

    def remove(self, resource_type: str, resource_id: str, keys: Iterable[str]) -> int:
        """Remove the tags with ``keys`` (keys the resource lacks are ignored)."""
        wanted = sorted(set(keys))
        if not wanted:
            return 0
        t = resource_tags
        result = self._conn.execute(t.delete().where(t.c.resource_type == resource_type,
                                                     t.c.resource_id == resource_id,
                                                     t.c.key.in_(wanted)))
        return int(result.rowcount)

    def delete_all(self, resource_type: str, resource_id: str) -> int:
        """Remove every tag of the resource."""
        return delete_tags_of(self._conn, resource_type, resource_id)
