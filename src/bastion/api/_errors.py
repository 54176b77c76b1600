"""Exceptions of the API package, and the one place service errors become responses.

Every :class:`ApiError` is a *remote* violation answered on the wire. Like every service
error it follows the wire-error contract (:class:`bastion.errors.ServiceError`): it
carries the AWS error type (``aws_error_type``, the ``x-amzn-ErrorType`` header, which
botocore turns into the exception class a client catches), the HTTP status
(``http_status``) and the ``message`` for the ``{"message": …}`` body. Messages never
contain secrets (signatures, secret keys, private keys).

Handlers let the services' own errors (:class:`~bastion.registry.RegistryError`,
:class:`~bastion.jobs.JobsError`, :class:`~bastion.shadow.ShadowError`…) escape; the
application answers every :class:`~bastion.errors.ServiceError` the same way, through
:func:`wire_error`. Anything else escaping a handler is our bug: it is logged and answered
``500 InternalFailureException`` without details.
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.errors import ServiceError


class ApiError(ServiceError):
    """A request the API refuses.

    :param aws_error_type: the AWS error type (``ResourceNotFoundException``).
    :param http_status: the HTTP status.
    :param message: the message for the response body.
    :param extra: further body fields (``resourceId``, ``resourceArn``).
    """

    def __init__(self, aws_error_type: str, http_status: int, message: str,
                 extra: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.aws_error_type = aws_error_type
        self.http_status = http_status
        self._extra: Mapping[str, str] = dict(extra or {})

    def body_fields(self) -> Mapping[str, str]:
        """The ``extra`` fields given."""
        return self._extra


def wire_error(error: ServiceError, service: str) -> ApiError:
    """What the API answers for ``error`` raised while serving ``service``.

    The single translation of a service error into the AWS error shape: its AWS error
    type as ``service`` names it, its HTTP status, its message and its further body
    fields.

    :param error: any service error (an :class:`ApiError` is answered as it is).
    :param service: the AWS service name of the request (``iot``, ``iot-jobs-data``…),
        ``""`` before it is known.
    """
    if isinstance(error, ApiError):
        return error
    return ApiError(error.aws_error_type_for(service), error.http_status, error.message,
                    error.body_fields())


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


def request_timeout(message: str) -> ApiError:
    """``408 RequestTimeoutException``: the client did not send its request in time.

    AWS's type for a request not received in time (botocore's standard retry mode treats
    it as transient, so SDKs retry on a new connection). Sent with ``connection: close``.
    """
    return ApiError("RequestTimeoutException", 408, message)


def throttled(message: str) -> ApiError:
    """``429 ThrottlingException``: the caller holds too many of a resource at once (SDKs
    retry it with backoff)."""
    return ApiError("ThrottlingException", 429, message)


def internal_failure() -> ApiError:
    """``500 InternalFailureException`` (details are in the server log only)."""
    return ApiError("InternalFailureException", 500,
                    "An internal error occurred; see the Bastion server log")
