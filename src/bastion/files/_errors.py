"""Errors of the file service; each carries what the HTTP client sees."""

from __future__ import annotations


class FilesError(Exception):
    """Base of the file service's errors.

    :ivar code: the error code of the JSON answer.
    :ivar http_status: the HTTP status of the answer.
    """

    code = "InternalFailureException"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidFileError(FilesError, ValueError):
    """The caller's fault: a bad file name, an oversized file, a URL that designates no
    Bastion file, or a job document that is not one."""

    code = "InvalidRequestException"
    http_status = 400


class UnknownFileError(FilesError, LookupError):
    """No file of that name was uploaded."""

    code = "ResourceNotFoundException"
    http_status = 404


class SignatureRejectedError(FilesError):
    """A download URL whose signature is missing, malformed, forged or expired; the client
    sees ``403 AccessDeniedException``.

    :ivar expired: the signature was genuine but its time is over.
    """

    code = "AccessDeniedException"
    http_status = 403

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired
