"""Exceptions of the alerts package.

:class:`AlertTargetError` and its subclasses are a caller's fault (a bad or unknown
target); they follow the wire-error contract (:class:`bastion.errors.ServiceError`:
``aws_error_type``, ``http_status``, ``message``) for front doors. :class:`DeliveryError` is the
receiver's (or the network's) failure to take an alert; ``retryable`` says whether
another attempt may succeed.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class AlertTargetError(ServiceError):
    """Base class: a request about alert targets that is refused.

    :param message: the AWS-style message for the response body.
    """

    aws_error_type = "InvalidRequestException"
    http_status = 400


class InvalidTargetError(AlertTargetError):
    """A target's settings are not acceptable (not https, no recipient, bad name…)."""


class TargetNotFoundError(AlertTargetError):
    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class TargetExistsError(AlertTargetError):
    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409


class DeliveryError(Exception):
    """One delivery attempt failed (not a wire error: no caller is answered with it)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
