"""AuditService: the account's audit configuration, on-demand and scheduled audit tasks,
findings and related resources, and suppressions — AWS's audit API as domain calls.

Tasks run in the service's executor (one worker thread by default; tests pass one that
runs inline); :meth:`AuditService.run_due` starts the scheduled audits whose time has
come and is what the scheduler (:mod:`._scheduler`) calls.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.logging_options import LoggingControl
from bastion.rotation import CertificateLimits
from bastion.store import (
    AuditConfigurationRow,
    AuditFindingRow,
    AuditSuppressionRow,
    AuditTaskRow,
    ConflictError,
    InvalidPageTokenError,
    ScheduledAuditRow,
    Store,
)

from .._errors import (
    InvalidRequestError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from ._catalog import CHECKS, CheckSpec
from ._crl import CrlRegistry
from ._fleet import StoreFleet
from ._keys import KeyQualityAssessor, WeakKeyLists
from ._model import (
    AccountAuditConfiguration,
    AuditFrequency,
    AuditTask,
    AuditTaskStatus,
    AuditTaskType,
    CheckConfiguration,
    CheckDetails,
    CheckRunStatus,
    DayOfWeek,
    Finding,
    NotificationTarget,
    Resource,
    ResourceIdentifier,
    ScheduledAudit,
    Severity,
    Suppression,
)
from ._runner import run_task
from ._schedule import DEFAULT_RUN_AT, next_run

log = logging.getLogger("bastion.defender.audit")

Executor = Callable[[Callable[[], None]], None]

MAX_PAGE: Final = 250
DEFAULT_PAGE: Final = 100
SNS: Final = "SNS"
_SCHEDULED_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_TASK_ID: Final = re.compile(r"[a-zA-Z0-9-]{1,40}")


class Notifier(Protocol):
    """Where audit notifications go (Bastion's alert targets, named by SNS-style ARNs)."""

    def target_exists(self, target_arn: str) -> bool: ...

    def notify(self, target_arn: str, subject: str, message: Mapping[str, Any]) -> None:
        """Queue a notification (never blocks on delivery)."""
        ...


class _ThreadExecutor:
    """One worker thread: audits run one at a time, off the caller's thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bastion-audit")

    def __call__(self, job: Callable[[], None]) -> None:
        self._pool.submit(job)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _page_size(max_results: int | None) -> int:
    size = DEFAULT_PAGE if max_results is None else max_results
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE:
        raise InvalidRequestError(f"maxResults must be between 1 and {MAX_PAGE}")
    return size


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidRequestError(f"{what} must be a timestamp")
    return moment.astimezone(UTC)


class AuditService:
    """Device Defender audit for one store.

    :param account: region and account of ARNs (scheduled audits) and findings.
    :param crls: the CRL sources (revocation checks).
    :param key_lists: the operator's compromised-key lists (key-quality checks).
    :param logging: the IoT logging options (LOGGING_DISABLED_CHECK).
    :param notifier: where audit completion notifications go.
    :param executor: runs audit tasks; default: one worker thread.
    :param clock: the current time; the scheduler's clock in ``bastion serve``.
    """

    def __init__(self, store: Store, *, account: Account, crls: CrlRegistry,
                 logging: LoggingControl, key_lists: WeakKeyLists | None = None,
                 notifier: Notifier | None = None, executor: Executor | None = None,
                 clock: Clock | None = None) -> None:
        self._store = store
        self._account = account
        self.crls = crls
        self._logging = logging
        self._key_lists = key_lists or WeakKeyLists()
        self._notifier = notifier
        self._own_executor = _ThreadExecutor() if executor is None else None
        self._executor: Executor = executor or self._own_executor  # type: ignore[assignment]
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._stopping = threading.Event()
        self.schedule_changed: Callable[[], None] = lambda: None
        self._runs: dict[tuple[str, str], int] = {}
        self._runs_lock = threading.Lock()
        self.certificate_limits: Callable[[], CertificateLimits] | None = None
        """Reads the rotation policies the certificate age and expiry checks report
        against (set by :func:`bastion.services.build_services`; ``None``: the checks'
        own thresholds only)."""

    @property
    def account(self) -> Account:
        return self._account

    def runs(self) -> dict[tuple[str, str], int]:
        """Audit tasks this process finished, by ``(task type, task status)`` (a copy;
        ``/metrics`` reads it)."""
        with self._runs_lock:
            return dict(self._runs)

    @property
    def executor(self) -> Executor:
        """Where audit work runs (mitigation tasks share it)."""
        return self._executor

    def close(self) -> None:
        """Stop the worker thread. A running task stops after its current check and is
        marked FAILED (its unfinished checks CANCELED); queued tasks do not start."""
        self._stopping.set()
        if self._own_executor is not None:
            self._own_executor.shutdown()

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.utcoffset() is None:
            raise ValueError("the clock returned a naive datetime")
        return now.astimezone(UTC)

    # -- account configuration ----------------------------------------------------------

    def describe_account_audit_configuration(self) -> AccountAuditConfiguration:
        """DescribeAccountAuditConfiguration: every check with its state (defaults until
        an operator changes them)."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.audit.configuration()
        return self._configuration(row)

    def _configuration(self, row: AuditConfigurationRow | None) -> AccountAuditConfiguration:
        stored: Mapping[str, Any] = row.check_configurations if row else {}
        checks: dict[str, CheckConfiguration] = {}
        for name, spec in CHECKS.items():
            entry = stored.get(name) or {}
            enabled = bool(entry.get("enabled", spec.enabled_by_default))
            values = {s.name.value: str(s.default) for s in spec.settings}
            values.update({k: str(v) for k, v in (entry.get("configuration") or {}).items()})
            checks[name] = CheckConfiguration(enabled, values)
        targets = {
            kind: NotificationTarget(value.get("targetArn"), value.get("roleArn"),
                                     bool(value.get("enabled", False)))
            for kind, value in (row.notification_targets if row else {}).items()
        }
        return AccountAuditConfiguration(row.role_arn if row else None, targets, checks)

    def update_account_audit_configuration(
            self, *, role_arn: str | None = None,
            notification_targets: Mapping[str, Mapping[str, Any]] | None = None,
            check_configurations: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """UpdateAccountAuditConfiguration.

        :raises InvalidRequestError: an unknown check or setting, a threshold out of
            range, an unknown notification target, disabling a check a scheduled audit
            uses, or no check left enabled.
        """
        with self._store.transaction() as uow:
            row = uow.audit.configuration()
            stored = {k: dict(v) for k, v in (row.check_configurations if row else {}).items()}
            targets = dict(row.notification_targets) if row else {}
            for name, entry in (check_configurations or {}).items():
                spec = CHECKS.get(name)
                if spec is None:
                    raise InvalidRequestError(f"{name} is not a valid audit check name")
                stored[name] = self._check_entry(spec, entry, stored.get(name) or {})
            for kind, value in (notification_targets or {}).items():
                if kind != SNS:
                    raise InvalidRequestError(f"{kind} is not a notification target type; "
                                              "use SNS")
                target = {"targetArn": value.get("targetArn"), "roleArn": value.get("roleArn"),
                          "enabled": bool(value.get("enabled", False))}
                if target["enabled"]:
                    arn = target["targetArn"]
                    if not isinstance(arn, str) or self._notifier is None \
                            or not self._notifier.target_exists(arn):
                        raise InvalidRequestError(
                            f"The notification target {arn} is not a Bastion alert target "
                            "(arn:aws:sns:<region>:<account>:<alert target name>)")
                targets[kind] = target
            config = self._configuration(AuditConfigurationRow(
                role_arn if role_arn is not None else (row.role_arn if row else None),
                targets, stored, self._now()))
            if not any(c.enabled for c in config.checks.values()):
                raise InvalidRequestError("At least one audit check must be enabled")
            for scheduled in uow.audit.scheduled_audits():
                off = [c for c in scheduled.check_names if not config.checks[c].enabled]
                if off:
                    raise InvalidRequestError(
                        f"Scheduled audit {scheduled.name} uses {', '.join(off)}; it cannot "
                        "be disabled")
            uow.audit.put_configuration(AuditConfigurationRow(
                config.role_arn, targets, stored, self._now()))

    @staticmethod
    def _check_entry(spec: CheckSpec, entry: Mapping[str, Any],
                     current: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = dict(current)
        if entry.get("enabled") is not None:
            result["enabled"] = bool(entry["enabled"])
        values = entry.get("configuration")
        if values:
            allowed = {s.name.value: s for s in spec.settings}
            config = dict(result.get("configuration") or {})
            for key, raw in values.items():
                setting = allowed.get(key)
                if setting is None:
                    raise InvalidRequestError(
                        f"{key} is not a configuration of {spec.name.value}")
                text = str(raw)
                if not text.isdigit() or not setting.minimum <= int(text) <= setting.maximum:
                    raise InvalidRequestError(
                        f"{key} must be a number of days between {setting.minimum} and "
                        f"{setting.maximum}")
                config[key] = text
            result["configuration"] = config
        return result

    def delete_account_audit_configuration(self, *, delete_scheduled_audits: bool = False
                                           ) -> None:
        """DeleteAccountAuditConfiguration: back to the defaults.

        :raises InvalidRequestError: scheduled audits exist and are not to be deleted.
        """
        with self._store.transaction() as uow:
            if uow.audit.scheduled_audits():
                if not delete_scheduled_audits:
                    raise InvalidRequestError(
                        "Scheduled audits exist; pass deleteScheduledAudits to delete them")
                uow.audit.delete_all_scheduled_audits()
            uow.audit.delete_configuration()
        self.schedule_changed()

    def _enabled_checks(self, names: Sequence[str]) -> list[str]:
        if not names:
            raise InvalidRequestError("targetCheckNames must name at least one check")
        config = self.describe_account_audit_configuration()
        result: list[str] = []
        for name in names:
            if name not in CHECKS:
                raise InvalidRequestError(f"{name} is not a valid audit check name")
            if not config.checks[name].enabled:
                raise InvalidRequestError(f"{name} is not enabled for this account; enable "
                                          "it with UpdateAccountAuditConfiguration")
            if name not in result:
                result.append(name)
        return result

    # -- tasks -------------------------------------------------------------------------

    def start_on_demand_audit_task(self, target_check_names: Sequence[str]) -> str:
        """StartOnDemandAuditTask: the task id; the audit runs in the background.

        :raises InvalidRequestError: no check, or an unknown or disabled one.
        """
        checks = self._enabled_checks(list(target_check_names))
        return self._start(AuditTaskType.ON_DEMAND_AUDIT_TASK, checks, None, None)

    def _start(self, task_type: AuditTaskType, checks: list[str], scheduled: str | None,
               previous_run: datetime | None) -> str:
        task_id = uuid.uuid4().hex
        start = self._now()
        details = {name: CheckDetails(CheckRunStatus.IN_PROGRESS).as_json() for name in checks}
        with self._store.transaction() as uow:
            uow.audit.insert_task(AuditTaskRow(task_id, task_type.value,
                                               AuditTaskStatus.IN_PROGRESS.value, start, None,
                                               scheduled, checks, details))
        config = self.describe_account_audit_configuration()
        configurations = {name: dict(config.checks[name].configuration) for name in checks}
        fleet = StoreFleet(self._store, self._account, revocations=self.crls.index,
                           assessor=KeyQualityAssessor(self._key_lists),
                           logging_state=self._logging.state,
                           certificate_limits=self.certificate_limits)

        def job() -> None:
            run_task(self._store, self._account, task_id=task_id, fleet=fleet,
                     clock=self._clock, previous_run=previous_run,
                     configurations=configurations, on_finished=self._finished,
                     stopping=self._stopping.is_set)

        log.info("audit task %s (%s) started: %s", task_id, task_type.value, ", ".join(checks))
        self._executor(job)
        return task_id

    def describe_audit_task(self, task_id: str) -> AuditTask:
        """:raises ResourceNotFoundError: no such task."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.audit.get_task(task_id)
        if row is None:
            raise ResourceNotFoundError(f"Audit task {task_id} does not exist")
        return _task(row)

    def list_audit_tasks(self, *, start_time: datetime, end_time: datetime,
                         task_type: str | None = None, task_status: str | None = None,
                         max_results: int | None = None, next_token: str | None = None
                         ) -> tuple[list[AuditTask], str | None]:
        """ListAuditTasks: tasks started between the two times, newest first."""
        since, until = _aware(start_time, "startTime"), _aware(end_time, "endTime")
        if task_type is not None and task_type not in AuditTaskType.__members__:
            raise InvalidRequestError(f"taskType {task_type!r} is not valid")
        if task_status is not None and task_status not in AuditTaskStatus.__members__:
            raise InvalidRequestError(f"taskStatus {task_status!r} is not valid")
        limit = _page_size(max_results)
        with self._store.transaction(readonly=True) as uow, _token():
            rows, token = uow.audit.tasks_page(since=since, until=until, task_type=task_type,
                                               status=task_status, limit=limit,
                                               token=next_token)
        return [_task(row) for row in rows], token

    def cancel_audit_task(self, task_id: str) -> None:
        """CancelAuditTask: checks not finished yet become CANCELED.

        :raises ResourceNotFoundError: no such task.
        :raises InvalidRequestError: the task is not IN_PROGRESS.
        """
        with self._store.transaction() as uow:
            row = uow.audit.get_task(task_id)
            if row is None:
                raise ResourceNotFoundError(f"Audit task {task_id} does not exist")
            if row.status != AuditTaskStatus.IN_PROGRESS:
                raise InvalidRequestError(f"Audit task {task_id} is {row.status}; only a task "
                                          "IN_PROGRESS can be canceled")
            details = dict(row.check_details)
            for name, value in details.items():
                if value.get("checkRunStatus") in (CheckRunStatus.IN_PROGRESS,
                                                   CheckRunStatus.WAITING_FOR_DATA_COLLECTION):
                    details[name] = CheckDetails(CheckRunStatus.CANCELED).as_json()
            uow.audit.update_task(task_id, status=AuditTaskStatus.CANCELED,
                                  end_time=self._now(), check_details=details,
                                  only_if_status=AuditTaskStatus.IN_PROGRESS)

    def _finished(self, task_id: str) -> None:
        finished = self.describe_audit_task(task_id)
        key = (finished.task_type.value, finished.status.value)
        with self._runs_lock:
            self._runs[key] = self._runs.get(key, 0) + 1
        config = self.describe_account_audit_configuration()
        target = config.notification_targets.get(SNS)
        if target is None or not target.enabled or not target.target_arn \
                or self._notifier is None:
            return
        task = self.describe_audit_task(task_id)
        stats = task.statistics
        message = {
            "accountId": self._account.account_id,
            "taskId": task.task_id,
            "taskStatus": task.status.value,
            "taskType": task.task_type.value,
            "scheduledAuditName": task.scheduled_audit_name,
            "failedChecksCount": stats.failed_checks,
            "canceledChecksCount": stats.canceled_checks,
            "nonCompliantChecksCount": stats.non_compliant_checks,
            "compliantChecksCount": stats.compliant_checks,
            "totalChecksCount": stats.total_checks,
            "taskStartTime": int(task.start_time.timestamp() * 1000),
            "auditDetails": [
                {"checkName": name, "checkRunStatus": d.run_status.value,
                 "nonCompliantResourcesCount": d.non_compliant_resources or 0,
                 "suppressedNonCompliantResourceCount":
                     d.suppressed_non_compliant_resources or 0,
                 "totalResourcesCount": d.total_resources or 0}
                for name, d in task.details.items()],
        }
        subject = (f"Bastion audit {task.task_id}: {stats.non_compliant_checks} of "
                   f"{stats.total_checks} checks non-compliant")
        self._notifier.notify(target.target_arn, subject, message)

    # -- findings ----------------------------------------------------------------------

    def list_audit_findings(self, *, task_id: str | None = None, check_name: str | None = None,
                            resource_identifier: Mapping[str, Any] | None = None,
                            start_time: datetime | None = None,
                            end_time: datetime | None = None,
                            list_suppressed_findings: bool | None = None,
                            max_results: int | None = None, next_token: str | None = None
                            ) -> tuple[list[Finding], str | None]:
        """ListAuditFindings: by task, or by check name and time range.

        :raises InvalidRequestError: neither a task id nor a time range, both, a resource
            identifier without a check name, or a bad page token.
        """
        if task_id is None and (start_time is None or end_time is None):
            raise InvalidRequestError("Specify either taskId or both startTime and endTime")
        if task_id is not None and (start_time is not None or end_time is not None):
            raise InvalidRequestError("Specify either taskId or startTime and endTime, not "
                                      "both")
        if resource_identifier is not None and check_name is None:
            raise InvalidRequestError("resourceIdentifier needs a checkName")
        key = None if resource_identifier is None else _identifier(resource_identifier).key
        limit = _page_size(max_results)
        with self._store.transaction(readonly=True) as uow, _token():
            rows, token = uow.audit.findings_page(
                task_id=task_id, check_name=check_name, resource_key=key,
                since=None if start_time is None else _aware(start_time, "startTime"),
                until=None if end_time is None else _aware(end_time, "endTime"),
                suppressed=list_suppressed_findings, limit=limit, token=next_token)
        return [finding_of(row) for row in rows], token

    def describe_audit_finding(self, finding_id: str) -> Finding:
        """:raises ResourceNotFoundError: no such finding."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.audit.get_finding(finding_id)
        if row is None:
            raise ResourceNotFoundError(f"Audit finding {finding_id} does not exist")
        return finding_of(row)

    def list_related_resources_for_audit_finding(
            self, finding_id: str, *, max_results: int | None = None,
            next_token: str | None = None) -> tuple[list[Resource], str | None]:
        """ListRelatedResourcesForAuditFinding (pages by position in the finding).

        :raises ResourceNotFoundError: no such finding.
        :raises InvalidRequestError: a bad token.
        """
        related = self.describe_audit_finding(finding_id).related_resources
        limit = _page_size(max_results)
        start = 0
        if next_token is not None:
            if not next_token.isdigit() or int(next_token) > len(related):
                raise InvalidRequestError("The nextToken is not valid")
            start = int(next_token)
        end = start + limit
        return list(related[start:end]), (str(end) if end < len(related) else None)

    # -- suppressions ------------------------------------------------------------------

    def _suppression_key(self, check_name: str, identifier: Mapping[str, Any]
                         ) -> tuple[ResourceIdentifier, str]:
        if check_name not in CHECKS:
            raise InvalidRequestError(f"{check_name} is not a valid audit check name")
        ident = _identifier(identifier)
        return ident, ident.key

    def create_audit_suppression(self, check_name: str, resource_identifier: Mapping[str, Any],
                                 *, expiration_date: datetime | None = None,
                                 suppress_indefinitely: bool | None = None,
                                 description: str | None = None) -> None:
        """CreateAuditSuppression.

        :raises InvalidRequestError: unknown check, no or past expiry.
        :raises ResourceAlreadyExistsError: this check and resource are suppressed already.
        """
        ident, key = self._suppression_key(check_name, resource_identifier)
        expires = self._expiry(expiration_date, suppress_indefinitely)
        row = AuditSuppressionRow(check_name, key, ident.as_json(), expires,
                                  bool(suppress_indefinitely), description, self._now())
        try:
            with self._store.transaction() as uow:
                uow.audit.insert_suppression(row)
        except ConflictError:
            raise ResourceAlreadyExistsError(
                f"A suppression of {check_name} for this resource already exists") from None

    def _expiry(self, expiration_date: datetime | None,
                suppress_indefinitely: bool | None) -> datetime | None:
        if suppress_indefinitely:
            if expiration_date is not None:
                raise InvalidRequestError("Give either expirationDate or "
                                          "suppressIndefinitely, not both")
            return None
        if expiration_date is None:
            raise InvalidRequestError("Give an expirationDate or suppressIndefinitely")
        expires = _aware(expiration_date, "expirationDate")
        if expires <= self._now():
            raise InvalidRequestError("expirationDate must be in the future")
        return expires

    def describe_audit_suppression(self, check_name: str,
                                   resource_identifier: Mapping[str, Any]) -> Suppression:
        """:raises ResourceNotFoundError: no such suppression."""
        _, key = self._suppression_key(check_name, resource_identifier)
        with self._store.transaction(readonly=True) as uow:
            row = uow.audit.get_suppression(check_name, key)
        if row is None:
            raise ResourceNotFoundError(f"No suppression of {check_name} for this resource")
        return _suppression(row)

    def update_audit_suppression(self, check_name: str, resource_identifier: Mapping[str, Any],
                                 *, expiration_date: datetime | None = None,
                                 suppress_indefinitely: bool | None = None,
                                 description: str | None = None) -> None:
        """:raises ResourceNotFoundError: no such suppression."""
        current = self.describe_audit_suppression(check_name, resource_identifier)
        if expiration_date is None and suppress_indefinitely is None:
            expires = current.expiration_date
            forever = current.suppress_indefinitely
        else:
            forever = bool(suppress_indefinitely)
            expires = self._expiry(expiration_date, suppress_indefinitely)
        with self._store.transaction() as uow:
            uow.audit.update_suppression(
                check_name, current.identifier.key, expiration_date=expires,
                suppress_indefinitely=forever,
                description=current.description if description is None else description)

    def delete_audit_suppression(self, check_name: str,
                                 resource_identifier: Mapping[str, Any]) -> None:
        """:raises ResourceNotFoundError: no such suppression."""
        _, key = self._suppression_key(check_name, resource_identifier)
        with self._store.transaction() as uow:
            if not uow.audit.delete_suppression(check_name, key):
                raise ResourceNotFoundError(f"No suppression of {check_name} for this "
                                            "resource")

    def list_audit_suppressions(self, *, check_name: str | None = None,
                                resource_identifier: Mapping[str, Any] | None = None,
                                ascending_order: bool = True, max_results: int | None = None,
                                next_token: str | None = None
                                ) -> tuple[list[Suppression], str | None]:
        key = None if resource_identifier is None else _identifier(resource_identifier).key
        limit = _page_size(max_results)
        with self._store.transaction(readonly=True) as uow, _token():
            rows, token = uow.audit.suppressions_page(
                check_name=check_name, resource_key=key, ascending=ascending_order,
                limit=limit, token=next_token)
        return [_suppression(row) for row in rows], token

    # -- scheduled audits --------------------------------------------------------------

    def scheduled_audit_arn(self, name: str) -> str:
        return self._account.arn(f"scheduledaudit/{name}")

    def _schedule_values(self, frequency: str, day_of_week: str | None,
                         day_of_month: str | None
                         ) -> tuple[AuditFrequency, DayOfWeek | None, str | None]:
        if frequency not in AuditFrequency.__members__:
            raise InvalidRequestError(f"frequency {frequency!r} must be one of "
                                      + ", ".join(AuditFrequency))
        kind = AuditFrequency(frequency)
        dow: DayOfWeek | None = None
        if kind in (AuditFrequency.WEEKLY, AuditFrequency.BIWEEKLY):
            if day_of_week not in DayOfWeek.__members__:
                raise InvalidRequestError(f"{kind} audits need a dayOfWeek (SUN..SAT)")
            dow = DayOfWeek(str(day_of_week))
        elif day_of_week is not None:
            raise InvalidRequestError(f"dayOfWeek does not apply to {kind} audits")
        if kind is AuditFrequency.MONTHLY:
            if day_of_month is None or not (
                    day_of_month == "LAST"
                    or (day_of_month.isdigit() and 1 <= int(day_of_month) <= 31)):
                raise InvalidRequestError("MONTHLY audits need a dayOfMonth: 1-31 or LAST")
        elif day_of_month is not None:
            raise InvalidRequestError(f"dayOfMonth does not apply to {kind} audits")
        return kind, dow, day_of_month

    def create_scheduled_audit(self, name: str, *, frequency: str,
                               target_check_names: Sequence[str],
                               day_of_week: str | None = None,
                               day_of_month: str | None = None) -> ScheduledAudit:
        """CreateScheduledAudit.

        :raises InvalidRequestError: a bad name, frequency, day or check.
        :raises ResourceAlreadyExistsError: the name is taken.
        """
        if not isinstance(name, str) or not _SCHEDULED_NAME.fullmatch(name):
            raise InvalidRequestError("scheduledAuditName must be 1-128 characters of "
                                      "a-z A-Z 0-9 _ -")
        kind, dow, dom = self._schedule_values(frequency, day_of_week, day_of_month)
        checks = self._enabled_checks(list(target_check_names))
        now = self._now()
        row = ScheduledAuditRow(name, kind.value, None if dow is None else dow.value, dom,
                                checks, now, now, None,
                                next_run(kind, after=now, day_of_week=dow, day_of_month=dom))
        try:
            with self._store.transaction() as uow:
                uow.audit.insert_scheduled_audit(row)
        except ConflictError:
            raise ResourceAlreadyExistsError(f"Scheduled audit {name} already exists") from None
        self.schedule_changed()
        return self._scheduled(row)

    def describe_scheduled_audit(self, name: str) -> ScheduledAudit:
        """:raises ResourceNotFoundError: no such scheduled audit."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.audit.get_scheduled_audit(name)
        if row is None:
            raise ResourceNotFoundError(f"Scheduled audit {name} does not exist")
        return self._scheduled(row)

    def update_scheduled_audit(self, name: str, *, frequency: str | None = None,
                               day_of_week: str | None = None, day_of_month: str | None = None,
                               target_check_names: Sequence[str] | None = None
                               ) -> ScheduledAudit:
        """UpdateScheduledAudit (the next run is recomputed when the timing changes).

        :raises ResourceNotFoundError: no such scheduled audit.
        :raises InvalidRequestError: bad values.
        """
        current = self.describe_scheduled_audit(name)
        new_frequency = frequency or current.frequency.value
        timing_changed = frequency is not None or day_of_week is not None \
            or day_of_month is not None
        if frequency is not None and frequency != current.frequency.value:
            dow_text, dom_text = day_of_week, day_of_month
        else:
            dow_text = day_of_week if day_of_week is not None else (
                None if current.day_of_week is None else current.day_of_week.value)
            dom_text = day_of_month if day_of_month is not None else current.day_of_month
        kind, dow, dom = self._schedule_values(new_frequency, dow_text, dom_text)
        checks = (list(current.check_names) if target_check_names is None
                  else self._enabled_checks(list(target_check_names)))
        now = self._now()
        with self._store.transaction() as uow:
            row = uow.audit.get_scheduled_audit(name, for_update=True)
            if row is None:
                raise ResourceNotFoundError(f"Scheduled audit {name} does not exist")
            upcoming = (next_run(kind, after=now, day_of_week=dow, day_of_month=dom)
                        if timing_changed else row.next_run_time)
            row = replace(row, frequency=kind.value,
                          day_of_week=None if dow is None else dow.value, day_of_month=dom,
                          check_names=checks, last_modified_date=now, next_run_time=upcoming)
            uow.audit.update_scheduled_audit(row)
        self.schedule_changed()
        return self._scheduled(row)

    def delete_scheduled_audit(self, name: str) -> None:
        """:raises ResourceNotFoundError: no such scheduled audit."""
        with self._store.transaction() as uow:
            if not uow.audit.delete_scheduled_audit(name):
                raise ResourceNotFoundError(f"Scheduled audit {name} does not exist")
        self.schedule_changed()

    def list_scheduled_audits(self, *, max_results: int | None = None,
                              next_token: str | None = None
                              ) -> tuple[list[ScheduledAudit], str | None]:
        limit = _page_size(max_results)
        with self._store.transaction(readonly=True) as uow, _token():
            rows, token = uow.audit.scheduled_audits_page(limit=limit, token=next_token)
        return [self._scheduled(row) for row in rows], token

    def next_scheduled_run(self) -> datetime | None:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit.next_scheduled_run()

    def run_due(self, now: datetime | None = None) -> list[str]:
        """Start every scheduled audit whose run time has come; the ids of the tasks
        started. Each run is claimed with a compare-and-set, so several nodes sharing a
        database start it once."""
        moment = self._now() if now is None else _aware(now, "now")
        with self._store.transaction(readonly=True) as uow:
            due = uow.audit.due_scheduled_audits(moment)
        started: list[str] = []
        for row in due:
            kind = AuditFrequency(row.frequency)
            dow = None if row.day_of_week is None else DayOfWeek(row.day_of_week)
            upcoming = next_run(kind, after=moment, day_of_week=dow,
                                day_of_month=row.day_of_month, previous=row.next_run_time,
                                run_at=DEFAULT_RUN_AT)
            with self._store.transaction() as uow:
                claimed = uow.audit.claim_scheduled_run(row.name, row.next_run_time, moment,
                                                        upcoming)
            if not claimed:
                continue
            config = self.describe_account_audit_configuration()
            checks = [c for c in row.check_names if config.checks[c].enabled]
            if not checks:
                log.warning("scheduled audit %s has no enabled check; skipped", row.name)
                continue
            started.append(self._start(AuditTaskType.SCHEDULED_AUDIT_TASK, checks, row.name,
                                       row.last_run_time))
        return started

    def _scheduled(self, row: ScheduledAuditRow) -> ScheduledAudit:
        return ScheduledAudit(row.name, self.scheduled_audit_arn(row.name),
                              AuditFrequency(row.frequency),
                              None if row.day_of_week is None else DayOfWeek(row.day_of_week),
                              row.day_of_month, tuple(row.check_names), row.next_run_time,
                              row.last_run_time)


@contextmanager
def _token() -> Iterator[None]:
    """A foreign or malformed page token is an InvalidRequestException."""
    try:
        yield
    except InvalidPageTokenError:
        raise InvalidRequestError("The nextToken is not valid") from None


def _identifier(value: Mapping[str, Any]) -> ResourceIdentifier:
    try:
        return ResourceIdentifier.from_json(value)
    except ValueError as error:
        raise InvalidRequestError(str(error)) from None


def _task(row: AuditTaskRow) -> AuditTask:
    return AuditTask(row.task_id, AuditTaskType(row.task_type), AuditTaskStatus(row.status),
                     row.start_time, row.end_time, row.scheduled_audit_name,
                     {name: CheckDetails.from_json(value)
                      for name, value in row.check_details.items()})


def finding_of(row: AuditFindingRow) -> Finding:
    return Finding(row.finding_id, row.task_id, row.check_name, row.task_start_time,
                   row.finding_time, Severity(row.severity),
                   Resource.from_json(row.non_compliant_resource),
                   tuple(Resource.from_json(r) for r in row.related_resources), row.reason,
                   row.reason_code, row.is_suppressed)


def _suppression(row: AuditSuppressionRow) -> Suppression:
    return Suppression(row.check_name, ResourceIdentifier(row.resource_identifier),
                       row.expiration_date, row.suppress_indefinitely, row.description)
