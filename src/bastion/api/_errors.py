"""Exceptions of the API package.

Every :class:`ApiError` is a *remote* violation answered on the wire: it carries the AWS
error code (the ``x-amzn-ErrorType`` header, which botocore turns into the exception
class a client catches), the HTTP status, and the message for the ``{"message": …}``
body. Messages never contain secrets (signatures, secret keys, private keys).

Registry refusals (:class:`bastion.registry.RegistryError`) are answered the same way
from their own ``aws_error`` / ``http_status``. Anything else escaping a handler is our
bug: it is logged and answered ``500 InternalFailureException`` without details.
"""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """A request the API refuses.

    :param code: the AWS error code (``ResourceNotFoundException``).
    :param status: the HTTP status.
    :param message: the message for the response body.
    :param extra: further body fields (``resourceId``, ``resourceArn``).
    """

    def __init__(self, code: str, status: int, message: str,
                 extra: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.extra: Mapping[str, str] = dict(extra or {})


def invalid_request(message: str) -> ApiError:
    """``400 InvalidRequestException``."""
    return ApiError("InvalidRequestException", 400, message)


def not_found(message: str) -> ApiError:
    """``404 ResourceNotFoundException``."""
    return ApiError("ResourceNotFoundException", 404, message)


def access_denied(message: str) -> ApiError:
    """``403 AccessDeniedException``: the caller's role does not allow the operation."""
    return ApiError("AccessDeniedException", 403, message)


def not_implemented(service: str, operation: str) -> ApiError:
    """The operation exists in AWS's model but Bastion has no handler for it.

    Answered ``400 NotImplementedException`` (a 4xx: SDKs do not retry it): botocore
    raises a ``ClientError`` whose code is ``NotImplementedException`` and whose message
    names the operation.
    """
    return ApiError("NotImplementedException", 400,
                    f"{service}:{operation} is not implemented by Bastion")


def internal_failure() -> ApiError:
    """``500 InternalFailureException`` (details are in the server log only)."""
    return ApiError("InternalFailureException", 500,
                    "An internal error occurred; see the Bastion server log")
