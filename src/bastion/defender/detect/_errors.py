"""Errors of Device Defender detect.

Whose fault, and what the peer sees: every :class:`DetectError` is a *remote* violation
(a caller's bad behavior, metric value or name; a device's bad metrics report). It follows
the wire-error contract (:class:`bastion.errors.ServiceError`): the API answers its
``aws_error_type``, ``http_status`` and ``{"message": …}``. A :class:`ReportRejected`
reaches devices only, on the ``…/rejected`` topic, with its :attr:`ReportRejected.mqtt_code`.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class DetectError(ServiceError):
    """Base of detect errors.

    :param message: the AWS-style message for the response body.
    """


class InvalidRequestError(DetectError):
    """The caller sent a bad value (a behavior, a metric value, a name)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class ResourceNotFoundError(DetectError):
    aws_error_type = "ResourceNotFoundException"
    http_status = 404


class ResourceAlreadyExistsError(DetectError):
    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409


class VersionConflictError(DetectError):
    """``expectedVersion`` does not match the profile's version."""

    aws_error_type = "VersionConflictException"
    http_status = 409


class ReportRejected(DetectError):
    """A device's metrics report was refused; the device sees ``mqtt_code`` (the
    ``ErrorCode`` of ``statusDetails``) and ``message`` on the ``…/rejected`` topic.

    Reports arrive over MQTT only; the REST identity (``400 InvalidRequestException``) is
    the contract's, never sent.

    :param mqtt_code: ``InvalidPayload``, ``Throttled``…
    :param message: the ``ErrorMessage``.
    """

    aws_error_type = "InvalidRequestException"
    http_status = 400

    def __init__(self, mqtt_code: str, message: str) -> None:
        super().__init__(message)
        self.mqtt_code = mqtt_code
