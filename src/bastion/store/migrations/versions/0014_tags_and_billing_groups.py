"""Tags on resources, and billing groups with their members.

Revision ID: 0014
Revises: 0013

* ``resource_tags``: one row per tag, keyed by the resource as ``(type, id)`` — the
  resource type as it appears in ARNs (``thinggroup``, ``rule``, ``cacert``…) and the
  resource's name or id — and the tag key. No foreign key: one table serves every
  taggable kind; the repositories that delete a resource delete its tags with it.
* ``billing_groups``: one row per billing group, keyed by name: its id, description,
  version and dates.
* ``billing_group_members``: keyed by thing name, so a thing is in at most one billing
  group; deleting the thing or the group deletes the row.

Data: the tags provisioning templates kept in their own ``tags`` column (migration 0006)
are copied into ``resource_tags``, where ListTagsForResource reads them.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    tags = op.create_table(
        "resource_tags",
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", _name(), nullable=False),
        sa.Column("key", _name(), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "resource_id", "key",
                                name="pk_resource_tags"),
    )
    op.create_table(
        "billing_groups",
        sa.Column("name", _name(), nullable=False),
        sa.Column("billing_group_id", sa.String(36), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_billing_groups"),
        sa.UniqueConstraint("billing_group_id", name="uq_billing_groups_billing_group_id"),
    )
    op.create_table(
        "billing_group_members",
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("group_name", _name(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("thing_name", name="pk_billing_group_members"),
        sa.ForeignKeyConstraint(["thing_name"], ["things.name"],
                                name="fk_billing_group_members_thing_name_things",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["group_name"], ["billing_groups.name"],
                                name="fk_billing_group_members_group_name_billing_groups",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_billing_group_members_group_name", "billing_group_members",
                    ["group_name", "thing_name"])
    templates = sa.table("provisioning_templates", sa.column("name", sa.String()),
                         sa.column("tags", sa.JSON()))
    conn = op.get_bind()
    copied: dict[tuple[str, str], str] = {}
    for name, template_tags in conn.execute(sa.select(templates.c.name, templates.c.tags)):
        for tag in template_tags or ():
            if isinstance(tag, dict) and isinstance(tag.get("Key"), str):
                copied[(name, tag["Key"])] = str(tag.get("Value") or "")
    if copied:
        op.bulk_insert(tags, [
            {"resource_type": "provisioningtemplate", "resource_id": name, "key": key,
             "value": value}
            for (name, key), value in sorted(copied.items())])


def downgrade() -> None:
    op.drop_index("ix_billing_group_members_group_name", table_name="billing_group_members")
    op.drop_table("billing_group_members")
    op.drop_table("billing_groups")
    op.drop_table("resource_tags")
