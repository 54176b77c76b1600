"""Repositories of topic rules (table ``topic_rules``) and their HTTP destinations
(table ``topic_rule_destinations``).

The rows hold what the API received (the SQL text, the actions as AWS's Action shapes);
parsing and checking them is the rules service's business (:mod:`bastion.rules`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import topic_rule_destinations, topic_rules
from ._sql import execute_write
from ._tags import delete_tags_of


@dataclass(frozen=True, slots=True)
class TopicRuleRow:
    name: str
    sql: str
    topic_pattern: str
    description: str
    sql_version: str
    disabled: bool
    actions: list[dict[str, Any]]
    error_action: dict[str, Any] | None
    created_at: datetime
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class TopicRuleDestinationRow:
    id: str
    confirmation_url: str
    status: str
    status_reason: str
    confirmation_token: str
    created_at: datetime
    last_updated_at: datetime


def _rule(row: sa.Row[tuple[object, ...]]) -> TopicRuleRow:
    data = row._mapping
    return TopicRuleRow(
        name=data["name"], sql=data["sql"], topic_pattern=data["topic_pattern"],
        description=data["description"], sql_version=data["sql_version"],
        disabled=bool(data["disabled"]), actions=list(data["actions"]),
        error_action=data["error_action"], created_at=data["created_at"],
        last_modified=data["last_modified"])


def _destination(row: sa.Row[tuple[object, ...]]) -> TopicRuleDestinationRow:
    data = row._mapping
    return TopicRuleDestinationRow(
        id=data["id"], confirmation_url=data["confirmation_url"], status=data["status"],
        status_reason=data["status_reason"], confirmation_token=data["confirmation_token"],
        created_at=data["created_at"], last_updated_at=data["last_updated_at"])


class TopicRuleRepository:
    """Topic rules (table ``topic_rules``), keyed by name."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> TopicRuleRow | None:
        found = self._conn.execute(
            sa.select(topic_rules).where(topic_rules.c.name == name)).first()
        return None if found is None else _rule(found)

    def insert(self, row: TopicRuleRow) -> None:
        """:raises ConflictError: a rule of that name exists."""
        execute_write(self._conn, topic_rules.insert().values(
            name=row.name, sql=row.sql, topic_pattern=row.topic_pattern,
            description=row.description, sql_version=row.sql_version,
            disabled=row.disabled, actions=row.actions, error_action=row.error_action,
            created_at=row.created_at, last_modified=row.last_modified))

    def replace(self, row: TopicRuleRow) -> bool:
        """Overwrite everything but the name and creation time; False when there is no
        such rule."""
        result = self._conn.execute(topic_rules.update().where(
            topic_rules.c.name == row.name).values(
            sql=row.sql, topic_pattern=row.topic_pattern, description=row.description,
            sql_version=row.sql_version, disabled=row.disabled, actions=row.actions,
            error_action=row.error_action, last_modified=row.last_modified))
        return result.rowcount == 1

    def set_disabled(self, name: str, disabled: bool, now: datetime) -> bool:
        result = self._conn.execute(topic_rules.update().where(
            topic_rules.c.name == name).values(disabled=disabled, last_modified=now))
        return result.rowcount == 1

    def delete(self, name: str) -> bool:
        result = self._conn.execute(topic_rules.delete().where(topic_rules.c.name == name))
        delete_tags_of(self._conn, "rule", name)
        return result.rowcount == 1

    def all(self) -> list[TopicRuleRow]:
        """Every rule, by name (the engine's working set)."""
        rows = self._conn.execute(sa.select(topic_rules).order_by(topic_rules.c.name))
        return [_rule(row) for row in rows]

    def list_page(self, *, limit: int, token: str | None = None,
                  disabled: bool | None = None,
                  topic_patterns: list[str] | None = None
                  ) -> tuple[list[TopicRuleRow], str | None]:
        """Rules by name, ``limit`` at a time; only those whose FROM filter is one of
        ``topic_patterns`` when given, and only enabled (disabled) ones when ``disabled``
        is False (True).

        :raises InvalidPageTokenError: ``token`` is not one this method returned.
        """
        query = sa.select(topic_rules)
        if disabled is not None:
            query = query.where(topic_rules.c.disabled == disabled)
        if topic_patterns is not None:
            query = query.where(topic_rules.c.topic_pattern.in_(topic_patterns))
        rows, next_token = keyset_page(self._conn, query, (topic_rules.c.name,),
                                       kind="topic-rules", limit=limit, token=token)
        return [_rule(row) for row in rows], next_token


class TopicRuleDestinationRepository:
    """HTTP destinations of topic rules (table ``topic_rule_destinations``), keyed by id."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, destination_id: str) -> TopicRuleDestinationRow | None:
        found = self._conn.execute(sa.select(topic_rule_destinations).where(
            topic_rule_destinations.c.id == destination_id)).first()
        return None if found is None else _destination(found)

    def by_token(self, token: str) -> TopicRuleDestinationRow | None:
        found = self._conn.execute(sa.select(topic_rule_destinations).where(
            topic_rule_destinations.c.confirmation_token == token)).first()
        return None if found is None else _destination(found)

    def by_url(self, url: str) -> TopicRuleDestinationRow | None:
        found = self._conn.execute(sa.select(topic_rule_destinations).where(
            topic_rule_destinations.c.confirmation_url == url)).first()
        return None if found is None else _destination(found)

    def insert(self, row: TopicRuleDestinationRow) -> None:
        """:raises ConflictError: a destination for that URL exists."""
        execute_write(self._conn, topic_rule_destinations.insert().values(
            id=row.id, confirmation_url=row.confirmation_url, status=row.status,
            status_reason=row.status_reason, confirmation_token=row.confirmation_token,
            created_at=row.created_at, last_updated_at=row.last_updated_at))

    def set_status(self, destination_id: str, status: str, reason: str,
                   now: datetime) -> bool:
        result = self._conn.execute(topic_rule_destinations.update().where(
            topic_rule_destinations.c.id == destination_id).values(
            status=status, status_reason=reason, last_updated_at=now))
        return result.rowcount == 1

    def delete(self, destination_id: str) -> bool:
        result = self._conn.execute(topic_rule_destinations.delete().where(
            topic_rule_destinations.c.id == destination_id))
        return result.rowcount == 1

    def all(self) -> list[TopicRuleDestinationRow]:
        rows = self._conn.execute(
            sa.select(topic_rule_destinations).order_by(topic_rule_destinations.c.id))
        return [_destination(row) for row in rows]

    def list_page(self, *, limit: int, token: str | None = None
                  ) -> tuple[list[TopicRuleDestinationRow], str | None]:
        """:raises InvalidPageTokenError: ``token`` is not one this method returned."""
        rows, next_token = keyset_page(
            self._conn, sa.select(topic_rule_destinations), (topic_rule_destinations.c.id,),
            kind="topic-rule-destinations", limit=limit, token=token)
        return [_destination(row) for row in rows], next_token
