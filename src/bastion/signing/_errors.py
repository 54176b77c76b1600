"""Errors of code signing.

Whose fault, and what the peer sees: every :class:`SigningError` is a *remote* violation —
an operator (the ``signer`` REST API, or ``iot`` CreateOTAUpdate) asked for something the
rules refuse. It follows the wire-error contract (:class:`bastion.errors.ServiceError`):
the HTTP client sees ``aws_error_type`` as ``x-amzn-ErrorType``, the ``http_status`` and
``{"message": …}``. AWS Signer names a bad request ``ValidationException``; the ``iot``
service names it ``InvalidRequestException`` (:meth:`SigningError.aws_error_type_for`),
so that CreateOTAUpdate refuses a revoked signature the way ``iot`` refuses anything.

Messages never hold key material.
"""

from __future__ import annotations

from typing import ClassVar

from bastion.errors import ServiceError


class SigningError(ServiceError):
    """Base class: a signing request refused.

    :param message: the message for the response body.
    """

    iot_error_type: ClassVar[str | None] = None  # the name in the ``iot`` service, if other

    def aws_error_type_for(self, service: str) -> str:
        if service == "iot" and self.iot_error_type is not None:
            return self.iot_error_type
        return self.aws_error_type


class ValidationError(SigningError, ValueError):
    """The caller's fault: a bad value, an unsupported platform or algorithm, a file
    that is not the one named, a profile or signature that may not be used."""

    aws_error_type = "ValidationException"
    http_status = 400
    iot_error_type = "InvalidRequestException"


class NotFoundError(SigningError, LookupError):
    """No such profile, job, certificate or platform."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class ConflictError(SigningError):
    """The resource exists already (a profile name in use)."""

    aws_error_type = "ConflictException"
    http_status = 409
    iot_error_type = "ResourceAlreadyExistsException"
