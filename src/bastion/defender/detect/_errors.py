"""Errors of Device Defender detect. Each carries the AWS error type a front door sends."""

from __future__ import annotations


class DetectError(Exception):
    """Base of detect errors: ``error_type`` and ``status`` are what the API answers."""

    error_type = "InternalFailureException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(DetectError):
    """The caller sent a bad value (a behavior, a metric value, a name)."""

    error_type = "InvalidRequestException"
    status = 400


class ResourceNotFoundError(DetectError):
    error_type = "ResourceNotFoundException"
    status = 404


class ResourceAlreadyExistsError(DetectError):
    error_type = "ResourceAlreadyExistsException"
    status = 409


class VersionConflictError(DetectError):
    """``expectedVersion`` does not match the profile's version."""

    error_type = "VersionConflictException"
    status = 409


class ReportRejected(DetectError):
    """A device's metrics report was refused; the device sees ``code`` / ``message`` on
    the ``…/rejected`` topic."""

    error_type = "InvalidPayload"
    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
