"""Exceptions of the access package.

Whose fault, and what the peer sees: an :class:`AccessError` is a *remote* violation — an
administrator asked for something the rules refuse (an unknown access key, disabling the
last active admin key). The API answers with :attr:`AccessError.aws_error`,
:attr:`AccessError.http_status` and ``{"message": str(error)}``. Messages name access key
ids, never secrets.

*Local* misuse (a role that is not a :class:`~bastion.access.Role`, a description that
is not a string) raises the built-in :class:`TypeError` / :class:`ValueError`.
"""

from __future__ import annotations

from typing import ClassVar


class AccessError(Exception):
    """Base class: a request about access keys that is refused, with what goes on the wire.

    :param message: the AWS-style message for the response body.
    """

    aws_error: ClassVar[str] = "InternalFailureException"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessKeyNotFoundError(AccessError):
    """No access key has that id."""

    aws_error = "ResourceNotFoundException"
    http_status = 404


class LastAdminKeyError(AccessError):
    """Disabling or deleting the key would leave no active admin key."""

    aws_error = "InvalidRequestException"
    http_status = 400
