"""Exceptions of the rotation package.

Whose fault, and what the peer sees: a :class:`RotationError` is a *remote* violation —
a device asked for a rotation certificate it may not have, or an operator asked for
something the rules refuse. Each class carries the wire-error contract
(:class:`bastion.errors.ServiceError`: ``aws_error_type``, ``http_status``) and what the
MQTT door publishes on ``$aws/certificates/create-from-csr/<format>/rejected``:
``{"statusCode": http_status, "errorCode": error_code, "errorMessage": message}``.
Messages never carry key material. Local misuse raises :class:`TypeError`/:class:`ValueError`.
"""

from __future__ import annotations

from typing import ClassVar

from bastion.errors import ServiceError


class RotationError(ServiceError):
    """Base class: a rotation request that is refused."""

    error_code: ClassVar[str] = "InternalFailure"

    def rejection(self) -> tuple[int, str]:
        """What the MQTT door answers: ``(statusCode, errorCode)``."""
        return self.http_status, self.error_code


class InvalidRequestError(RotationError):
    """A bad CSR (unreadable, a weak key, the key of the certificate it replaces) or a
    bad policy setting."""

    aws_error_type = "InvalidRequestException"
    http_status = 400
    error_code = "InvalidRequest"


class NotAuthorizedError(RotationError):
    """The requesting certificate is not the one the thing's rotation replaces."""

    aws_error_type = "UnauthorizedException"
    http_status = 403
    error_code = "AccessDenied"


class ResourceNotFoundError(RotationError):
    aws_error_type = "ResourceNotFoundException"
    http_status = 404
    error_code = "ResourceNotFound"


class ConflictError(RotationError):
    """The rotation is past the step asked for (its certificate was issued, its job
    ended), or the thing already has a rotation under way."""

    aws_error_type = "ConflictException"
    http_status = 409
    error_code = "Conflict"


class ThrottlingError(RotationError):
    """The thing rotated its certificate within the configured minimum interval."""

    aws_error_type = "ThrottlingException"
    http_status = 429
    error_code = "Throttling"
