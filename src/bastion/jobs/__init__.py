"""Jobs: remote operations sent to devices, with AWS IoT Jobs' rules and wire semantics.

* :class:`JobService` — jobs (targets, snapshot or continuous, rollout rate, abort
  criteria, timeouts), their executions and the state machine devices drive, job
  templates; the same calls serve the MQTT door (``$aws/things/<thing>/jobs/…``, see
  :mod:`bastion.reserved.jobs`) and the REST door (``iot``, ``iot-jobs-data``).
* :class:`JobScheduler` — the background task: timers, rollout, continuous targets.
* Events (after each commit): :class:`JobExecutionsChanged`,
  :class:`NextJobExecutionChanged` — what ``…/jobs/notify`` and ``…/jobs/notify-next``
  carry.
* :func:`ensure_builtin_templates` — the templates every Bastion has
  (``bastion-upload-logs``: device logs on demand).
* :class:`JobDocumentSource` — the plug point for ``documentSource`` and presigned-URL
  placeholders (Bastion plugs in :class:`bastion.files.FileService`).
* Errors: :class:`JobsError` and its subclasses carry the REST error type and HTTP status
  (``aws_error_type``, ``http_status``) and the MQTT rejection code (``mqtt_code``).
"""

from __future__ import annotations

from ._builtin import (
    UPLOAD_LOGS_OPERATION,
    UPLOAD_LOGS_TEMPLATE,
    ensure_builtin_templates,
    upload_logs_document,
)
from ._configs import (
    abort_from_json,
    abort_to_json,
    presigned_to_json,
    retry_from_json,
    retry_to_json,
    rollout_from_json,
    rollout_to_json,
    timeout_to_json,
)
from ._documents import DEFAULT_PRESIGNED_EXPIRY, JobDocumentSource
from ._errors import (
    ConflictError,
    InvalidRequestError,
    InvalidStateTransitionError,
    JobsError,
    LimitExceededError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionMismatchError,
)
from ._events import JobExecutionsChanged, NextJobExecutionChanged
from ._model import (
    AbortConfig,
    AbortCriterion,
    ExecutionStatus,
    ExecutionUpdate,
    ExponentialRate,
    FailureType,
    Job,
    JobExecution,
    JobExecutionState,
    JobProcessDetails,
    JobStatus,
    JobTemplate,
    PendingExecutions,
    PresignedUrlConfig,
    RetryableFailureType,
    RetryConfig,
    RetryCriterion,
    RolloutConfig,
    TargetSelection,
)
from ._rollout import abort_criterion_met, release, rollout_rate
from ._scheduler import JobScheduler
from ._service import JobService
from ._states import DEVICE_STATUSES, TRANSITIONS, Actor, allowed, check_transition

__all__ = [
    "DEFAULT_PRESIGNED_EXPIRY",
    "DEVICE_STATUSES",
    "TRANSITIONS",
    "UPLOAD_LOGS_OPERATION",
    "UPLOAD_LOGS_TEMPLATE",
    "AbortConfig",
    "AbortCriterion",
    "Actor",
    "ConflictError",
    "ExecutionStatus",
    "ExecutionUpdate",
    "ExponentialRate",
    "FailureType",
    "InvalidRequestError",
    "InvalidStateTransitionError",
    "Job",
    "JobDocumentSource",
    "JobExecution",
    "JobExecutionState",
    "JobExecutionsChanged",
    "JobProcessDetails",
    "JobScheduler",
    "JobService",
    "JobStatus",
    "JobTemplate",
    "JobsError",
    "LimitExceededError",
    "NextJobExecutionChanged",
    "PendingExecutions",
    "PresignedUrlConfig",
    "ResourceAlreadyExistsError",
    "ResourceNotFoundError",
    "RetryConfig",
    "RetryCriterion",
    "RetryableFailureType",
    "RolloutConfig",
    "TargetSelection",
    "VersionMismatchError",
    "abort_criterion_met",
    "abort_from_json",
    "abort_to_json",
    "allowed",
    "check_transition",
    "ensure_builtin_templates",
    "presigned_to_json",
    "release",
    "retry_from_json",
    "retry_to_json",
    "rollout_from_json",
    "rollout_rate",
    "rollout_to_json",
    "timeout_to_json",
    "upload_logs_document",
]
