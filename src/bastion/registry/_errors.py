"""Exceptions of the registry package.

Whose fault, and what the peer sees: every :class:`RegistryError` is a *remote*
violation — a control-plane caller asked for something the rules refuse (an unknown
thing, a name that breaks AWS's pattern, deleting an active certificate). It follows the
wire-error contract (:class:`bastion.errors.ServiceError`): the API answers with
:attr:`~bastion.errors.ServiceError.aws_error_type` as the ``x-amzn-ErrorType`` header,
:attr:`~bastion.errors.ServiceError.http_status`, and ``{"message": …}`` (plus
``resourceId`` / ``resourceArn`` for :class:`ResourceAlreadyExistsError`). Messages never
contain key material.

*Local* misuse — passing ``bytes`` where a ``str`` is expected, a naive datetime —
raises the built-in :class:`TypeError` / :class:`ValueError`: a bug in our own caller.
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.errors import ServiceError


class RegistryError(ServiceError):
    """Base class: a request the registry refuses, with what goes on the wire.

    :param message: the AWS-style message for the response body.
    """


class InvalidRequestError(RegistryError):
    """The request is not valid (bad name, bad value, rule violated)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class ResourceNotFoundError(RegistryError):
    """The named resource does not exist."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class ResourceAlreadyExistsError(RegistryError):
    """A resource with that name or id exists (with another configuration).

    :ivar resource_id: the existing resource's name or id.
    :ivar resource_arn: its ARN, when it has one.
    """

    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409

    def __init__(
        self, message: str, *, resource_id: str | None = None, resource_arn: str | None = None
    ) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.resource_arn = resource_arn

    def body_fields(self) -> Mapping[str, str]:
        """``resourceId`` and ``resourceArn``, those that are known."""
        fields = {"resourceId": self.resource_id, "resourceArn": self.resource_arn}
        return {name: value for name, value in fields.items() if value is not None}


class DeleteConflictError(RegistryError):
    """The resource cannot be deleted while something refers to it."""

    aws_error_type = "DeleteConflictException"
    http_status = 409


class CertificateStateError(RegistryError):
    """The certificate's status does not allow the operation."""

    aws_error_type = "CertificateStateException"
    http_status = 406


class CertificateValidationError(RegistryError):
    """A certificate is malformed, expired, weak, or not signed as claimed."""

    aws_error_type = "CertificateValidationException"
    http_status = 400


class RegistrationCodeValidationError(RegistryError):
    """A verification certificate does not carry the registration code."""

    aws_error_type = "RegistrationCodeValidationException"
    http_status = 400


class VersionsLimitExceededError(RegistryError):
    """A policy already has the maximum number of versions."""

    aws_error_type = "VersionsLimitExceededException"
    http_status = 409


class VersionConflictError(RegistryError):
    """``expectedVersion`` does not match the resource's current version."""

    aws_error_type = "VersionConflictException"
    http_status = 409


class MalformedPolicyDocumentError(RegistryError):
    """A policy document is not valid IoT policy language."""

    aws_error_type = "MalformedPolicyException"
    http_status = 400


class InvalidStateTransitionError(RegistryError):
    """The requested state change is not allowed from the current state."""

    aws_error_type = "InvalidStateTransitionException"
    http_status = 409


class LimitExceededError(RegistryError):
    """A quota would be exceeded."""

    aws_error_type = "LimitExceededException"
    http_status = 410
