"""Running one audit task: every check in turn, findings written as they come.

Theory of operation
-------------------
A task row is created ``IN_PROGRESS`` with every check ``IN_PROGRESS`` (the service does
that, then hands :func:`run_task` to its executor). The runner builds one
:class:`~._fleet.StoreFleet` for the task (one CRL index, one key assessor, one instant
``now`` = the task's start time for every check) and the suppressions in force at that
instant, then runs the checks one by one. For each check it writes the findings (marking
those a suppression covers ``isSuppressed``) and then the check's details; a check that
raises is ``FAILED`` with its error, and the task goes on.

Cancellation is a compare-and-set on the task's status: the runner only ever updates a
task that is still ``IN_PROGRESS``, so once :meth:`AuditService.cancel_audit_task` has
won, nothing the runner does afterwards shows; it notices between checks (and long checks
poll it) and stops.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Final

from bastion.account import Account
from bastion.clock import Clock
from bastion.store import AuditFindingRow, Store

from ._catalog import CHECKS, CheckSpec
from ._checks import CHECK_FUNCTIONS, CheckContext, CheckOutcome, Fleet
from ._model import (
    AuditTaskStatus,
    AuditTaskType,
    CheckDetails,
    CheckRunStatus,
    FindingDraft,
)

log = logging.getLogger("bastion.defender.audit")

FINDING_BATCH: Final = 1000


def new_finding_id() -> str:
    return str(uuid.uuid4())


def _chunks(items: Iterable[AuditFindingRow], size: int) -> Iterator[list[AuditFindingRow]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def finding_rows(task_id: str, spec: CheckSpec, start: datetime, found_at: datetime,
                 drafts: Iterable[FindingDraft], suppressed: set[str]) -> Iterator[AuditFindingRow]:
    for draft in drafts:
        key = draft.resource.identifier.key
        yield AuditFindingRow(
            finding_id=new_finding_id(), task_id=task_id, check_name=spec.name.value,
            task_start_time=start, finding_time=found_at, severity=spec.severity.value,
            resource_type=draft.resource.resource_type.value, resource_key=key,
            non_compliant_resource=draft.resource.as_json(),
            related_resources=[r.as_json() for r in draft.related], reason=draft.reason,
            reason_code=draft.reason_code, is_suppressed=key in suppressed)


def run_task(store: Store, account: Account, *, task_id: str, fleet: Fleet,
             clock: Clock, previous_run: datetime | None,
             configurations: dict[str, dict[str, str]],
             on_finished: Callable[[str], None] | None = None,
             stopping: Callable[[], bool] = lambda: False) -> None:
    """Run every check of task ``task_id`` (see the module docstring). Never raises for a
    failing check; a failure outside the checks marks the task FAILED, and so does
    ``stopping()`` turning true (Bastion shutting down: unfinished checks CANCELED)."""
    with store.transaction(readonly=True) as uow:
        task = uow.audit.get_task(task_id)
    if task is None or task.status != AuditTaskStatus.IN_PROGRESS:
        return
    start = task.start_time
    task_type = AuditTaskType(task.task_type)
    details = {name: CheckDetails.from_json(value) for name, value in task.check_details.items()}

    def canceled() -> bool:
        if stopping():
            return True
        with store.transaction(readonly=True) as uow:
            current = uow.audit.get_task(task_id)
        return current is None or current.status != AuditTaskStatus.IN_PROGRESS

    try:
        with store.transaction(readonly=True) as uow:
            suppressions = uow.audit.active_suppressions(start)
        suppressed_by_check: dict[str, set[str]] = {}
        for item in suppressions:
            suppressed_by_check.setdefault(item.check_name, set()).add(item.resource_key)
        for check_name in task.check_names:
            if stopping():
                _abandon(store, task_id, details, clock)
                return
            if canceled():
                return
            spec = CHECKS[check_name]
            ctx = CheckContext(spec, start, task_type, previous_run,
                               configurations.get(check_name, {}), fleet, canceled)
            details[check_name] = _run_check(store, task_id, spec, ctx, clock,
                                             suppressed_by_check.get(check_name, set()))
            if stopping():  # the check may have stopped half-way
                details[check_name] = CheckDetails(CheckRunStatus.IN_PROGRESS)
                _abandon(store, task_id, details, clock)
                return
            with store.transaction() as uow:
                if not uow.audit.update_task(
                        task_id, check_details={k: v.as_json() for k, v in details.items()},
                        only_if_status=AuditTaskStatus.IN_PROGRESS):
                    return
        with store.transaction() as uow:
            finished = uow.audit.update_task(task_id, status=AuditTaskStatus.COMPLETED,
                                              end_time=clock.now(),
                                              only_if_status=AuditTaskStatus.IN_PROGRESS)
    except Exception:
        log.exception("audit task %s failed", task_id)
        with store.transaction() as uow:
            finished = uow.audit.update_task(task_id, status=AuditTaskStatus.FAILED,
                                              end_time=clock.now(),
                                              only_if_status=AuditTaskStatus.IN_PROGRESS)
    if finished and on_finished is not None:
        try:
            on_finished(task_id)
        except Exception:
            log.exception("audit task %s: notifying its completion failed", task_id)


def _abandon(store: Store, task_id: str, details: dict[str, CheckDetails],
             clock: Clock) -> None:
    """Bastion is stopping: the task fails, its unfinished checks are canceled."""
    for name, value in details.items():
        if value.run_status is CheckRunStatus.IN_PROGRESS:
            details[name] = CheckDetails(CheckRunStatus.CANCELED,
                                         message="Bastion stopped during the audit")
    with store.transaction() as uow:
        uow.audit.update_task(task_id, status=AuditTaskStatus.FAILED, end_time=clock.now(),
                              check_details={k: v.as_json() for k, v in details.items()},
                              only_if_status=AuditTaskStatus.IN_PROGRESS)
    log.warning("audit task %s abandoned: Bastion is stopping", task_id)


def _run_check(store: Store, task_id: str, spec: CheckSpec, ctx: CheckContext,
               clock: Clock, suppressed: set[str]) -> CheckDetails:
    function = CHECK_FUNCTIONS.get(spec.name.value)
    if function is None:  # no such resources in Bastion (Cognito, role aliases)
        return CheckDetails(CheckRunStatus.COMPLETED_COMPLIANT, True, 0, 0, 0)
    try:
        outcome: CheckOutcome = function(ctx)
    except Exception as error:
        log.exception("audit task %s: check %s failed", task_id, spec.name.value)
        return CheckDetails(CheckRunStatus.FAILED, error_code="CHECK_FAILED",
                            message=f"{type(error).__name__}: {error}"[:1000])
    found_at = clock.now()
    rows = list(finding_rows(task_id, spec, ctx.now, found_at, outcome.findings, suppressed))
    for chunk in _chunks(rows, FINDING_BATCH):
        with store.transaction() as uow:
            uow.audit.insert_findings(chunk)
    resources = {row.resource_key for row in rows}
    hidden = {row.resource_key for row in rows if row.is_suppressed}
    open_count = len(resources - hidden)
    status = (CheckRunStatus.COMPLETED_NON_COMPLIANT if open_count
              else CheckRunStatus.COMPLETED_COMPLIANT)
    return CheckDetails(status, open_count == 0, max(outcome.total_resources, len(resources)),
                        len(resources), len(hidden))
