"""The moves every part of the service makes on executions and jobs.

* :meth:`ExecutionLifecycle._release` creates executions for new targets — at once, or
  through the job's rollout queue when it has a rollout rate (see :mod:`._rollout`).
* :meth:`ExecutionLifecycle._transition` moves one execution through the state machine
  (:mod:`._states`): version, timestamps, status details and the two timers.
* :meth:`ExecutionLifecycle._retry` runs when an execution ends ``FAILED`` or
  ``TIMED_OUT`` (device report, timer): when the job's ``jobExecutionsRetryConfig`` has a
  criterion for that status whose retries are not used up, a new ``QUEUED`` execution of
  the job on the thing is created, numbered ``executionNumber + 1``, with ``retryAttempt``
  one more. The retries used are those of the chain the failed execution closes — the
  ``retryAttempt`` executions before it — that ended in a status of the same criterion.
  The job must still be ``IN_PROGRESS``; the retry is made before the job's completion is
  decided, so a snapshot job stays in progress while a retry is pending.
* :meth:`ExecutionLifecycle._after_final` runs after executions reached a final status:
  the job's abort criteria first (met → the job is canceled), then the completion of a
  snapshot job whose executions are all final.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta

from bastion.store import JobExecutionRow, JobRow

from . import _configs as configs
from ._base import PENDING, ServiceBase, _Change
from ._model import (
    RETRYABLE_STATUSES,
    ExecutionStatus,
    JobExecutionState,
    JobStatus,
    TargetSelection,
)
from ._rollout import abort_criterion_met, release
from ._states import Actor, allowed, check_transition


class ExecutionLifecycle(ServiceBase):
    __slots__ = ()

    def _new_execution(self, change: _Change, job: JobRow, thing_name: str, *,
                       retry_attempt: int = 0) -> JobExecutionRow:
        """Queue a new execution of ``job`` on ``thing_name`` (numbered after its last)."""
        uow = change.uow
        latest = uow.job_executions.get(job.job_id, thing_name)
        number = 1 if latest is None else latest.execution_number + 1
        change.touch(thing_name)
        row = JobExecutionRow(
            job_id=job.job_id, thing_name=thing_name, execution_number=number,
            status=ExecutionStatus.QUEUED.value, force_canceled=False, status_details={},
            queued_at=change.now, started_at=None, last_updated_at=change.now,
            version_number=1, step_deadline=None, in_progress_deadline=None,
            retry_attempt=retry_attempt)
        uow.job_executions.insert(row)
        return row

    def _retry(self, change: _Change, failed: JobExecutionRow) -> JobExecutionRow | None:
        """Queue the retry of ``failed`` (just saved ``FAILED`` or ``TIMED_OUT``) when the
        job's retry configuration allows one more; returns it, or ``None``."""
        uow = change.uow
        job = uow.jobs.get(failed.job_id)
        if job is None or job.status != JobStatus.IN_PROGRESS.value:
            return None
        config = configs.retry_from_json(job.retry_config)
        criterion = None if config is None else config.criterion_for(
            ExecutionStatus(failed.status))
        if criterion is None:
            return None
        first = failed.execution_number - failed.retry_attempt
        used = 0
        for number in range(first, failed.execution_number):
            earlier = uow.job_executions.get(failed.job_id, failed.thing_name, number)
            if earlier is not None and ExecutionStatus(earlier.status) in (
                    criterion.failure_type.statuses):
                used += 1
        if used >= criterion.number_of_retries:
            return None
        return self._new_execution(change, job, failed.thing_name,
                                   retry_attempt=failed.retry_attempt + 1)

    def _release(self, change: _Change, job: JobRow, thing_names: list[str]) -> JobRow:
        """Executions of ``job`` for ``thing_names``: created now, or queued behind the
        rollout rate. Returns the job row as saved."""
        if not thing_names:
            return job
        if configs.rollout_from_json(job.rollout_config) is None:
            for name in thing_names:
                self._new_execution(change, job, name)
            return job
        change.uow.jobs.enqueue(job.job_id, thing_names)
        return self._release_queued(change, job)

    def _release_queued(self, change: _Change, job: JobRow) -> JobRow:
        """Release as many queued executions as the rollout rate allows now."""
        uow = change.uow
        rollout = configs.rollout_from_json(job.rollout_config)
        waiting = uow.jobs.queue_length(job.job_id)
        if waiting == 0:
            return job
        if rollout is None:  # the rate was removed by UpdateJob: release the rest
            for name in uow.jobs.dequeue(job.job_id, waiting):
                self._new_execution(change, job, name)
            return job
        counts = uow.job_executions.count_by_status(job.job_id)
        step = release(rollout, window_start=job.rollout_window_start,
                       window_count=job.rollout_window_count,
                       notified=sum(counts.values()),
                       succeeded=counts.get(ExecutionStatus.SUCCEEDED.value, 0),
                       waiting=waiting, now=change.now)
        for name in uow.jobs.dequeue(job.job_id, step.count):
            self._new_execution(change, job, name)
        if (step.window_start, step.window_count) != (job.rollout_window_start,
                                                      job.rollout_window_count):
            job = dataclasses.replace(job, rollout_window_start=step.window_start,
                                      rollout_window_count=step.window_count)
            uow.jobs.save(job)
        return job

    def _transition(self, change: _Change, row: JobExecutionRow, new: ExecutionStatus,
                    actor: Actor, *, status_details: Mapping[str, str] | None = None,
                    step_timeout_minutes: int | None = None,
                    in_progress_timeout_minutes: int | None = None,
                    force_canceled: bool = False) -> JobExecutionRow:
        """Move ``row`` to ``new`` and save it.

        Entering ``IN_PROGRESS`` from ``QUEUED`` starts the in-progress timer (when the job
        has one); ``step_timeout_minutes`` (re)sets the step timer, -1 cancels it. A final
        status stops both timers.

        :raises InvalidStateTransitionError: the state machine refuses the change.
        """
        state = JobExecutionState(ExecutionStatus(row.status), row.status_details,
                                  row.version_number)
        check_transition(state, new, actor)
        change.touch(row.thing_name)
        now = change.now
        started, step, total = row.started_at, row.step_deadline, row.in_progress_deadline
        if new is ExecutionStatus.IN_PROGRESS:
            if state.status is ExecutionStatus.QUEUED:
                started = started or now
                if in_progress_timeout_minutes is not None:
                    total = now + timedelta(minutes=in_progress_timeout_minutes)
            if step_timeout_minutes is not None:
                step = (None if step_timeout_minutes == -1
                        else now + timedelta(minutes=step_timeout_minutes))
        else:
            step = total = None
        saved = dataclasses.replace(
            row, status=new.value,
            status_details=(dict(status_details) if status_details is not None
                            else row.status_details),
            started_at=started, last_updated_at=now, version_number=row.version_number + 1,
            step_deadline=step, in_progress_deadline=total,
            force_canceled=row.force_canceled or force_canceled)
        change.uow.job_executions.save(saved)
        if new in RETRYABLE_STATUSES:
            self._retry(change, saved)
        return saved

    def _cancel(self, change: _Change, job: JobRow, *, force: bool, reason_code: str | None,
                comment: str | None) -> JobRow:
        """Cancel ``job``: its QUEUED executions (and, with ``force``, IN_PROGRESS ones) and
        its rollout queue."""
        uow = change.uow
        actor = Actor.OPERATOR_FORCE if force else Actor.OPERATOR
        for row in uow.job_executions.of_job(job.job_id, PENDING):
            if allowed(ExecutionStatus(row.status), ExecutionStatus.CANCELED, actor):
                self._transition(change, row, ExecutionStatus.CANCELED, actor,
                                 force_canceled=force)
        uow.jobs.clear_queue(job.job_id)
        saved = dataclasses.replace(
            job, status=JobStatus.CANCELED.value, force_canceled=job.force_canceled or force,
            reason_code=reason_code if reason_code is not None else job.reason_code,
            comment=comment if comment is not None else job.comment,
            last_updated_at=change.now)
        uow.jobs.save(saved)
        return saved

    def _after_final(self, change: _Change, job_id: str) -> None:
        """Abort criteria, then completion, of a job whose executions reached final
        statuses."""
        uow = change.uow
        job = uow.jobs.get(job_id, for_update=True)
        if job is None or job.status != JobStatus.IN_PROGRESS.value:
            return
        abort = configs.abort_from_json(job.abort_config)
        if abort is not None:
            counts = {ExecutionStatus(k): v
                      for k, v in uow.job_executions.count_by_status(job_id).items()}
            criterion = abort_criterion_met(abort, counts)
            if criterion is not None:
                self._cancel(change, job, force=False, reason_code=None, comment=(
                    f"Canceled by the abort configuration: {criterion.failure_type.value} "
                    f"reached {criterion.threshold_percentage}% of at least "
                    f"{criterion.min_executed_things} executed things"))
                return
        self._complete_if_done(change, job)

    def _complete_if_done(self, change: _Change, job: JobRow) -> JobRow:
        """A snapshot job whose executions are all final (and none wait to be released)
        becomes COMPLETED."""
        uow = change.uow
        if (job.status != JobStatus.IN_PROGRESS.value
                or job.target_selection != TargetSelection.SNAPSHOT.value
                or uow.jobs.queue_length(job.job_id)
                or uow.job_executions.things_with(job.job_id, PENDING)):
            return job
        saved = dataclasses.replace(job, status=JobStatus.COMPLETED.value,
                                    completed_at=change.now, last_updated_at=change.now)
        uow.jobs.save(saved)
        return saved
