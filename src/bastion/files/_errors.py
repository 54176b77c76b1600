"""Errors of the file service.

Whose fault, and what the peer sees: every :class:`FilesError` follows the wire-error
contract (:class:`bastion.errors.ServiceError`): the HTTP client sees its
``aws_error_type`` as ``x-amzn-ErrorType``, its ``http_status`` and ``{"message": …}``.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class FilesError(ServiceError):
    """Base of the file service's errors.

    :param message: the message for the response body.
    """


class InvalidFileError(FilesError, ValueError):
    """The caller's fault: a bad file name, an oversized file, a URL that designates no
    Bastion file, or a job document that is not one."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class UnknownFileError(FilesError, LookupError):
    """No file of that name was uploaded."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class SignatureRejectedError(FilesError):
    """A download URL whose signature is missing, malformed, forged or expired; the client
    sees ``403 AccessDeniedException``.

    :ivar expired: the signature was genuine but its time is over.
    """

    aws_error_type = "AccessDeniedException"
    http_status = 403

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class FileTooLargeError(FilesError):
    """The caller's fault: more bytes than the upload may hold (the URL's limit, or
    Bastion's); nothing is stored."""

    aws_error_type = "RequestEntityTooLargeException"
    http_status = 413


class UploadUsedError(FilesError):
    """A presigned upload URL whose job execution uploaded already (the URL is good
    once), or is over. The client sees ``403 AccessDeniedException``."""

    aws_error_type = "AccessDeniedException"
    http_status = 403
