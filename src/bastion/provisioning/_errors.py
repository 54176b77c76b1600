"""Exceptions of the provisioning package.

Whose fault, and what the peer sees: every :class:`ProvisioningError` is a *remote*
violation — a control-plane caller or a device asked for something the rules refuse (a
bad template, an expired ownership token, a parameter the template needs but did not
get). Each class carries what goes on the wire through both doors:

* the REST API answers ``aws_error`` (the ``x-amzn-ErrorType``), ``http_status`` and
  ``{"message": …}``;
* the MQTT door publishes ``{"statusCode", "errorCode", "errorMessage"}`` on the
  operation's ``…/rejected`` topic, from :meth:`ProvisioningError.rejection`.

Messages never contain key material, ownership tokens or hook answers' bodies. *Local*
misuse (a wrong type from our own caller) raises :class:`TypeError`/:class:`ValueError`.
"""

from __future__ import annotations

from typing import ClassVar


class ProvisioningError(Exception):
    """Base class: a provisioning request that is refused.

    :param message: the AWS-style message for the response.
    """

    aws_error: ClassVar[str] = "InternalFailureException"
    http_status: ClassVar[int] = 500
    error_code: ClassVar[str] = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def rejection(self) -> tuple[int, str]:
        """What the MQTT door answers: ``(statusCode, errorCode)``."""
        return self.http_status, self.error_code

    def wire(self) -> tuple[str, int]:
        """What the REST API answers: ``(aws_error, http_status)``."""
        return self.aws_error, self.http_status


class InvalidRequestError(ProvisioningError):
    """The request is not valid (bad name, bad value, malformed payload)."""

    aws_error = "InvalidRequestException"
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
    aws_error = "ResourceNotFoundException"
    http_status = 404
    error_code = "ResourceNotFound"


class ResourceAlreadyExistsError(ProvisioningError):
    """A template of that name exists.

    :ivar resource_id: its name. :ivar resource_arn: its ARN.
    """

    aws_error = "ResourceAlreadyExistsException"
    http_status = 409
    error_code = "ResourceAlreadyExists"

    def __init__(self, message: str, *, resource_id: str | None = None,
                 resource_arn: str | None = None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.resource_arn = resource_arn


class VersionsLimitExceededError(ProvisioningError):
    aws_error = "VersionsLimitExceededException"
    http_status = 409
    error_code = "VersionsLimitExceeded"


class DeleteConflictError(ProvisioningError):
    aws_error = "DeleteConflictException"
    http_status = 409
    error_code = "DeleteConflict"


class ConflictingResourceUpdateError(ProvisioningError):
    aws_error = "ConflictingResourceUpdateException"
    http_status = 409
    error_code = "ConflictingResourceUpdate"


class OwnershipTokenError(ProvisioningError):
    """The certificate ownership token is missing, unknown, expired, already used, or
    belongs to another claim certificate."""

    aws_error = "InvalidRequestException"
    http_status = 400
    error_code = "InvalidCertificateOwnershipToken"


class ParameterError(ProvisioningError):
    """The template cannot be evaluated with the parameters given: one is missing, not a
    string, or an intrinsic function fails on it (``Fn::Select`` out of range, a missing
    ``Fn::FindInMap`` key)."""

    aws_error = "InvalidRequestException"
    http_status = 400
    error_code = "InvalidParameters"


class AccessDeniedError(ProvisioningError):
    """The pre-provisioning hook did not allow the request (denied, failed, timed out, or
    answered something that is not an allow)."""

    aws_error = "UnauthorizedException"
    http_status = 403
    error_code = "AccessDenied"


class ResourceConflictsError(ProvisioningError):
    """A resource of the template exists and its ``OverrideSettings`` say ``FAIL``."""

    aws_error = "ResourceConflictsException"
    http_status = 409
    error_code = "ResourceConflicts"


class ProvisioningFailedError(ProvisioningError):
    """The registry refused a step of the plan (for example a thing group that does not
    exist); the steps already taken were undone. ``aws_error``/``http_status`` are those
    of the registry's refusal."""

    def __init__(self, message: str, *, aws_error: str, http_status: int) -> None:
        super().__init__(message)
        self._aws_error = aws_error
        self._http_status = http_status

    def rejection(self) -> tuple[int, str]:
        return self._http_status, self._aws_error.removesuffix("Exception")

    def wire(self) -> tuple[str, int]:
        """The registry's ``(aws_error, http_status)``."""
        return self._aws_error, self._http_status
