"""The values of the jobs service: statuses, configurations, jobs, executions, templates.

Configurations keep AWS's meaning and units (minutes, per-minute rates, percentages);
:mod:`._configs` reads and writes them in AWS's JSON spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Final


class JobStatus(str, Enum):
    """The status of a job (``DELETION_IN_PROGRESS`` is never observed: Bastion deletes a
    job and its executions in one transaction)."""

    IN_PROGRESS = "IN_PROGRESS"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"
    DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"


class ExecutionStatus(str, Enum):
    """The status of a job execution; all but ``QUEUED`` and ``IN_PROGRESS`` are final."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"

    @property
    def is_terminal(self) -> bool:
        return self not in PENDING_STATUSES


PENDING_STATUSES: Final = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS})
TERMINAL_STATUSES: Final = frozenset(set(ExecutionStatus) - PENDING_STATUSES)
# The final statuses an execution reaches by running on its device (abort criteria count
# these as "executed"; CANCELED and REMOVED executions never ran to an end).
EXECUTED_STATUSES: Final = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED,
                                      ExecutionStatus.REJECTED, ExecutionStatus.TIMED_OUT})


class TargetSelection(str, Enum):
    SNAPSHOT = "SNAPSHOT"
    CONTINUOUS = "CONTINUOUS"


class FailureType(str, Enum):
    """Which failures an abort criterion counts."""

    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    ALL = "ALL"

    @property
    def statuses(self) -> frozenset[ExecutionStatus]:
        if self is FailureType.ALL:
            return frozenset({ExecutionStatus.FAILED, ExecutionStatus.REJECTED,
                              ExecutionStatus.TIMED_OUT})
        return frozenset({ExecutionStatus(self.value)})


class RetryableFailureType(str, Enum):
    """Which final statuses a retry criterion retries (``jobExecutionsRetryConfig``)."""

    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ALL = "ALL"

    @property
    def statuses(self) -> frozenset[ExecutionStatus]:
        if self is RetryableFailureType.ALL:
            return RETRYABLE_STATUSES
        return frozenset({ExecutionStatus(self.value)})


RETRYABLE_STATUSES: Final = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT})
"""The final statuses a retry configuration may retry (never REJECTED or CANCELED)."""


@dataclass(frozen=True, slots=True)
class RetryCriterion:
    """Retry an execution that ended in ``failure_type`` up to ``number_of_retries`` times."""

    failure_type: RetryableFailureType
    number_of_retries: int


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """``jobExecutionsRetryConfig``: one or two criteria, each failure type once (``ALL``
    alone)."""

    criteria: tuple[RetryCriterion, ...]

    def criterion_for(self, status: ExecutionStatus) -> RetryCriterion | None:
        """The criterion that retries an execution ending in ``status``, if any."""
        for criterion in self.criteria:
            if status in criterion.failure_type.statuses:
                return criterion
        return None


@dataclass(frozen=True, slots=True)
class ExponentialRate:
    """Start at ``base_rate_per_minute``; multiply the rate by ``increment_factor`` each
    time another ``notified_things`` executions were released (or ``succeeded_things``
    succeeded) — exactly one of the two is set."""

    base_rate_per_minute: int
    increment_factor: float
    notified_things: int | None = None
    succeeded_things: int | None = None


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    """How fast executions are released to devices (at least one field is set)."""

    maximum_per_minute: int | None = None
    exponential_rate: ExponentialRate | None = None


@dataclass(frozen=True, slots=True)
class AbortCriterion:
    """Cancel the job once at least ``min_executed_things`` executions ended on their
    devices and at least ``threshold_percentage`` % of those ended in ``failure_type``."""

    failure_type: FailureType
    threshold_percentage: float
    min_executed_things: int
    action: str = "CANCEL"


@dataclass(frozen=True, slots=True)
class AbortConfig:
    criteria: tuple[AbortCriterion, ...]


@dataclass(frozen=True, slots=True)
class PresignedUrlConfig:
    """Kept and returned as given; Bastion does not sign S3 URLs."""

    role_arn: str | None = None
    expires_in_sec: int | None = None


@dataclass(frozen=True, slots=True)
class JobProcessDetails:
    """How many executions of a job are in each status."""

    counts: Mapping[ExecutionStatus, int] = field(default_factory=dict)

    def count(self, status: ExecutionStatus) -> int:
        return self.counts.get(status, 0)


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    job_arn: str
    target_selection: TargetSelection
    status: JobStatus
    targets: tuple[str, ...]
    description: str | None
    document_source: str | None
    force_canceled: bool
    reason_code: str | None
    comment: str | None
    presigned_url_config: PresignedUrlConfig | None
    rollout_config: RolloutConfig | None
    abort_config: AbortConfig | None
    in_progress_timeout_minutes: int | None
    job_template_arn: str | None
    created_at: datetime
    last_updated_at: datetime
    completed_at: datetime | None
    process_details: JobProcessDetails
    is_concurrent: bool
    retry_config: RetryConfig | None = None


@dataclass(frozen=True, slots=True)
class JobExecutionState:
    status: ExecutionStatus
    status_details: Mapping[str, str]
    version_number: int


@dataclass(frozen=True, slots=True)
class JobExecution:
    """One job execution. ``job_document`` is filled only when asked for;
    ``approximate_seconds_before_timed_out`` is computed when the value is read."""

    job_id: str
    thing_name: str
    thing_arn: str
    execution_number: int
    status: ExecutionStatus
    force_canceled: bool
    status_details: Mapping[str, str]
    queued_at: datetime
    started_at: datetime | None
    last_updated_at: datetime
    version_number: int
    approximate_seconds_before_timed_out: int | None = None
    job_document: str | None = None
    retry_attempt: int = 0

    @property
    def state(self) -> JobExecutionState:
        return JobExecutionState(self.status, self.status_details, self.version_number)


@dataclass(frozen=True, slots=True)
class PendingExecutions:
    """A thing's executions that are not final: ``IN_PROGRESS`` ones, then ``QUEUED``
    ones, each by the time they were queued."""

    in_progress: tuple[JobExecution, ...]
    queued: tuple[JobExecution, ...]


@dataclass(frozen=True, slots=True)
class ExecutionUpdate:
    """What UpdateJobExecution answers: the new state and, if asked, the document."""

    execution_state: JobExecutionState
    job_document: str | None


@dataclass(frozen=True, slots=True)
class JobTemplate:
    job_template_id: str
    job_template_arn: str
    description: str
    document: str | None
    document_source: str | None
    presigned_url_config: PresignedUrlConfig | None
    rollout_config: RolloutConfig | None
    abort_config: AbortConfig | None
    in_progress_timeout_minutes: int | None
    created_at: datetime
    retry_config: RetryConfig | None = None
