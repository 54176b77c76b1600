"""The rules engine: AWS IoT SQL over the message stream, and actions that route results.

* :func:`parse` / :func:`statement_sql` — AWS IoT SQL text ↔ :class:`Statement` (the pure
  core, with :func:`evaluate` running a statement on one :class:`MessageContext`).
"""

from __future__ import annotations

from ._ast import Statement
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
from ._values import UNDEFINED

__all__ = [
    "SQL_VERSIONS",
    "UNDEFINED",
    "InvalidRuleError",
    "MessageContext",
    "RuleConflictError",
    "RuleExistsError",
    "RuleOutput",
    "RulesError",
    "SqlParseError",
    "Statement",
    "UnknownRuleError",
    "UnsupportedSqlError",
    "evaluate",
    "parse",
    "statement_sql",
]
