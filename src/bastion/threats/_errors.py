"""Errors of threat detection's API (GuardDuty's shapes).

Whose fault, and what the peer sees: a :class:`ThreatsError` is a *remote* violation
(an operator asked GuardDuty's API for something the rules refuse); it follows the
wire-error contract (:class:`bastion.errors.ServiceError`). GuardDuty answers every bad
or unknown input with ``BadRequestException`` (400), unknown ids included.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class ThreatsError(ServiceError):
    """Base class of threat detection's refusals."""


class BadRequestError(ThreatsError, ValueError):
    """The caller's fault: a bad criterion, format, location or detector id."""

    aws_error_type = "BadRequestException"
    http_status = 400


class NotFoundError(BadRequestError):
    """An id that names nothing (GuardDuty: still ``BadRequestException``)."""
