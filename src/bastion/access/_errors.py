"""Exceptions of the access package.

Whose fault, and what the peer sees: an :class:`AccessError` is a *remote* violation — an
administrator asked for something the rules refuse (an unknown access key, disabling the
last active admin key). It follows the wire-error contract
(:class:`bastion.errors.ServiceError`): front doors answer its ``aws_error_type``,
``http_status`` and ``{"message": …}``. Messages name access key ids, never secrets.

*Local* misuse (a role that is not a :class:`~bastion.access.Role`, a description that
is not a string) raises the built-in :class:`TypeError` / :class:`ValueError`.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class AccessError(ServiceError):
    """Base class: a request about access keys that is refused, with what goes on the wire.

    :param message: the AWS-style message for the response body.
    """


class AccessKeyNotFoundError(AccessError):
    """No access key has that id."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class LastAdminKeyError(AccessError):
    """Disabling or deleting the key would leave no active admin key."""

    aws_error_type = "InvalidRequestException"
    http_status = 400
