"""Exceptions of the provisioning package.

Whose fault, and what the peer sees: every :class:`ProvisioningError` is a *remote*
violation — a control-plane caller or a device asked for something the rules refuse (a
bad template, an expired ownership token, a parameter the template needs but did not
get). Each class carries what goes on the wire through both doors:

* the REST API answers the wire-error contract (:class:`bastion.errors.ServiceError`):
  ``aws_error_type`` (the ``x-amzn-ErrorType``), ``http_status`` and ``{"message": …}``
  (plus ``resourceId`` / ``resourceArn`` for :class:`ResourceAlreadyExistsError`);
* the MQTT door publishes ``{"statusCode", "errorCode", "errorMessage"}`` on the
  operation's ``…/rejected`` topic, from :meth:`ProvisioningError.rejection`.

Messages never contain key material, ownership tokens or hook answers' bodies. *Local*
misuse (a wrong type from our own caller) raises :class:`TypeError`/:class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bastion.errors import ServiceError


class ProvisioningError(ServiceError):
    """Base class: a provisioning request that is refused.

    :param message: the AWS-style message for the response.
    """

    error_code: ClassVar[str] = "InternalFailure"

    def rejection(self) -> tuple[int, str]:
        """What the MQTT door answers: ``(statusCode, errorCode)``."""
        return self.http_status, self.error_code


class InvalidRequestError(ProvisioningError):
    """The request is not valid (bad name, bad value, malformed payload)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400
    error_code = "InvalidRequest"


class TemplateError(InvalidRequestError):
    """The template body is not a valid provisioning template.

    :ivar path: where in the template the problem is (``Resources.thing.Properties``),
        or ``""`` for the whole body.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class ResourceNotFoundError(ProvisioningError):
    aws_error_type = "ResourceNotFoundException"
    http_status = 404
    error_code = "ResourceNotFound"


class ResourceAlreadyExistsError(ProvisioningError):
    """A template of that name exists.

    :ivar resource_id: its name. :ivar resource_arn: its ARN.
    """

    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409
    error_code = "ResourceAlreadyExists"

    def __init__(self, message: str, *, resource_id: str | None = None,
                 resource_arn: str | None = None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.resource_arn = resource_arn

    def body_fields(self) -> Mapping[str, str]:
        """``resourceId`` and ``resourceArn``, those that are known."""
        fields = {"resourceId": self.resource_id, "resourceArn": self.resource_arn}
        return {name: value for name, value in fields.items() if value is not None}


class VersionsLimitExceededError(ProvisioningError):
    aws_error_type = "VersionsLimitExceededException"
    http_status = 409
    error_code = "VersionsLimitExceeded"


class DeleteConflictError(ProvisioningError):
    aws_error_type = "DeleteConflictException"
    http_status = 409
    error_code = "DeleteConflict"


class ConflictingResourceUpdateError(ProvisioningError):
    aws_error_type = "ConflictingResourceUpdateException"
    http_status = 409
    error_code = "ConflictingResourceUpdate"


class OwnershipTokenError(ProvisioningError):
    """The certificate ownership token is missing, unknown, expired, already used, or
    belongs to another claim certificate."""

    aws_error_type = "InvalidRequestException"
    http_status = 400
    error_code = "InvalidCertificateOwnershipToken"


class ParameterError(ProvisioningError):
    """The template cannot be evaluated with the parameters given: one is missing, not a
    string, or an intrinsic function fails on it (``Fn::Select`` out of range, a missing
    ``Fn::FindInMap`` key)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400
    error_code = "InvalidParameters"


class AccessDeniedError(ProvisioningError):
    """The pre-provisioning hook did not allow the request (denied, failed, timed out, or
    answered something that is not an allow)."""

    aws_error_type = "UnauthorizedException"
    http_status = 403
    error_code = "AccessDenied"


class ResourceConflictsError(ProvisioningError):
    """A resource of the template exists and its ``OverrideSettings`` say ``FAIL``."""

    aws_error_type = "ResourceConflictsException"
    http_status = 409
    error_code = "ResourceConflicts"


class ProvisioningFailedError(ProvisioningError):
    """The registry refused a step of the plan (for example a thing group that does not
    exist); the steps already taken were undone. ``aws_error_type``/``http_status`` are
    those of the registry's refusal, and the MQTT ``errorCode`` is its error type without
    ``Exception``."""

    def __init__(self, message: str, *, aws_error_type: str, http_status: int) -> None:
        super().__init__(message)
        self.aws_error_type = aws_error_type
        self.http_status = http_status

    def rejection(self) -> tuple[int, str]:
        return self.http_status, self.aws_error_type.removesuffix("Exception")
