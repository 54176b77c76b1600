"""Exceptions of the shadow package.

Whose fault, and what the peer sees: every :class:`ShadowError` is a *remote* violation
— a device or an API caller sent a request the Device Shadow service refuses (bad JSON, a
stale ``version``, a document over the size limit, a shadow that does not exist). Both
doors answer from the same exception:

* over MQTT, :meth:`ShadowError.document` is published on the request topic's
  ``/rejected`` topic: ``{"code": 409, "message": "Version conflict", "timestamp": …,
  "clientToken": …}``;
* over HTTPS, the wire-error contract (:class:`bastion.errors.ServiceError`):
  ``aws_error_type`` is the error type (``ConflictException``), ``http_status`` the HTTP
  status (the document's ``code``) and ``message`` the message.

The client token of the request, once it could be read, travels with the error so that
the rejection can be matched to its request (the AWS device SDKs rely on it).

*Local* misuse — passing ``str`` where ``bytes`` are expected — raises the built-in
:class:`TypeError`: a bug in our own caller.
"""

from __future__ import annotations

from typing import Any

from bastion.errors import ServiceError


class ShadowError(ServiceError):
    """Base class: a shadow request the service refuses, with what goes on the wire.

    :param message: the AWS message for the error document.
    :ivar client_token: the request's ``clientToken``, when it could be read.
    :ivar timestamp: when the request was refused (epoch seconds), once known.
    """

    def __init__(self, message: str, *, client_token: str | None = None) -> None:
        super().__init__(message)
        self.client_token = client_token
        self.timestamp: int | None = None

    def document(self, timestamp: int | None = None) -> dict[str, Any]:
        """The error document of ``/rejected`` topics (and of AWS's REST error bodies)."""
        when = timestamp if timestamp is not None else self.timestamp
        found: dict[str, Any] = {"code": self.http_status, "message": self.message}
        if when is not None:
            found["timestamp"] = when
        if self.client_token is not None:
            found["clientToken"] = self.client_token
        return found


class InvalidShadowRequestError(ShadowError):
    """400: the request is malformed (JSON, nodes, version, client token, names, depth)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class ShadowNotFoundError(ShadowError):
    """404: the shadow does not exist (never created, or deleted)."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class ShadowVersionConflictError(ShadowError):
    """409: the request's ``version`` is not the shadow's current version."""

    aws_error_type = "ConflictException"
    http_status = 409


class ShadowTooLargeError(ShadowError):
    """413: the request or the resulting state exceeds the size limit."""

    aws_error_type = "RequestEntityTooLargeException"
    http_status = 413


class UnsupportedEncodingError(ShadowError):
    """415: the request is not UTF-8."""

    aws_error_type = "UnsupportedDocumentEncodingException"
    http_status = 415


class ShadowThrottledError(ShadowError):
    """429: too many requests in flight on one connection."""

    aws_error_type = "ThrottlingException"
    http_status = 429


class ShadowInternalError(ShadowError):
    """500: our fault (the database failed); details are in the server log only."""

    aws_error_type = "InternalFailureException"
    http_status = 500
