"""Exceptions of the alerts package.

:class:`AlertTargetError` and its subclasses are a caller's fault (a bad or unknown
target), carrying an AWS-style error code for front doors. :class:`DeliveryError` is the
receiver's (or the network's) failure to take an alert; ``retryable`` says whether
another attempt may succeed.
"""

from __future__ import annotations

from typing import ClassVar


class AlertTargetError(Exception):
    aws_error: ClassVar[str] = "InvalidRequestException"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTargetError(AlertTargetError):
    """A target's settings are not acceptable (not https, no recipient, bad name…)."""


class TargetNotFoundError(AlertTargetError):
    aws_error = "ResourceNotFoundException"
    http_status = 404


class TargetExistsError(AlertTargetError):
    aws_error = "ResourceAlreadyExistsException"
    http_status = 409


class DeliveryError(Exception):
    """One delivery attempt failed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
