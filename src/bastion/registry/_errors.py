"""Exceptions of the registry package.

Whose fault, and what the peer sees: every :class:`RegistryError` is a *remote*
violation — a control-plane caller asked for something the rules refuse (an unknown
thing, a name that breaks AWS's pattern, deleting an active certificate). The API answers
with :attr:`RegistryError.aws_error` as the ``x-amzn-ErrorType`` header,
:attr:`RegistryError.http_status`, and ``{"message": str(error)}`` (plus ``resourceId`` /
``resourceArn`` for :class:`ResourceAlreadyExistsError`). Messages never contain key
material.

*Local* misuse — passing ``bytes`` where a ``str`` is expected, a naive datetime —
raises the built-in :class:`TypeError` / :class:`ValueError`: a bug in our own caller.
"""

from __future__ import annotations

from typing import ClassVar


class RegistryError(Exception):
    """Base class: a request the registry refuses, with what goes on the wire.

    :param message: the AWS-style message for the response body.
    """

    aws_error: ClassVar[str] = "InternalFailureException"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(RegistryError):
    """The request is not valid (bad name, bad value, rule violated)."""

    aws_error = "InvalidRequestException"
    http_status = 400


class ResourceNotFoundError(RegistryError):
    """The named resource does not exist."""

    aws_error = "ResourceNotFoundException"
    http_status = 404


class ResourceAlreadyExistsError(RegistryError):
    """A resource with that name or id exists (with another configuration).

    :ivar resource_id: the existing resource's name or id.
    :ivar resource_arn: its ARN, when it has one.
    """

    aws_error = "ResourceAlreadyExistsException"
    http_status = 409

    def __init__(
        self, message: str, *, resource_id: str | None = None, resource_arn: str | None = None
    ) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.resource_arn = resource_arn


class DeleteConflictError(RegistryError):
    """The resource cannot be deleted while something refers to it."""

    aws_error = "DeleteConflictException"
    http_status = 409


class CertificateStateError(RegistryError):
    """The certificate's status does not allow the operation."""

    aws_error = "CertificateStateException"
    http_status = 406


class CertificateValidationError(RegistryError):
    """A certificate is malformed, expired, weak, or not signed as claimed."""

    aws_error = "CertificateValidationException"
    http_status = 400


class RegistrationCodeValidationError(RegistryError):
    """A verification certificate does not carry the registration code."""

    aws_error = "RegistrationCodeValidationException"
    http_status = 400


class VersionsLimitExceededError(RegistryError):
    """A policy already has the maximum number of versions."""

    aws_error = "VersionsLimitExceededException"
    http_status = 409


class VersionConflictError(RegistryError):
    """``expectedVersion`` does not match the resource's current version."""

    aws_error = "VersionConflictException"
    http_status = 409


class MalformedPolicyDocumentError(RegistryError):
    """A policy document is not valid IoT policy language."""

    aws_error = "MalformedPolicyException"
    http_status = 400


class InvalidStateTransitionError(RegistryError):
    """The requested state change is not allowed from the current state."""

    aws_error = "InvalidStateTransitionException"
    http_status = 409


class LimitExceededError(RegistryError):
    """A quota would be exceeded."""

    aws_error = "LimitExceededException"
    http_status = 410
