"""Exceptions of the jobs package.

Whose fault, and what the peer sees: every :class:`JobsError` is a *remote* violation —
an operator (REST) or a device (MQTT, ``iot-jobs-data``) asked for something the rules
refuse. Each carries what goes on the wire through both doors:

* REST: the wire-error contract (:class:`bastion.errors.ServiceError`):
  ``aws_error_type`` (the ``x-amzn-ErrorType``) and ``http_status``; the message is the
  body's ``message``;
* MQTT: :attr:`JobsError.mqtt_code`, the ``code`` of the ``…/rejected`` payload, plus the
  execution state for the codes that carry one (``InvalidStateTransition``,
  ``VersionMismatch``).

Some refusals are named differently by the two AWS services of the REST door (a version
mismatch is ``VersionConflictException`` in ``iot`` and ``ConflictException`` in
``iot-jobs-data``): :meth:`JobsError.aws_error_type_for` picks by service.

Local misuse (wrong argument types, a naive datetime from the clock) raises the built-in
:class:`TypeError` / :class:`ValueError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from bastion.errors import ServiceError

if TYPE_CHECKING:
    from ._model import JobExecutionState


class JobsError(ServiceError):
    """Base class: a request the jobs service refuses.

    :param message: the AWS-style message for the response.
    :param execution_state: the execution's current state, for the MQTT rejection of
        ``InvalidStateTransition`` and ``VersionMismatch``.
    """

    mqtt_code: ClassVar[str] = "InternalError"
    jobs_data_error: ClassVar[str | None] = None  # iot-jobs-data name, when it differs

    def __init__(self, message: str, *,
                 execution_state: JobExecutionState | None = None) -> None:
        super().__init__(message)
        self.execution_state = execution_state

    def aws_error_type_for(self, service: str) -> str:
        """The AWS error type for ``service`` (``iot`` or ``iot-jobs-data``)."""
        if service == "iot-jobs-data" and self.jobs_data_error is not None:
            return self.jobs_data_error
        return self.aws_error_type


class InvalidRequestError(JobsError):
    """A malformed or rule-breaking request (bad id, bad document, bad value)."""

    aws_error_type = "InvalidRequestException"
    http_status = 400
    mqtt_code = "InvalidRequest"


class ResourceNotFoundError(JobsError):
    """No such job, job execution, job template or thing."""

    aws_error_type = "ResourceNotFoundException"
    http_status = 404
    mqtt_code = "ResourceNotFound"


class ResourceAlreadyExistsError(JobsError):
    """A job with that id exists."""

    aws_error_type = "ResourceAlreadyExistsException"
    http_status = 409
    mqtt_code = "InvalidRequest"


class ConflictError(JobsError):
    """A job template with that id exists."""

    aws_error_type = "ConflictException"
    http_status = 409
    mqtt_code = "InvalidRequest"


class InvalidStateTransitionError(JobsError):
    """The execution's (or job's) current status does not allow the change."""

    aws_error_type = "InvalidStateTransitionException"
    http_status = 409
    mqtt_code = "InvalidStateTransition"


class VersionMismatchError(JobsError):
    """``expectedVersion`` is not the execution's current version."""

    aws_error_type = "VersionConflictException"
    jobs_data_error = "ConflictException"
    http_status = 409
    mqtt_code = "VersionMismatch"


class LimitExceededError(JobsError):
    """A quota would be exceeded."""

    aws_error_type = "LimitExceededException"
    http_status = 410
    mqtt_code = "RequestThrottled"
