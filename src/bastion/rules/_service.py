"""Topic rules and their HTTP destinations, with AWS IoT's rules and errors.

The service checks and stores what the API sends (CreateTopicRule and friends); it
never runs a rule. After each committed change it publishes :class:`TopicRuleChanged` on
the bus, and the engine (:mod:`._engine`), on every node, reloads its working set.

Destinations follow AWS's confirmation handshake: CreateTopicRuleDestination stores the
destination ``IN_PROGRESS`` with a fresh token and POSTs ``{"arn", "confirmationToken",
"enableUrl", "messageType": "DestinationConfirmation"}`` to its URL (in a worker
thread, through the ``confirm`` callable); ConfirmTopicRuleDestination with that token
enables it. An HTTP action delivers only to a URL under an ``ENABLED`` destination.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.account import Account
from bastion.clock import Clock
from bastion.events import EventSink
from bastion.store import (
    ConflictError,
    InvalidPageTokenError,
    Store,
    TopicRuleDestinationRow,
    TopicRuleRow,
)

from ._actions import MAX_ACTIONS, ActionSpec, parse_action
from ._ast import Statement, Subquery, walk
from ._compile import CompiledStatement, compile_statement
from ._errors import (
    InvalidRuleError,
    RuleConflictError,
    RuleExistsError,
    SqlParseError,
    UnknownRuleError,
)
from ._evaluate import SQL_VERSIONS
from ._parse import parse

log = logging.getLogger("bastion.rules")

DEFAULT_SQL_VERSION = "2015-10-08"
"""AWS's default ``awsIotSqlVersion``."""

_RULE_NAME = re.compile(r"[a-zA-Z0-9_]{1,128}")
MAX_PAGE = 10000
DEFAULT_PAGE = 1000


@dataclass(frozen=True, slots=True)
class TopicRuleChanged:
    """A rule was created, replaced, enabled, disabled or deleted (every node reloads)."""

    rule_name: str


@dataclass(frozen=True, slots=True)
class TopicRuleDestinationChanged:
    """A destination was created, confirmed, enabled, disabled or deleted."""

    destination_id: str


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A stored rule, parsed: what the engine runs."""

    name: str
    statement: Statement
    compiled: CompiledStatement
    whole_decimals_are_ints: bool
    actions: tuple[ActionSpec, ...]
    error_action: ActionSpec | None
    disabled: bool


@dataclass(frozen=True, slots=True)
class ConfirmationRequest:
    """What the confirmation handshake POSTs to a new destination's URL."""

    url: str
    arn: str
    token: str
    enable_url: str

    def body(self) -> dict[str, str]:
        return {"arn": self.arn, "confirmationToken": self.token,
                "enableUrl": self.enable_url, "messageType": "DestinationConfirmation"}


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _RULE_NAME.fullmatch(name):
        raise InvalidRuleError("ruleName must be 1-128 characters of [a-zA-Z0-9_]")
    return name


def _sql_version(payload: dict[str, Any]) -> str:
    version = payload.get("awsIotSqlVersion") or DEFAULT_SQL_VERSION
    if version not in SQL_VERSIONS:
        raise InvalidRuleError(f"awsIotSqlVersion must be one of {', '.join(SQL_VERSIONS)}")
    return str(version)


def compile_rule(row: TopicRuleRow) -> CompiledRule:
    """Parse a stored rule (it was checked when stored; a row that no longer parses, e.g.
    written by a newer Bastion, raises).

    :raises RulesError: the SQL or an action does not parse.
    """
    statement = parse(row.sql)
    return CompiledRule(
        name=row.name, statement=statement, compiled=compile_statement(statement),
        whole_decimals_are_ints=row.sql_version != "2015-10-08",
        actions=tuple(parse_action(action) for action in row.actions),
        error_action=None if row.error_action is None else parse_action(row.error_action),
        disabled=row.disabled)


def compile_rules(rows: list[TopicRuleRow]) -> list[CompiledRule]:
    """Parse stored rules; a row that no longer parses is logged and left out."""
    compiled: list[CompiledRule] = []
    for row in rows:
        try:
            compiled.append(compile_rule(row))
        except Exception as error:  # noqa: BLE001 - one bad row must not stop the rest
            log.error("rule %s cannot be compiled and does not run: %s", row.name, error)
    return compiled


class RuleService:
    """CreateTopicRule and the rest of the topic-rule API, over the store.

    :param publish: where :class:`TopicRuleChanged` goes after a committed change.
    :param confirm: sends a destination's confirmation (runs in a worker thread; called
        with the request; may raise, which leaves the destination ``IN_PROGRESS``).
    :param enable_url: builds the ``enableUrl`` of a confirmation from its token.
    """

    def __init__(self, store: Store, *, account: Account, clock: Clock, publish: EventSink,
                 confirm: Callable[[ConfirmationRequest], None] | None = None,
                 enable_url: Callable[[str], str] | None = None) -> None:
        self._store = store
        self._account = account
        self._clock = clock
        self._publish = publish
        self.confirm = confirm
        self.enable_url = enable_url or (lambda token: f"/confirmdestination/{token}")

    @property
    def account(self) -> Account:
        return self._account

    def rule_arn(self, name: str) -> str:
        return self._account.arn(f"rule/{name}")

    def destination_arn(self, destination_id: str) -> str:
        return self._account.arn(f"ruledestination/http/{destination_id}")

    def _now(self) -> datetime:
        return self._clock.now()

    # -- rules --------------------------------------------------------------------------

    def _row(self, name: str, payload: Any, created_at: datetime) -> TopicRuleRow:
        if not isinstance(payload, dict):
            raise InvalidRuleError("topicRulePayload must be an object")
        sql = payload.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidRuleError("topicRulePayload.sql is required")
        statement = parse(sql)
        version = _sql_version(payload)
        if version == "2015-10-08" and any(isinstance(node, Subquery)
                                           for node in walk(statement)):
            raise SqlParseError("nested object queries need awsIotSqlVersion 2016-03-23 "
                                "(or beta), as in AWS")
        actions = payload.get("actions")
        if not isinstance(actions, list):
            raise InvalidRuleError("topicRulePayload.actions is required")
        if len(actions) > MAX_ACTIONS:
            raise InvalidRuleError(f"a rule has at most {MAX_ACTIONS} actions")
        for action in actions:
            parse_action(action)
        error_action = payload.get("errorAction")
        if error_action is not None:
            parse_action(error_action)
        description = payload.get("description") or ""
        return TopicRuleRow(
            name=name, sql=sql, topic_pattern=statement.topic_filter or "",
            description=str(description), sql_version=version,
            disabled=bool(payload.get("ruleDisabled", False)), actions=list(actions),
            error_action=error_action, created_at=created_at, last_modified=self._now())

    def create_topic_rule(self, name: str, payload: Any) -> TopicRuleRow:
        """:raises InvalidRuleError: a bad name, version or action.
        :raises SqlParseError: the SQL (or a template) does not parse.
        :raises UnsupportedSqlError: the SQL calls a function Bastion cannot run.
        :raises RuleExistsError: a rule of that name exists.
        """
        row = self._row(_check_name(name), payload, self._now())
        try:
            with self._store.transaction() as uow:
                if uow.topic_rules.get(name) is not None:
                    raise RuleExistsError(f"Rule {name} already exists")
                uow.topic_rules.insert(row)
        except ConflictError:
            raise RuleExistsError(f"Rule {name} already exists") from None
        self._publish(TopicRuleChanged(name))
        return row

    def replace_topic_rule(self, name: str, payload: Any) -> TopicRuleRow:
        """:raises UnknownRuleError: no such rule (and the errors of create)."""
        _check_name(name)
        with self._store.transaction() as uow:
            current = uow.topic_rules.get(name)
            if current is None:
                raise UnknownRuleError(f"Rule {name} does not exist")
            row = self._row(name, payload, current.created_at)
            uow.topic_rules.replace(row)
        self._publish(TopicRuleChanged(name))
        return row

    def get_topic_rule(self, name: str) -> TopicRuleRow:
        """:raises UnknownRuleError: no such rule."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.topic_rules.get(name) if isinstance(name, str) else None
        if row is None:
            raise UnknownRuleError(f"Rule {name} does not exist")
        return row

    def set_rule_disabled(self, name: str, disabled: bool) -> None:
        """EnableTopicRule / DisableTopicRule.

        :raises UnknownRuleError: no such rule.
        """
        with self._store.transaction() as uow:
            if not uow.topic_rules.set_disabled(name, disabled, self._now()):
                raise UnknownRuleError(f"Rule {name} does not exist")
        self._publish(TopicRuleChanged(name))

    def delete_topic_rule(self, name: str) -> None:
        """:raises UnknownRuleError: no such rule (AWS answers UnauthorizedException)."""
        with self._store.transaction() as uow:
            if not uow.topic_rules.delete(name):
                raise UnknownRuleError(f"Rule {name} does not exist")
        self._publish(TopicRuleChanged(name))

    def list_topic_rules(self, *, topic: str | None = None, disabled: bool | None = None,
                         max_results: int | None = None, next_token: str | None = None
                         ) -> tuple[list[TopicRuleRow], str | None]:
        """Rules by name; ``topic``: only those whose FROM filter is exactly it.

        :raises InvalidRuleError: a bad page size or token.
        """
        limit = DEFAULT_PAGE if max_results is None else max_results
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRuleError(f"maxResults must be between 1 and {MAX_PAGE}")
        try:
            with self._store.transaction(readonly=True) as uow:
                return uow.topic_rules.list_page(
                    limit=limit, token=next_token, disabled=disabled,
                    topic_patterns=None if topic is None else [topic])
        except InvalidPageTokenError:
            raise InvalidRuleError("invalid nextToken") from None

    def stored_rules(self) -> list[TopicRuleRow]:
        """Every stored rule, as stored."""
        with self._store.transaction(readonly=True) as uow:
            return list(uow.topic_rules.all())

    def compiled_rules(self) -> list[CompiledRule]:
        """Every stored rule, parsed (a row that no longer parses is logged and left out)."""
        return compile_rules(self.stored_rules())

    # -- destinations ---------------------------------------------------------------------

    def create_destination(self, url: Any) -> TopicRuleDestinationRow:
        """CreateTopicRuleDestination for an HTTP URL: stored ``IN_PROGRESS``; the
        confirmation is sent.

        :raises InvalidRuleError: not an http(s) URL.
        :raises RuleExistsError: a destination for that URL exists.
        """
        if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
            raise InvalidRuleError("httpUrlConfiguration.confirmationUrl must be an "
                                   "https:// (or http://) URL")
        now = self._now()
        row = TopicRuleDestinationRow(
            id=str(uuid.uuid4()), confirmation_url=url, status="IN_PROGRESS",
            status_reason="", confirmation_token=secrets.token_hex(32), created_at=now,
            last_updated_at=now)
        try:
            with self._store.transaction() as uow:
                if uow.topic_rule_destinations.by_url(url) is not None:
                    raise RuleExistsError(f"a destination for {url} already exists")
                uow.topic_rule_destinations.insert(row)
        except ConflictError:
            raise RuleExistsError(f"a destination for {url} already exists") from None
        self._publish(TopicRuleDestinationChanged(row.id))
        self.send_confirmation(row)
        return row

    def confirmation_of(self, row: TopicRuleDestinationRow) -> ConfirmationRequest:
        return ConfirmationRequest(row.confirmation_url, self.destination_arn(row.id),
                                   row.confirmation_token,
                                   self.enable_url(row.confirmation_token))

    def send_confirmation(self, row: TopicRuleDestinationRow) -> None:
        """POST the confirmation to the destination (in a worker thread)."""
        confirm = self.confirm
        if confirm is None:
            return
        request = self.confirmation_of(row)

        def send() -> None:
            try:
                confirm(request)
            except Exception as error:  # noqa: BLE001 - the destination stays IN_PROGRESS
                log.warning("destination %s: the confirmation to %s failed: %s", row.id,
                            row.confirmation_url, error)

        import threading
        threading.Thread(target=send, name="rules-destination-confirm", daemon=True).start()

    def _destination_id(self, arn: Any) -> str:
        if not isinstance(arn, str):
            raise UnknownRuleError("no such destination")
        prefix = self.destination_arn("")
        if not arn.startswith(prefix):
            raise UnknownRuleError(f"Destination {arn} does not exist")
        return arn[len(prefix):]

    def get_destination(self, arn: str) -> TopicRuleDestinationRow:
        """:raises UnknownRuleError: no such destination."""
        destination_id = self._destination_id(arn)
        with self._store.transaction(readonly=True) as uow:
            row = uow.topic_rule_destinations.get(destination_id)
        if row is None:
            raise UnknownRuleError(f"Destination {arn} does not exist")
        return row

    def confirm_destination(self, token: str) -> None:
        """ConfirmTopicRuleDestination: the token enables its destination.

        :raises UnknownRuleError: no destination waits for that token.
        :raises RuleConflictError: the destination was disabled meanwhile.
        """
        with self._store.transaction() as uow:
            row = uow.topic_rule_destinations.by_token(token)
            if row is None:
                raise UnknownRuleError("no destination waits for that confirmation token")
            if row.status == "DISABLED":
                raise RuleConflictError("the destination is DISABLED; enable it with "
                                        "UpdateTopicRuleDestination")
            uow.topic_rule_destinations.set_status(row.id, "ENABLED", "", self._now())
        self._publish(TopicRuleDestinationChanged(row.id))

    def update_destination(self, arn: str, status: str) -> None:
        """UpdateTopicRuleDestination: ``ENABLED`` (a destination never confirmed gets a
        new confirmation and stays ``IN_PROGRESS``) or ``DISABLED``.

        :raises InvalidRuleError: another status.
        :raises UnknownRuleError: no such destination.
        """
        if status not in ("ENABLED", "DISABLED"):
            raise InvalidRuleError("status must be ENABLED or DISABLED")
        destination_id = self._destination_id(arn)
        resend: TopicRuleDestinationRow | None = None
        with self._store.transaction() as uow:
            row = uow.topic_rule_destinations.get(destination_id)
            if row is None:
                raise UnknownRuleError(f"Destination {arn} does not exist")
            if status == "ENABLED" and row.status == "IN_PROGRESS":
                resend = row
            else:
                uow.topic_rule_destinations.set_status(row.id, status, "", self._now())
        if resend is not None:
            self.send_confirmation(resend)
        self._publish(TopicRuleDestinationChanged(destination_id))

    def delete_destination(self, arn: str) -> None:
        """:raises UnknownRuleError: no such destination."""
        destination_id = self._destination_id(arn)
        with self._store.transaction() as uow:
            if not uow.topic_rule_destinations.delete(destination_id):
                raise UnknownRuleError(f"Destination {arn} does not exist")
        self._publish(TopicRuleDestinationChanged(destination_id))

    def list_destinations(self, *, max_results: int | None = None,
                          next_token: str | None = None
                          ) -> tuple[list[TopicRuleDestinationRow], str | None]:
        """:raises InvalidRuleError: a bad page size or token."""
        limit = DEFAULT_PAGE if max_results is None else max_results
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRuleError(f"maxResults must be between 1 and {MAX_PAGE}")
        try:
            with self._store.transaction(readonly=True) as uow:
                return uow.topic_rule_destinations.list_page(limit=limit, token=next_token)
        except InvalidPageTokenError:
            raise InvalidRuleError("invalid nextToken") from None

    def enabled_destination_urls(self) -> list[str]:
        """The confirmation URLs of every ``ENABLED`` destination (the HTTP action's
        allow-list)."""
        with self._store.transaction(readonly=True) as uow:
            return [row.confirmation_url for row in uow.topic_rule_destinations.all()
                    if row.status == "ENABLED"]
