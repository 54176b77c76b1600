"""The device's side of jobs: what ``$aws/things/<thing>/jobs/…`` (MQTT) and
``iot-jobs-data`` (HTTPS) both call.

* GetPendingJobExecutions — the thing's executions that are not final;
* StartNextPendingJobExecution — the head of that list (``IN_PROGRESS`` ones first, then
  the oldest ``QUEUED``); a ``QUEUED`` head becomes ``IN_PROGRESS`` with the given status
  details and step timer, an ``IN_PROGRESS`` head is returned unchanged; ``None`` when
  nothing is pending;
* DescribeJobExecution — one execution (the latest, or ``executionNumber``), or the head
  (``$next``);
* UpdateJobExecution — the device reports progress or an end (:mod:`._states`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._base import (
    check_execution_number,
    check_expected_version,
    check_job_id,
    check_status_details,
    check_step_timeout,
    check_thing_name,
)
from ._errors import ResourceNotFoundError, VersionMismatchError
from ._lifecycle import ExecutionLifecycle
from ._model import (
    ExecutionStatus,
    ExecutionUpdate,
    JobExecution,
    JobExecutionState,
    PendingExecutions,
)
from ._states import Actor, device_status

NEXT: Final = "$next"


class DeviceOperations(ExecutionLifecycle):
    __slots__ = ()

    def get_pending_job_executions(self, thing_name: str) -> PendingExecutions:
        """GetPendingJobExecutions.

        :raises ResourceNotFoundError: no such thing.
        """
        thing_name = check_thing_name(thing_name)
        now = self.now()
        with self._read() as uow:
            self._require_thing(uow, thing_name)
            rows = self._pending_rows(uow, thing_name)
        executions = [self._execution(row, now) for row in rows]
        return PendingExecutions(
            tuple(e for e in executions if e.status is ExecutionStatus.IN_PROGRESS),
            tuple(e for e in executions if e.status is ExecutionStatus.QUEUED))

    def start_next_pending_job_execution(
        self, thing_name: str, *, status_details: Mapping[str, str] | None = None,
        step_timeout_in_minutes: int | None = None,
    ) -> JobExecution | None:
        """StartNextPendingJobExecution; the execution comes with its job document.

        :raises ResourceNotFoundError: no such thing.
        :raises InvalidRequestError: bad status details or step timeout.
        """
        thing_name = check_thing_name(thing_name)
        details = check_status_details(status_details)
        step = check_step_timeout(step_timeout_in_minutes)
        with self._change() as change:
            uow = change.uow
            self._require_thing(uow, thing_name)
            rows = self._pending_rows(uow, thing_name)
            if not rows:
                return None
            head = uow.job_executions.get(rows[0].job_id, thing_name,
                                          rows[0].execution_number, for_update=True)
            assert head is not None
            job = self._require_job(uow, head.job_id)
            if head.status == ExecutionStatus.QUEUED.value:
                head = self._transition(
                    change, head, ExecutionStatus.IN_PROGRESS, Actor.DEVICE,
                    status_details=details, step_timeout_minutes=step,
                    in_progress_timeout_minutes=job.in_progress_timeout_minutes)
            return self._execution(head, change.now, document=self._device_document(
                job, (head.job_id, thing_name, head.execution_number)))

    def describe_job_execution(self, job_id: str, thing_name: str, *,
                               execution_number: int | None = None,
                               include_job_document: bool = False) -> JobExecution | None:
        """DescribeJobExecution of ``job_id`` on ``thing_name`` (the latest execution, or
        ``execution_number``); ``job_id`` ``$next`` describes the head of the pending list
        (``None`` when nothing is pending).

        :raises ResourceNotFoundError: no such thing or execution.
        """
        thing_name = check_thing_name(thing_name)
        if job_id != NEXT:
            job_id = check_job_id(job_id)
        number = check_execution_number(execution_number)
        now = self.now()
        with self._read() as uow:
            self._require_thing(uow, thing_name)
            if job_id == NEXT:
                rows = self._pending_rows(uow, thing_name)
                if not rows:
                    return None
                row = rows[0]
            else:
                found = uow.job_executions.get(job_id, thing_name, number)
                if found is None:
                    raise ResourceNotFoundError(
                        f"Job execution of job {job_id} on thing {thing_name} does not exist")
                row = found
            document = self._document_of(
                uow, row.job_id, (row.job_id, thing_name, row.execution_number)) \
                if include_job_document else None
        return self._execution(row, now, document=document)

    def update_job_execution(
        self, job_id: str, thing_name: str, status: str, *,
        status_details: Mapping[str, str] | None = None,
        expected_version: int | None = None, execution_number: int | None = None,
        step_timeout_in_minutes: int | None = None,
    ) -> ExecutionUpdate:
        """UpdateJobExecution: the device reports ``status`` (IN_PROGRESS, SUCCEEDED,
        FAILED or REJECTED). Status details replace the previous ones when given.

        :raises InvalidRequestError: another status, bad details or timeout.
        :raises ResourceNotFoundError: no such thing or execution.
        :raises VersionMismatchError: ``expected_version`` is not the current version.
        :raises InvalidStateTransitionError: the execution is final.
        """
        thing_name = check_thing_name(thing_name)
        job_id = check_job_id(job_id)
        new = device_status(status)
        details = check_status_details(status_details)
        expected = check_expected_version(expected_version)
        number = check_execution_number(execution_number)
        step = check_step_timeout(step_timeout_in_minutes)
        with self._change() as change:
            uow = change.uow
            self._require_thing(uow, thing_name)
            row = uow.job_executions.get(job_id, thing_name, number, for_update=True)
            if row is None:
                raise ResourceNotFoundError(
                    f"Job execution of job {job_id} on thing {thing_name} does not exist")
            state = JobExecutionState(ExecutionStatus(row.status), row.status_details,
                                      row.version_number)
            if expected is not None and expected != row.version_number:
                raise VersionMismatchError(
                    f"The expected version {expected} is not the current version "
                    f"{row.version_number}", execution_state=state)
            job = self._require_job(uow, job_id)
            saved = self._transition(change, row, new, Actor.DEVICE, status_details=details,
                                     step_timeout_minutes=step,
                                     in_progress_timeout_minutes=job.in_progress_timeout_minutes)
            if new.is_terminal:
                self._after_final(change, job_id)
            return ExecutionUpdate(
                JobExecutionState(ExecutionStatus(saved.status), dict(saved.status_details),
                                  saved.version_number),
                self._device_document(job, (job_id, thing_name, saved.execution_number)))
