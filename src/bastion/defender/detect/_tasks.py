"""Detect mitigation actions tasks (``StartDetectMitigationActionsTask`` and friends).

Theory of operation: a task names its violations (``violationIds``, or a security profile
and optionally one of its behaviors), narrows them (``violationEventOccurrenceRange``,
``includeOnlyActiveViolations``, ``includeSuppressedAlerts``) and applies mitigation
actions to each violation's thing. :meth:`DetectMitigationTasks.start` validates and
records the task ``IN_PROGRESS``, then hands the work to ``run`` (the app runs it on a
worker thread; tests may hold it). The work applies every (violation, action) pair
through ``apply`` — the app's registry path, so a quarantined device's live session
loses its rights at once — records one execution per pair, and ends the task
``SUCCESSFUL`` (``FAILED`` when any execution failed). :meth:`cancel` stops a task
between executions; the rest are not run and the task ends ``CANCELED``.

Tasks and executions are kept in memory: they do not survive a restart (the actions
they took are in the registry and the trail).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._errors import InvalidRequestError, ResourceAlreadyExistsError, ResourceNotFoundError

if TYPE_CHECKING:
    from ._service import DetectService


class DetectTaskStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class ExecutionStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class TargetViolation:
    """A violation a task acts on."""

    violation_id: str
    thing_name: str
    security_profile_name: str
    behavior_name: str


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What ``apply`` reports for one (violation, action) pair."""

    status: ExecutionStatus
    error_code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class DetectMitigationExecution:
    task_id: str
    violation_id: str
    action_name: str
    thing_name: str
    start: float
    end: float | None
    status: ExecutionStatus
    error_code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class DetectMitigationTask:
    task_id: str
    status: DetectTaskStatus
    start_time: float
    end_time: float | None
    violation_ids: tuple[str, ...] | None
    security_profile_name: str | None
    behavior_name: str | None
    occurrence_range: tuple[float, float] | None
    only_active: bool
    include_suppressed: bool
    action_names: tuple[str, ...]
    client_request_token: str
    executed: int = 0
    skipped: int = 0
    failed: int = 0

    def target_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.violation_ids is not None:
            out["violationIds"] = list(self.violation_ids)
        if self.security_profile_name is not None:
            out["securityProfileName"] = self.security_profile_name
        if self.behavior_name is not None:
            out["behaviorName"] = self.behavior_name
        return out


Apply = Callable[[str, TargetViolation, str], ActionOutcome]
"""``apply(task_id, violation, action_name)``: run one action, never raise."""


def _run_now(job: Callable[[], None]) -> None:
    job()


class DetectMitigationTasks:
    """The detect mitigation tasks of one Bastion.

    :param service: the detect service whose violations tasks act on.
    :param apply: applies one action to one violation (see :data:`Apply`).
    :param action_exists: whether a mitigation action of that name exists.
    :param run: runs a task's work (default: at once, on the caller's thread).
    """

    def __init__(self, service: DetectService, apply: Apply, *,
                 action_exists: Callable[[str], bool],
                 run: Callable[[Callable[[], None]], None] = _run_now) -> None:
        self._service = service
        self._apply = apply
        self._action_exists = action_exists
        self._run = run
        self._lock = threading.Lock()
        self._tasks: dict[str, DetectMitigationTask] = {}
        self._executions: list[DetectMitigationExecution] = []
        self._cancel: set[str] = set()

    def start(self, task_id: str, *, target: dict[str, Any], actions: Sequence[str],
              client_request_token: str,
              occurrence_range: tuple[float, float] | None = None,
              only_active: bool = False, include_suppressed: bool = False) -> str:
        """StartDetectMitigationActionsTask.

        :returns: the task id.
        :raises InvalidRequestError: no target, a behavior without its profile, no or
            unknown actions, a reversed range.
        :raises ResourceNotFoundError: the target's security profile does not exist.
        :raises ResourceAlreadyExistsError: the task id is taken by another request.
        """
        ids = target.get("violationIds")
        profile = target.get("securityProfileName")
        behavior = target.get("behaviorName")
        if not ids and not profile:
            raise InvalidRequestError(
                "target needs violationIds or securityProfileName")
        if ids and profile:
            raise InvalidRequestError(
                "target takes violationIds or securityProfileName, not both")
        if behavior and not profile:
            raise InvalidRequestError("behaviorName needs securityProfileName")
        if profile:
            described = self._service.describe_security_profile(profile)
            if behavior and behavior not in {b.name for b in described.behaviors}:
                raise ResourceNotFoundError(f"no behavior {behavior} in {profile}")
        if not actions:
            raise InvalidRequestError("actions must name at least one mitigation action")
        for name in actions:
            if not self._action_exists(name):
                raise InvalidRequestError(f"no mitigation action {name}")
        if occurrence_range is not None and occurrence_range[0] > occurrence_range[1]:
            raise InvalidRequestError("violationEventOccurrenceRange ends before it starts")
        task = DetectMitigationTask(
            task_id=task_id, status=DetectTaskStatus.IN_PROGRESS,
            start_time=self._service.clock.time(), end_time=None,
            violation_ids=tuple(ids) if ids else None, security_profile_name=profile,
            behavior_name=behavior, occurrence_range=occurrence_range,
            only_active=only_active, include_suppressed=include_suppressed,
            action_names=tuple(actions), client_request_token=client_request_token)
        with self._lock:
            existing = self._tasks.get(task_id)
            if existing is not None:
                if existing.client_request_token == client_request_token:
                    return task_id
                raise ResourceAlreadyExistsError(f"task {task_id} already exists")
            self._tasks[task_id] = task
        self._run(lambda: self._execute(task))
        return task_id

    def violations_of(self, task: DetectMitigationTask) -> list[TargetViolation]:
        """The violations ``task`` acts on, oldest first, one entry per violation."""
        service = self._service
        now = service.clock.time()
        active = {v.violation_id: v for v in service.list_active_violations()}
        if task.occurrence_range is not None:
            start, end = task.occurrence_range
        else:
            start, end = now - service.retention_seconds, now
        found: dict[str, TargetViolation] = {}
        if not task.only_active:
            for event in service.list_violation_events(start, end):
                found.setdefault(event.violation_id, TargetViolation(
                    event.violation_id, event.thing_name, event.security_profile_name,
                    event.behavior.name))
        for a in active.values():
            if task.occurrence_range is None or start <= a.last_violation_time <= end \
                    or start <= a.violation_start_time <= end \
                    or a.violation_id in found:
                found.setdefault(a.violation_id, TargetViolation(
                    a.violation_id, a.thing_name, a.security_profile_name, a.behavior.name))
        chosen: list[TargetViolation] = []
        for v in found.values():
            if task.only_active and v.violation_id not in active:
                continue
            if task.violation_ids is not None and v.violation_id not in task.violation_ids:
                continue
            if task.security_profile_name is not None and \
                    v.security_profile_name != task.security_profile_name:
                continue
            if task.behavior_name is not None and v.behavior_name != task.behavior_name:
                continue
            if not task.include_suppressed and self._suppressed(v):
                continue
            chosen.append(v)
        return chosen

    def _suppressed(self, violation: TargetViolation) -> bool:
        if self._service.is_suppressed(violation.violation_id):
            return True
        profile = self._service.profiles.get(violation.security_profile_name)
        return profile is not None and any(
            b.name == violation.behavior_name and b.suppress_alerts for b in profile.behaviors)

    def _execute(self, task: DetectMitigationTask) -> None:
        executed = skipped = failed = 0
        canceled = False
        for violation in self.violations_of(task):
            for action in task.action_names:
                if task.task_id in self._cancel:
                    canceled = True
                    break
                started = self._service.clock.time()
                outcome = self._apply(task.task_id, violation, action)
                if outcome.status is ExecutionStatus.SUCCESSFUL:
                    executed += 1
                elif outcome.status is ExecutionStatus.SKIPPED:
                    skipped += 1
                else:
                    failed += 1
                with self._lock:
                    self._executions.append(DetectMitigationExecution(
                        task.task_id, violation.violation_id, action, violation.thing_name,
                        started, self._service.clock.time(), outcome.status, outcome.error_code,
                        outcome.message))
            if canceled:
                break
        canceled = canceled or task.task_id in self._cancel
        status = (DetectTaskStatus.CANCELED if canceled else
                  DetectTaskStatus.FAILED if failed else DetectTaskStatus.SUCCESSFUL)
        with self._lock:
            self._tasks[task.task_id] = replace(
                self._tasks[task.task_id], status=status, end_time=self._service.clock.time(),
                executed=executed, skipped=skipped, failed=failed)

    def describe(self, task_id: str) -> DetectMitigationTask:
        """:raises ResourceNotFoundError: no such task."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise ResourceNotFoundError(f"no detect mitigation actions task {task_id}")
        return task

    def cancel(self, task_id: str) -> None:
        """CancelDetectMitigationActionsTask.

        :raises ResourceNotFoundError: no such task.
        :raises InvalidRequestError: the task is no longer in progress.
        """
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise ResourceNotFoundError(f"no detect mitigation actions task {task_id}")
            if task.status is not DetectTaskStatus.IN_PROGRESS:
                raise InvalidRequestError(f"task {task_id} is {task.status.value}")
            self._cancel.add(task_id)

    def list_tasks(self, start: float, end: float) -> list[DetectMitigationTask]:
        """Tasks started in [start, end], oldest first."""
        with self._lock:
            tasks = list(self._tasks.values())
        return sorted((t for t in tasks if start <= t.start_time <= end),
                      key=lambda t: t.start_time)

    def list_executions(self, *, task_id: str | None = None,
                        violation_id: str | None = None, thing_name: str | None = None,
                        start: float | None = None, end: float | None = None
                        ) -> list[DetectMitigationExecution]:
        with self._lock:
            items = list(self._executions)
        return [e for e in items
                if (task_id is None or e.task_id == task_id)
                and (violation_id is None or e.violation_id == violation_id)
                and (thing_name is None or e.thing_name == thing_name)
                and (start is None or e.start >= start)
                and (end is None or e.start <= end)]
