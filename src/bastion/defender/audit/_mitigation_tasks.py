"""Audit mitigation actions tasks: apply mitigation actions to the findings of an audit.

Theory of operation
-------------------
``StartAuditMitigationActionsTask`` names the findings (an audit task's, optionally
narrowed to reason codes per check, or up to 25 finding ids) and, per check, up to five
mitigation actions. Every action must exist and be of a type AWS allows for that check
(:data:`~._catalog.CHECKS`), or the task is refused before anything runs. The task then
records one execution per (finding, action) as ``PENDING`` and runs them in the audit
executor, each ending ``COMPLETED``, ``FAILED`` (with the error), ``SKIPPED`` (the finding
is suppressed: mitigation never touches a suppressed finding) or ``CANCELED``.

Changes go through :class:`bastion.defender.mitigation.RegistryEffects`,
so deactivating a certificate publishes the same event as any other status change and the
broker drops the certificate's live sessions at once.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.defender.mitigation import (
    MitigationAction,
    MitigationActionService,
    MitigationActionType,
    MitigationEffects,
)
from bastion.registry import (
    RegistryError,
)
from bastion.store import (
    AuditMitigationExecutionRow,
    AuditMitigationTaskRow,
    ConflictError,
    InvalidPageTokenError,
    Store,
)

from .._errors import (
    DefenderError,
    InvalidRequestError,
    ResourceNotFoundError,
    TaskAlreadyExistsError,
)
from ._catalog import CHECKS
from ._model import (
    AuditMitigationExecution,
    AuditMitigationTask,
    ExecutionStatus,
    Finding,
    MitigationCheckStatistics,
    MitigationTaskStatus,
    MitigationTaskTarget,
)
from ._service import Executor, finding_of

log = logging.getLogger("bastion.defender.audit")

_TASK_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
MAX_PAGE: Final = 250

class _ActionFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def finding_message(finding: Finding) -> dict[str, Any]:
    """A finding as JSON (times in epoch seconds), for notifications."""
    return {
        "findingId": finding.finding_id, "taskId": finding.task_id,
        "checkName": finding.check_name,
        "taskStartTime": finding.task_start_time.timestamp(),
        "findingTime": finding.finding_time.timestamp(), "severity": finding.severity.value,
        "nonCompliantResource": finding.non_compliant_resource.as_json(),
        "relatedResources": [r.as_json() for r in finding.related_resources],
        "reasonForNonCompliance": finding.reason,
        "reasonForNonComplianceCode": finding.reason_code,
        "isSuppressed": finding.is_suppressed,
    }


class AuditMitigationService:
    """Start, describe, cancel and list audit mitigation actions tasks and executions."""

    def __init__(self, store: Store, *, account: Account,
                 actions: MitigationActionService, effects: MitigationEffects,
                 executor: Executor, clock: Clock | None = None) -> None:
        self._store = store
        self._account = account
        self._actions = actions
        self._effects = effects
        self._executor = executor
        self._clock: Clock = clock if clock is not None else SystemClock()

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

    def start_audit_mitigation_actions_task(
            self, task_id: str, *, target: Mapping[str, Any],
            audit_check_to_actions_mapping: Mapping[str, Sequence[str]],
            client_request_token: str | None = None) -> str:
        """StartAuditMitigationActionsTask: the task id; the actions run in the background.

        :raises TaskAlreadyExistsError: the task id is taken (by another request).
        :raises InvalidRequestError: a bad target, unknown action, or an action type the
            check does not allow.
        :raises ResourceNotFoundError: the audit task or a finding does not exist.
        """
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise InvalidRequestError("taskId must be 1-128 characters of a-z A-Z 0-9 _ -")
        with self._store.transaction(readonly=True) as uow:
            existing = uow.audit_mitigation.get_task(task_id)
        if existing is not None:
            if client_request_token and existing.client_request_token == client_request_token:
                return task_id  # an idempotent retry
            raise TaskAlreadyExistsError(f"Audit mitigation task {task_id} already exists")
        goal = MitigationTaskTarget.from_json(target)
        mapping = self._validated_mapping(audit_check_to_actions_mapping)
        findings = self._findings(goal)
        now = self._now()
        executions: list[AuditMitigationExecutionRow] = []
        for finding in findings:
            for action in mapping.get(finding.check_name, ()):
                executions.append(AuditMitigationExecutionRow(
                    task_id, finding.finding_id, action.name, action.action_id,
                    finding.check_name,
                    ExecutionStatus.PENDING.value, now, None, None, None))
        row = AuditMitigationTaskRow(task_id, MitigationTaskStatus.IN_PROGRESS.value, now,
                                     None, goal.as_json(),
                                     {k: [a.name for a in v] for k, v in mapping.items()},
                                     client_request_token)
        try:
            with self._store.transaction() as uow:
                uow.audit_mitigation.insert_task(row)
                uow.audit_mitigation.insert_executions(executions)
        except ConflictError:
            raise TaskAlreadyExistsError(
                f"Audit mitigation task {task_id} already exists") from None
        by_id = {f.finding_id: f for f in findings}
        actions = {a.name: a for v in mapping.values() for a in v}
        self._executor(lambda: self._run(task_id, by_id, actions))
        log.info("audit mitigation task %s started: %d executions", task_id, len(executions))
        return task_id

    def _validated_mapping(self, mapping: Mapping[str, Sequence[str]]
                           ) -> dict[str, list[MitigationAction]]:
        if not mapping:
            raise InvalidRequestError("auditCheckToActionsMapping must map at least one check")
        names = sorted({n for v in mapping.values() for n in v})
        found = self._actions.actions_named(names)
        result: dict[str, list[MitigationAction]] = {}
        for check, action_names in mapping.items():
            spec = CHECKS.get(check)
            if spec is None:
                raise InvalidRequestError(f"{check} is not a valid audit check name")
            if not 1 <= len(action_names) <= 5:
                raise InvalidRequestError(f"Map {check} to 1 to 5 mitigation actions")
            chosen: list[MitigationAction] = []
            for name in action_names:
                action = found.get(name)
                if action is None:
                    raise InvalidRequestError(f"Mitigation action {name} does not exist")
                if action.action_type not in spec.actions:
                    raise InvalidRequestError(
                        f"Mitigation action {name} ({action.action_type}) cannot be applied "
                        f"to {check}; allowed: "
                        + ", ".join(a.value for a in spec.actions))
                chosen.append(action)
            result[check] = chosen
        return result

    def _findings(self, goal: MitigationTaskTarget) -> list[Finding]:
        if goal.finding_ids is not None:
            if goal.audit_task_id is not None or goal.check_to_reason_codes is not None:
                raise InvalidRequestError("Give findingIds alone, or an auditTaskId")
            if not 1 <= len(goal.finding_ids) <= 25:
                raise InvalidRequestError("findingIds must list 1 to 25 findings")
            with self._store.transaction(readonly=True) as uow:
                rows = uow.audit.findings_of(list(goal.finding_ids))
            missing = set(goal.finding_ids) - {row.finding_id for row in rows}
            if missing:
                raise ResourceNotFoundError(f"Audit finding {min(missing)} does not "
                                            "exist")
            return [finding_of(row) for row in rows]
        if goal.audit_task_id is None:
            raise InvalidRequestError("The target must give an auditTaskId or findingIds")
        with self._store.transaction(readonly=True) as uow:
            if uow.audit.get_task(goal.audit_task_id) is None:
                raise ResourceNotFoundError(f"Audit task {goal.audit_task_id} does not exist")
        codes = goal.check_to_reason_codes
        findings: list[Finding] = []
        token: str | None = None
        while True:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.audit.findings_page(task_id=goal.audit_task_id, limit=1000,
                                                      token=token)
            for row in rows:
                if codes is not None and row.reason_code not in codes.get(row.check_name, ()):
                    continue
                findings.append(finding_of(row))
            if not token:
                return findings

    def _run(self, task_id: str, findings: Mapping[str, Finding],
             actions: Mapping[str, MitigationAction]) -> None:
        with self._store.transaction(readonly=True) as uow:
            pending = uow.audit_mitigation.executions(task_id,
                                                      status=ExecutionStatus.PENDING.value)
        for execution in pending:
            with self._store.transaction(readonly=True) as uow:
                task = uow.audit_mitigation.get_task(task_id)
            if task is None or task.status != MitigationTaskStatus.IN_PROGRESS:
                return
            finding = findings[execution.finding_id]
            action = actions[execution.action_name]
            status, code, message = ExecutionStatus.COMPLETED, None, None
            if finding.is_suppressed:
                status, message = ExecutionStatus.SKIPPED, "The finding is suppressed"
            else:
                try:
                    message = self._apply(action, finding)
                except _ActionFailed as error:
                    status, code, message = ExecutionStatus.FAILED, error.code, error.message
                except RegistryError as error:
                    status, code, message = (ExecutionStatus.FAILED, error.aws_error_type,
                                             error.message)
                except Exception as error:
                    log.exception("mitigation %s on finding %s failed", action.name,
                                  finding.finding_id)
                    status, code, message = (ExecutionStatus.FAILED, "InternalFailure",
                                             f"{type(error).__name__}: {error}")
            with self._store.transaction() as uow:
                uow.audit_mitigation.finish_execution(
                    task_id, execution.finding_id, execution.action_name, status=status.value,
                    end_time=self._now(), error_code=code, message=message,
                    only_if_status=ExecutionStatus.PENDING.value)
        with self._store.transaction() as uow:
            failed = uow.audit_mitigation.executions(task_id,
                                                     status=ExecutionStatus.FAILED.value)
            uow.audit_mitigation.update_task(
                task_id, status=(MitigationTaskStatus.FAILED if failed
                                 else MitigationTaskStatus.COMPLETED).value,
                end_time=self._now(), only_if_status=MitigationTaskStatus.IN_PROGRESS.value)

    def _apply(self, action: MitigationAction, finding: Finding) -> str | None:
        ident = finding.non_compliant_resource.identifier.fields
        params = action.type_params
        kind = action.action_type
        effects = self._effects
        if kind is MitigationActionType.UPDATE_DEVICE_CERTIFICATE:
            cert = _member(ident, "deviceCertificateId")
            effects.deactivate_certificate(cert)
            return f"Certificate {cert} set to INACTIVE"
        if kind is MitigationActionType.UPDATE_CA_CERTIFICATE:
            ca = _member(ident, "caCertificateId")
            effects.deactivate_ca_certificate(ca)
            return f"CA certificate {ca} set to INACTIVE"
        if kind is MitigationActionType.ADD_THINGS_TO_THING_GROUP:
            cert = _member(ident, "deviceCertificateId")
            things = effects.things_of_certificate(cert)
            for group in params["thingGroupNames"]:
                for thing in things:
                    effects.add_thing_to_group(group, thing)
            if not things:
                return "No thing is attached to the certificate"
            return (f"Added {', '.join(things)} to "
                    + ", ".join(params["thingGroupNames"]))
        if kind is MitigationActionType.REPLACE_DEFAULT_POLICY_VERSION:
            policy = ident.get("policyVersionIdentifier") or {}
            name = policy.get("policyName")
            if not name:
                raise _ActionFailed("InvalidRequest", "The finding names no policy")
            version = effects.replace_default_policy_version(str(name))
            return f"Policy {name}: blank version {version} is now the default"
        if kind is MitigationActionType.ENABLE_IOT_LOGGING:
            effects.enable_logging(params["roleArnForLogging"], params["logLevel"])
            return f"IoT logging enabled at {params['logLevel']}"
        topic = params["topicArn"]
        try:
            effects.publish(topic, f"Bastion audit finding: {finding.check_name}",
                            finding_message(finding))
        except LookupError as error:
            raise _ActionFailed("ResourceNotFound", str(error)) from None
        return f"Finding sent to {topic}"

    # -- reading -----------------------------------------------------------------------

    def describe_audit_mitigation_actions_task(self, task_id: str) -> AuditMitigationTask:
        """:raises ResourceNotFoundError: no such task."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.audit_mitigation.get_task(task_id)
            executions = [] if row is None else uow.audit_mitigation.executions(task_id)
        if row is None:
            raise ResourceNotFoundError(f"Audit mitigation task {task_id} does not exist")
        return _task(row, executions)

    def actions_of(self, task: AuditMitigationTask) -> list[MitigationAction]:
        names = sorted({n for v in task.actions_mapping.values() for n in v})
        found = self._actions.actions_named(names)
        return [found[n] for n in names if n in found]

    def cancel_audit_mitigation_actions_task(self, task_id: str) -> None:
        """:raises ResourceNotFoundError: no such task.
        :raises InvalidRequestError: the task is not IN_PROGRESS."""
        with self._store.transaction() as uow:
            row = uow.audit_mitigation.get_task(task_id)
            if row is None:
                raise ResourceNotFoundError(f"Audit mitigation task {task_id} does not exist")
            if row.status != MitigationTaskStatus.IN_PROGRESS:
                raise InvalidRequestError(f"Audit mitigation task {task_id} is {row.status}")
            now = self._now()
            uow.audit_mitigation.update_task(task_id, status=MitigationTaskStatus.CANCELED,
                                             end_time=now,
                                             only_if_status=MitigationTaskStatus.IN_PROGRESS)
            uow.audit_mitigation.cancel_pending(task_id, now)

    def list_audit_mitigation_actions_tasks(
            self, *, start_time: datetime, end_time: datetime, audit_task_id: str | None = None,
            finding_id: str | None = None, task_status: str | None = None,
            max_results: int | None = None, next_token: str | None = None
            ) -> tuple[list[AuditMitigationTask], str | None]:
        if task_status is not None and task_status not in MitigationTaskStatus.__members__:
            raise InvalidRequestError(f"taskStatus {task_status!r} is not valid")
        limit = max_results or MAX_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"maxResults must be between 1 and {MAX_PAGE}")
        task_ids: list[str] | None = None
        with self._store.transaction(readonly=True) as uow:
            if finding_id is not None:
                task_ids = uow.audit_mitigation.task_ids_of_finding(finding_id)
            try:
                rows, token = uow.audit_mitigation.tasks_page(
                    since=start_time.astimezone(UTC), until=end_time.astimezone(UTC),
                    status=task_status, task_ids=task_ids, limit=limit, token=next_token)
            except InvalidPageTokenError:
                raise InvalidRequestError("The nextToken is not valid") from None
        tasks = [_task(row, []) for row in rows]
        if audit_task_id is not None:
            tasks = [t for t in tasks if t.target.audit_task_id == audit_task_id]
        return tasks, token

    def list_audit_mitigation_actions_executions(
            self, task_id: str, finding_id: str, *, action_status: str | None = None,
            max_results: int | None = None, next_token: str | None = None
            ) -> tuple[list[AuditMitigationExecution], str | None]:
        if action_status is not None and action_status not in ExecutionStatus.__members__:
            raise InvalidRequestError(f"actionStatus {action_status!r} is not valid")
        limit = max_results or MAX_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"maxResults must be between 1 and {MAX_PAGE}")
        try:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.audit_mitigation.executions_page(
                    task_id, finding_id=finding_id, status=action_status, limit=limit,
                    token=next_token)
        except InvalidPageTokenError:
            raise InvalidRequestError("The nextToken is not valid") from None
        return [_execution(row) for row in rows], token


def _member(ident: Mapping[str, Any], name: str) -> str:
    value = ident.get(name)
    if not isinstance(value, str):
        raise _ActionFailed("InvalidRequest", f"The finding's resource has no {name}")
    return value


def _execution(row: AuditMitigationExecutionRow) -> AuditMitigationExecution:
    return AuditMitigationExecution(row.task_id, row.finding_id, row.action_name,
                                    row.action_id, ExecutionStatus(row.status), row.start_time,
                                    row.end_time, row.error_code, row.message)


def _task(row: AuditMitigationTaskRow, executions: list[AuditMitigationExecutionRow]
          ) -> AuditMitigationTask:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for execution in executions:
        counts[execution.check_name][execution.status] += 1
    statistics = {
        check: MitigationCheckStatistics(
            total=sum(c.values()), failed=c[ExecutionStatus.FAILED],
            succeeded=c[ExecutionStatus.COMPLETED], skipped=c[ExecutionStatus.SKIPPED],
            canceled=c[ExecutionStatus.CANCELED])
        for check, c in counts.items()
    }
    return AuditMitigationTask(row.task_id, MitigationTaskStatus(row.status), row.start_time,
                               row.end_time, MitigationTaskTarget.from_json(row.target),
                               {k: tuple(v) for k, v in row.actions_mapping.items()},
                               statistics)


__all__ = ["AuditMitigationService", "DefenderError",
           "finding_message"]
