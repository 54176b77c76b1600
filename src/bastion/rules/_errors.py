"""Errors of the rules engine.

Whose fault, and what the peer sees: every :class:`RulesError` is a remote violation by
the API caller and follows the wire-error contract (:class:`bastion.errors.ServiceError`):
the HTTP client sees ``aws_error_type`` as ``x-amzn-ErrorType``, ``http_status`` and
``{"message": …}``. The types are the ones AWS IoT answers for topic rules: a rule that
does not exist is ``UnauthorizedException`` (401) there, not ``ResourceNotFoundException``,
and clients written for AWS catch that.

An action that fails while a rule runs is not one of these: it reaches no API caller. It is
counted, logged and handed to the rule's error action (:mod:`._engine`).
"""

from __future__ import annotations

from bastion.errors import ServiceError


class RulesError(ServiceError):
    """Base of the rules engine's errors."""


class SqlParseError(RulesError, ValueError):
    """The rule's SQL cannot be parsed (or uses a function Bastion does not know).

    :ivar line: 1-based line of the offending text.
    :ivar column: 1-based column of the offending text.
    :ivar offset: 0-based character offset of the offending text.
    """

    aws_error_type = "SqlParseException"
    http_status = 400

    def __init__(self, message: str, *, line: int = 1, column: int = 1,
                 offset: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.offset = offset


class UnsupportedSqlError(RulesError, ValueError):
    """The SQL is valid AWS IoT SQL but calls a function Bastion cannot run (``aws_lambda``,
    ``get_thing_shadow``, …): refused when the rule is created, never at run time."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class InvalidRuleError(RulesError, ValueError):
    """A rule or destination the caller described wrongly: an unsupported action, a bad
    template, a bad name, an unknown SQL version."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class RuleExistsError(RulesError):
    """CreateTopicRule (or CreateTopicRuleDestination) for a name (URL) already taken."""

    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409


class UnknownRuleError(RulesError, LookupError):
    """No rule (or destination) of that name: AWS IoT answers ``UnauthorizedException``."""

    aws_error_type = "UnauthorizedException"
    http_status = 401


class RuleConflictError(RulesError):
    """A destination in a state that does not allow the change (confirming a disabled one,
    deleting one a rule still uses)."""

    aws_error_type = "ConflictingResourceUpdateException"
    http_status = 409
