"""The rules engine: AWS IoT SQL over the message stream, and actions that route results.

* :func:`parse` / :func:`statement_sql` — AWS IoT SQL text ↔ :class:`Statement` (the pure
  core, with :func:`evaluate` running a statement on one :class:`MessageContext`).
* :class:`RuleService` — the topic-rule API (rules and HTTP destinations) over the store.
* :class:`RulesEngine` — runs the enabled rules on the messages offered to it, off the
  message path, and delivers their actions; :class:`RulesProcess` — the component a node
  runs, which runs that engine in a child process and offers it the broker's messages.
"""

from __future__ import annotations

from ._ast import Statement
from ._engine import (
    BASIC_INGEST_PREFIX,
    EngineCounters,
    IncomingMessage,
    RuleActionFailed,
    RuleCounters,
    RulesEngine,
    basic_ingest_target,
)
from ._errors import (
    InvalidRuleError,
    RuleConflictError,
    RuleExistsError,
    RulesError,
    SqlParseError,
    UnknownRuleError,
    UnsupportedSqlError,
)
from ._evaluate import SQL_VERSIONS, MessageContext, RuleOutput, evaluate
from ._parse import parse
from ._print import statement_sql
from ._process import RulesProcess
from ._service import (
    CompiledRule,
    ConfirmationRequest,
    RuleService,
    TopicRuleChanged,
    TopicRuleDestinationChanged,
    compile_rule,
)
from ._sinks import ActionFailed, Republication, confirmation_sender
from ._values import NO_MQTT_PROPERTIES, UNDEFINED, MqttProperties

__all__ = [
    "BASIC_INGEST_PREFIX",
    "NO_MQTT_PROPERTIES",
    "SQL_VERSIONS",
    "UNDEFINED",
    "ActionFailed",
    "CompiledRule",
    "ConfirmationRequest",
    "EngineCounters",
    "IncomingMessage",
    "InvalidRuleError",
    "MessageContext",
    "MqttProperties",
    "Republication",
    "RuleActionFailed",
    "RuleConflictError",
    "RuleCounters",
    "RuleExistsError",
    "RuleOutput",
    "RuleService",
    "RulesEngine",
    "RulesError",
    "RulesProcess",
    "SqlParseError",
    "Statement",
    "TopicRuleChanged",
    "TopicRuleDestinationChanged",
    "UnknownRuleError",
    "UnsupportedSqlError",
    "basic_ingest_target",
    "compile_rule",
    "confirmation_sender",
    "evaluate",
    "parse",
    "statement_sql",
]
