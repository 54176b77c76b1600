"""Exceptions of the Device Defender services (audit, mitigation actions).

Whose fault, and what the peer sees: every :class:`DefenderError` is a *remote* violation —
a caller asked for something AWS's rules refuse (a check that is not enabled, a
suppression that does not exist, a scheduled audit name already taken). It follows the
wire-error contract (:class:`bastion.errors.ServiceError`): the API answers with its
``aws_error_type`` as ``x-amzn-ErrorType``, its ``http_status`` and ``{"message": …}``.
Local misuse (a naive datetime, a wrong type) raises the built-in :class:`TypeError` /
:class:`ValueError`.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class DefenderError(ServiceError):
    """Base class: a request the audit refuses.

    :param message: the AWS-style message for the response body.
    """


class InvalidRequestError(DefenderError):
    """The request is not valid (unknown check, bad threshold, bad filter)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class ResourceNotFoundError(DefenderError):
    """The task, finding, scheduled audit, suppression or action does not exist."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class ResourceAlreadyExistsError(DefenderError):
    """A scheduled audit, suppression, action or mitigation task with that key exists."""

    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409


class LimitExceededError(DefenderError):
    """A quota would be exceeded (e.g. too many concurrent audit tasks)."""

    aws_error_type = "LimitExceededException"
    http_status = 410


class TaskAlreadyExistsError(DefenderError):
    """An audit mitigation actions task with that id exists."""

    aws_error_type = "TaskAlreadyExistsException"
    http_status = 400
