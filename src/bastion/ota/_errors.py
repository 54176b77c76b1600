"""Errors of OTA updates.

Whose fault, and what the peer sees: every :class:`OtaError` is a *remote* violation — an
operator's CreateOTAUpdate, GetOTAUpdate or DeleteOTAUpdate (``iot``) asked for something
the rules refuse. It follows the wire-error contract (:class:`bastion.errors.ServiceError`):
``aws_error_type`` as ``x-amzn-ErrorType``, ``http_status``, ``{"message": …}``. Refusals of
the services an OTA update uses (jobs, code signing, files) reach the caller as those
services raise them.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class OtaError(ServiceError):
    """Base class: an OTA request refused.

    :param message: the message for the response body.
    """


class InvalidRequestError(OtaError, ValueError):
    """A bad id, file, location or code-signing choice; something Bastion does not do
    (MQTT streams); an unsigned file."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class ResourceNotFoundError(OtaError, LookupError):
    """No such OTA update, or a file it names does not exist."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class ResourceAlreadyExistsError(OtaError):
    """An OTA update of that id exists."""

    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409
