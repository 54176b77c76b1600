"""Repositories of Device Defender audit: configuration, tasks, findings, scheduled
audits, suppressions, mitigation tasks and executions, CRL sources, mitigation actions,
and the bulk reads of the registry that the audit checks run on.

Structured values (check configurations, per-check details, resources of a finding,
mitigation targets) are JSON columns: the audit service owns their shape, the store only
keeps them. Findings and suppressions are matched on ``resource_key``, a SHA-256 of the
resource identifier's canonical JSON computed by the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from ._errors import ConflictError
from ._pages import keyset_page
from ._rows import CaCertificateRow, CertificateRow
from ._schema import (
    audit_account_configuration,
    audit_crls,
    audit_findings,
    audit_mitigation_executions,
    audit_mitigation_tasks,
    audit_scheduled_audits,
    audit_suppressions,
    audit_tasks,
    ca_certificates,
    certificates,
    connection_sessions,
    mitigation_actions,
    policies,
    policy_versions,
    resource_tags,
    thing_principals,
)
from ._sql import count, execute_write
from ._tags import delete_tags_of

ACCOUNT_ROW: Final = "account"
DUPLICATE_CLIENTID: Final = "DUPLICATE_CLIENTID"


# -- rows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditConfigurationRow:
    role_arn: str | None
    notification_targets: Mapping[str, Any]
    check_configurations: Mapping[str, Any]
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class AuditTaskRow:
    task_id: str
    task_type: str
    status: str
    start_time: datetime
    end_time: datetime | None
    scheduled_audit_name: str | None
    check_names: Sequence[str]
    check_details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AuditFindingRow:
    finding_id: str
    task_id: str
    check_name: str
    task_start_time: datetime
    finding_time: datetime
    severity: str
    resource_type: str
    resource_key: str
    non_compliant_resource: Mapping[str, Any]
    related_resources: Sequence[Mapping[str, Any]]
    reason: str
    reason_code: str
    is_suppressed: bool


@dataclass(frozen=True, slots=True)
class ScheduledAuditRow:
    name: str
    frequency: str
    day_of_week: str | None
    day_of_month: str | None
    check_names: Sequence[str]
    creation_date: datetime
    last_modified_date: datetime
    last_run_time: datetime | None
    next_run_time: datetime


@dataclass(frozen=True, slots=True)
class AuditSuppressionRow:
    check_name: str
    resource_key: str
    resource_identifier: Mapping[str, Any]
    expiration_date: datetime | None
    suppress_indefinitely: bool
    description: str | None
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class AuditMitigationTaskRow:
    task_id: str
    status: str
    start_time: datetime
    end_time: datetime | None
    target: Mapping[str, Any]
    actions_mapping: Mapping[str, Sequence[str]]
    client_request_token: str | None


@dataclass(frozen=True, slots=True)
class AuditMitigationExecutionRow:
    task_id: str
    finding_id: str
    action_name: str
    action_id: str
    check_name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    error_code: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class CrlRow:
    issuer_certificate_id: str
    issuer_certificate_pem: str
    source: str
    crl_der: bytes | None
    this_update: datetime | None
    next_update: datetime | None
    fetched_at: datetime | None
    last_error: str | None
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class MitigationActionRow:
    name: str
    action_id: str
    action_type: str
    role_arn: str
    params: Mapping[str, Any]
    creation_date: datetime
    last_modified_date: datetime


def _row_values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def _from(kind: type[Any], found: sa.Row[Any]) -> Any:
    mapping = found._mapping
    return kind(**{f.name: mapping[f.name] for f in fields(kind)})


# -- configuration, tasks, findings, schedules, suppressions ------------------------------


class AuditRepository:
    """The audit's own tables (configuration, tasks, findings, scheduled audits,
    suppressions)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- account configuration ----------------------------------------------------------

    def configuration(self) -> AuditConfigurationRow | None:
        found = self._conn.execute(sa.select(audit_account_configuration).where(
            audit_account_configuration.c.id == ACCOUNT_ROW)).first()
        if found is None:
            return None
        return AuditConfigurationRow(found.role_arn, dict(found.notification_targets),
                                     dict(found.check_configurations),
                                     found.last_modified_date)

    def put_configuration(self, row: AuditConfigurationRow) -> None:
        values = {"role_arn": row.role_arn,
                  "notification_targets": dict(row.notification_targets),
                  "check_configurations": dict(row.check_configurations),
                  "last_modified_date": row.last_modified_date}
        t = audit_account_configuration
        updated = self._conn.execute(t.update().where(t.c.id == ACCOUNT_ROW).values(**values))
        if updated.rowcount == 0:
            self._conn.execute(t.insert().values(id=ACCOUNT_ROW, **values))

    def delete_configuration(self) -> bool:
        t = audit_account_configuration
        return self._conn.execute(t.delete().where(t.c.id == ACCOUNT_ROW)).rowcount == 1

    # -- tasks ------------------------------------------------------------------------

    def insert_task(self, row: AuditTaskRow) -> None:
        """:raises ConflictError: the task id is taken."""
        values = _row_values(row)
        values["check_names"] = list(row.check_names)
        values["check_details"] = dict(row.check_details)
        execute_write(self._conn, audit_tasks.insert().values(**values))

    def get_task(self, task_id: str) -> AuditTaskRow | None:
        found = self._conn.execute(
            sa.select(audit_tasks).where(audit_tasks.c.task_id == task_id)).first()
        return None if found is None else _task(found)

    def update_task(self, task_id: str, *, status: str | None = None,
                    end_time: datetime | None = None,
                    check_details: Mapping[str, Any] | None = None,
                    only_if_status: str | None = None) -> bool:
        """Change a task; with ``only_if_status`` only while it has that status (a
        compare-and-set, so a cancel and a finishing run cannot both win)."""
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status
        if end_time is not None:
            values["end_time"] = end_time
        if check_details is not None:
            values["check_details"] = dict(check_details)
        stmt = audit_tasks.update().where(audit_tasks.c.task_id == task_id)
        if only_if_status is not None:
            stmt = stmt.where(audit_tasks.c.status == only_if_status)
        return self._conn.execute(stmt.values(**values)).rowcount == 1

    def tasks_page(self, *, since: datetime, until: datetime, task_type: str | None,
                   status: str | None, limit: int, token: str | None
                   ) -> tuple[list[AuditTaskRow], str | None]:
        """Tasks started in ``[since, until]``, newest first."""
        stmt = sa.select(audit_tasks).where(audit_tasks.c.start_time >= since,
                                            audit_tasks.c.start_time <= until)
        if task_type is not None:
            stmt = stmt.where(audit_tasks.c.task_type == task_type)
        if status is not None:
            stmt = stmt.where(audit_tasks.c.status == status)
        rows, next_token = keyset_page(
            self._conn, stmt, [audit_tasks.c.start_time, audit_tasks.c.task_id],
            kind="audit-tasks", limit=limit, token=token, descending=True)
        return [_task(row) for row in rows], next_token

    def tasks_in_progress(self) -> list[AuditTaskRow]:
        stmt = sa.select(audit_tasks).where(audit_tasks.c.status == "IN_PROGRESS")
        return [_task(row) for row in self._conn.execute(stmt)]

    # -- findings ---------------------------------------------------------------------

    def insert_findings(self, rows: Iterable[AuditFindingRow]) -> int:
        batch = [_finding_values(row) for row in rows]
        if batch:
            execute_write(self._conn, audit_findings.insert(), batch)
        return len(batch)

    def get_finding(self, finding_id: str) -> AuditFindingRow | None:
        found = self._conn.execute(sa.select(audit_findings).where(
            audit_findings.c.finding_id == finding_id)).first()
        return None if found is None else _finding(found)

    def findings_page(self, *, task_id: str | None = None, check_name: str | None = None,
                      resource_key: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, suppressed: bool | None = None,
                      reason_codes: Sequence[str] | None = None, limit: int,
                      token: str | None) -> tuple[list[AuditFindingRow], str | None]:
        """Findings matching every filter given, by finding time then id."""
        t = audit_findings
        stmt = sa.select(t)
        if task_id is not None:
            stmt = stmt.where(t.c.task_id == task_id)
        if check_name is not None:
            stmt = stmt.where(t.c.check_name == check_name)
        if resource_key is not None:
            stmt = stmt.where(t.c.resource_key == resource_key)
        if since is not None:
            stmt = stmt.where(t.c.finding_time >= since)
        if until is not None:
            stmt = stmt.where(t.c.finding_time <= until)
        if suppressed is not None:
            stmt = stmt.where(t.c.is_suppressed == suppressed)
        if reason_codes is not None:
            stmt = stmt.where(t.c.reason_code.in_(list(reason_codes)))
        rows, next_token = keyset_page(self._conn, stmt, [t.c.finding_time, t.c.finding_id],
                                       kind="audit-findings", limit=limit, token=token)
        return [_finding(row) for row in rows], next_token

    def findings_of(self, finding_ids: Sequence[str]) -> list[AuditFindingRow]:
        if not finding_ids:
            return []
        stmt = (sa.select(audit_findings)
                .where(audit_findings.c.finding_id.in_(list(finding_ids)))
                .order_by(audit_findings.c.finding_id))
        return [_finding(row) for row in self._conn.execute(stmt)]

    def count_findings(self, task_id: str) -> int:
        return count(self._conn, sa.select(audit_findings.c.finding_id)
                     .where(audit_findings.c.task_id == task_id))

    # -- scheduled audits ---------------------------------------------------------------

    def insert_scheduled_audit(self, row: ScheduledAuditRow) -> None:
        """:raises ConflictError: the name is taken."""
        values = _row_values(row)
        values["check_names"] = list(row.check_names)
        execute_write(self._conn, audit_scheduled_audits.insert().values(**values))

    def get_scheduled_audit(self, name: str, *, for_update: bool = False
                            ) -> ScheduledAuditRow | None:
        stmt = sa.select(audit_scheduled_audits).where(audit_scheduled_audits.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _scheduled(found)

    def update_scheduled_audit(self, row: ScheduledAuditRow) -> bool:
        values = _row_values(row)
        values["check_names"] = list(row.check_names)
        del values["name"]
        t = audit_scheduled_audits
        return self._conn.execute(
            t.update().where(t.c.name == row.name).values(**values)).rowcount == 1

    def claim_scheduled_run(self, name: str, expected_next: datetime, last_run: datetime,
                            next_run: datetime) -> bool:
        """Move a schedule on to its next run, only if it still expects ``expected_next``
        (so two nodes never start the same run twice)."""
        t = audit_scheduled_audits
        result = self._conn.execute(
            t.update().where(t.c.name == name, t.c.next_run_time == expected_next)
            .values(last_run_time=last_run, next_run_time=next_run))
        return result.rowcount == 1

    def delete_scheduled_audit(self, name: str) -> bool:
        t = audit_scheduled_audits
        delete_tags_of(self._conn, "scheduledaudit", name)
        return self._conn.execute(t.delete().where(t.c.name == name)).rowcount == 1

    def delete_all_scheduled_audits(self) -> int:
        self._conn.execute(resource_tags.delete().where(
            resource_tags.c.resource_type == "scheduledaudit"))
        return int(self._conn.execute(audit_scheduled_audits.delete()).rowcount)

    def scheduled_audits(self) -> list[ScheduledAuditRow]:
        stmt = sa.select(audit_scheduled_audits).order_by(audit_scheduled_audits.c.name)
        return [_scheduled(row) for row in self._conn.execute(stmt)]

    def scheduled_audits_page(self, *, limit: int, token: str | None
                              ) -> tuple[list[ScheduledAuditRow], str | None]:
        rows, next_token = keyset_page(
            self._conn, sa.select(audit_scheduled_audits), [audit_scheduled_audits.c.name],
            kind="scheduled-audits", limit=limit, token=token)
        return [_scheduled(row) for row in rows], next_token

    def due_scheduled_audits(self, now: datetime) -> list[ScheduledAuditRow]:
        t = audit_scheduled_audits
        stmt = sa.select(t).where(t.c.next_run_time <= now).order_by(t.c.next_run_time,
                                                                       t.c.name)
        return [_scheduled(row) for row in self._conn.execute(stmt)]

    def next_scheduled_run(self) -> datetime | None:
        value: datetime | None = self._conn.execute(
            sa.select(sa.func.min(audit_scheduled_audits.c.next_run_time))).scalar_one()
        if value is not None and value.tzinfo is None:  # an aggregate without its type
            value = value.replace(tzinfo=UTC)
        return value

    # -- suppressions -------------------------------------------------------------------

    def insert_suppression(self, row: AuditSuppressionRow) -> None:
        """:raises ConflictError: a suppression for this check and resource exists."""
        values = _row_values(row)
        values["resource_identifier"] = dict(row.resource_identifier)
        execute_write(self._conn, audit_suppressions.insert().values(**values))

    def get_suppression(self, check_name: str, resource_key: str
                        ) -> AuditSuppressionRow | None:
        t = audit_suppressions
        found = self._conn.execute(sa.select(t).where(
            t.c.check_name == check_name, t.c.resource_key == resource_key)).first()
        return None if found is None else _suppression(found)

    def update_suppression(self, check_name: str, resource_key: str, *,
                           expiration_date: datetime | None, suppress_indefinitely: bool,
                           description: str | None) -> bool:
        t = audit_suppressions
        result = self._conn.execute(
            t.update().where(t.c.check_name == check_name, t.c.resource_key == resource_key)
            .values(expiration_date=expiration_date,
                    suppress_indefinitely=suppress_indefinitely, description=description))
        return result.rowcount == 1

    def delete_suppression(self, check_name: str, resource_key: str) -> bool:
        t = audit_suppressions
        return self._conn.execute(t.delete().where(
            t.c.check_name == check_name, t.c.resource_key == resource_key)).rowcount == 1

    def active_suppressions(self, now: datetime, check_name: str | None = None
                            ) -> list[AuditSuppressionRow]:
        """Suppressions in force at ``now`` (indefinite, or expiring after ``now``)."""
        t = audit_suppressions
        stmt = sa.select(t).where(sa.or_(t.c.suppress_indefinitely.is_(True),
                                         t.c.expiration_date > now))
        if check_name is not None:
            stmt = stmt.where(t.c.check_name == check_name)
        return [_suppression(row) for row in self._conn.execute(stmt)]

    def suppressions_page(self, *, check_name: str | None, resource_key: str | None,
                          ascending: bool, limit: int, token: str | None
                          ) -> tuple[list[AuditSuppressionRow], str | None]:
        t = audit_suppressions
        stmt = sa.select(t)
        if check_name is not None:
            stmt = stmt.where(t.c.check_name == check_name)
        if resource_key is not None:
            stmt = stmt.where(t.c.resource_key == resource_key)
        rows, next_token = keyset_page(
            self._conn, stmt, [t.c.check_name, t.c.resource_key],
            kind="audit-suppressions" + ("-asc" if ascending else "-desc"), limit=limit,
            token=token, descending=not ascending)
        return [_suppression(row) for row in rows], next_token


class AuditMitigationRepository:
    """Audit mitigation actions tasks and their executions."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert_task(self, row: AuditMitigationTaskRow) -> None:
        """:raises ConflictError: the task id is taken."""
        values = _row_values(row)
        values["target"] = dict(row.target)
        values["actions_mapping"] = {k: list(v) for k, v in row.actions_mapping.items()}
        execute_write(self._conn, audit_mitigation_tasks.insert().values(**values))

    def get_task(self, task_id: str) -> AuditMitigationTaskRow | None:
        t = audit_mitigation_tasks
        found = self._conn.execute(sa.select(t).where(t.c.task_id == task_id)).first()
        return None if found is None else _mitigation_task(found)

    def update_task(self, task_id: str, *, status: str, end_time: datetime | None = None,
                    only_if_status: str | None = None) -> bool:
        t = audit_mitigation_tasks
        stmt = t.update().where(t.c.task_id == task_id)
        if only_if_status is not None:
            stmt = stmt.where(t.c.status == only_if_status)
        values: dict[str, Any] = {"status": status}
        if end_time is not None:
            values["end_time"] = end_time
        return self._conn.execute(stmt.values(**values)).rowcount == 1

    def tasks_page(self, *, since: datetime, until: datetime, status: str | None,
                   task_ids: Sequence[str] | None, limit: int, token: str | None
                   ) -> tuple[list[AuditMitigationTaskRow], str | None]:
        t = audit_mitigation_tasks
        stmt = sa.select(t).where(t.c.start_time >= since, t.c.start_time <= until)
        if status is not None:
            stmt = stmt.where(t.c.status == status)
        if task_ids is not None:
            stmt = stmt.where(t.c.task_id.in_(list(task_ids)))
        rows, next_token = keyset_page(self._conn, stmt, [t.c.start_time, t.c.task_id],
                                       kind="audit-mitigation-tasks", limit=limit,
                                       token=token, descending=True)
        return [_mitigation_task(row) for row in rows], next_token

    def insert_executions(self, rows: Iterable[AuditMitigationExecutionRow]) -> None:
        batch = [_row_values(row) for row in rows]
        if batch:
            execute_write(self._conn, audit_mitigation_executions.insert(), batch)

    def finish_execution(self, task_id: str, finding_id: str, action_name: str, *,
                         status: str, end_time: datetime, error_code: str | None = None,
                         message: str | None = None, only_if_status: str | None = None
                         ) -> bool:
        t = audit_mitigation_executions
        stmt = t.update().where(t.c.task_id == task_id, t.c.finding_id == finding_id,
                                t.c.action_name == action_name)
        if only_if_status is not None:
            stmt = stmt.where(t.c.status == only_if_status)
        return self._conn.execute(stmt.values(
            status=status, end_time=end_time, error_code=error_code,
            message=message)).rowcount == 1

    def cancel_pending(self, task_id: str, end_time: datetime) -> int:
        t = audit_mitigation_executions
        result = self._conn.execute(
            t.update().where(t.c.task_id == task_id,
                             t.c.status.in_(["PENDING", "IN_PROGRESS"]))
            .values(status="CANCELED", end_time=end_time))
        return int(result.rowcount)

    def executions(self, task_id: str, *, finding_id: str | None = None,
                   status: str | None = None) -> list[AuditMitigationExecutionRow]:
        t = audit_mitigation_executions
        stmt = sa.select(t).where(t.c.task_id == task_id)
        if finding_id is not None:
            stmt = stmt.where(t.c.finding_id == finding_id)
        if status is not None:
            stmt = stmt.where(t.c.status == status)
        stmt = stmt.order_by(t.c.finding_id, t.c.action_name)
        return [_from(AuditMitigationExecutionRow, row) for row in self._conn.execute(stmt)]

    def executions_page(self, task_id: str, *, finding_id: str | None, status: str | None,
                        limit: int, token: str | None
                        ) -> tuple[list[AuditMitigationExecutionRow], str | None]:
        t = audit_mitigation_executions
        stmt = sa.select(t).where(t.c.task_id == task_id)
        if finding_id is not None:
            stmt = stmt.where(t.c.finding_id == finding_id)
        if status is not None:
            stmt = stmt.where(t.c.status == status)
        rows, next_token = keyset_page(self._conn, stmt, [t.c.finding_id, t.c.action_name],
                                       kind="audit-mitigation-executions", limit=limit,
                                       token=token)
        return [_from(AuditMitigationExecutionRow, row) for row in rows], next_token

    def task_ids_of_finding(self, finding_id: str) -> list[str]:
        t = audit_mitigation_executions
        stmt = sa.select(t.c.task_id).where(t.c.finding_id == finding_id).distinct()
        return sorted(self._conn.execute(stmt).scalars())


class CrlRepository:
    """The CRL sources registered per issuing CA (table ``audit_crls``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def put(self, row: CrlRow) -> None:
        values = _row_values(row)
        t = audit_crls
        updated = self._conn.execute(
            t.update().where(t.c.issuer_certificate_id == row.issuer_certificate_id)
            .values(**{k: v for k, v in values.items() if k != "issuer_certificate_id"}))
        if updated.rowcount == 0:
            execute_write(self._conn, t.insert().values(**values))

    def get(self, issuer_certificate_id: str) -> CrlRow | None:
        t = audit_crls
        found = self._conn.execute(
            sa.select(t).where(t.c.issuer_certificate_id == issuer_certificate_id)).first()
        return None if found is None else _crl(found)

    def record_fetch(self, issuer_certificate_id: str, *, crl_der: bytes | None,
                     this_update: datetime | None, next_update: datetime | None,
                     fetched_at: datetime, error: str | None) -> bool:
        """Store a freshly fetched CRL, or (``crl_der`` None) only the error of a failed
        fetch, keeping the previous CRL."""
        t = audit_crls
        values: dict[str, Any] = {"fetched_at": fetched_at, "last_error": error}
        if crl_der is not None:
            values.update(crl_der=crl_der, this_update=this_update, next_update=next_update)
        result = self._conn.execute(
            t.update().where(t.c.issuer_certificate_id == issuer_certificate_id)
            .values(**values))
        return result.rowcount == 1

    def delete(self, issuer_certificate_id: str) -> bool:
        t = audit_crls
        return self._conn.execute(
            t.delete().where(t.c.issuer_certificate_id == issuer_certificate_id)
        ).rowcount == 1

    def all(self) -> list[CrlRow]:
        t = audit_crls
        return [_crl(row) for row in
                self._conn.execute(sa.select(t).order_by(t.c.issuer_certificate_id))]


class MitigationActionRepository:
    """Mitigation actions (table ``mitigation_actions``), used by audit mitigation tasks
    and by Detect."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: MitigationActionRow) -> None:
        """:raises ConflictError: the name (or id) is taken."""
        values = _row_values(row)
        values["params"] = dict(row.params)
        execute_write(self._conn, mitigation_actions.insert().values(**values))

    def get(self, name: str) -> MitigationActionRow | None:
        t = mitigation_actions
        found = self._conn.execute(sa.select(t).where(t.c.name == name)).first()
        return None if found is None else _action(found)

    def get_many(self, names: Iterable[str]) -> list[MitigationActionRow]:
        wanted = sorted(set(names))
        if not wanted:
            return []
        t = mitigation_actions
        stmt = sa.select(t).where(t.c.name.in_(wanted)).order_by(t.c.name)
        return [_action(row) for row in self._conn.execute(stmt)]

    def update(self, name: str, *, role_arn: str, params: Mapping[str, Any],
               now: datetime) -> bool:
        t = mitigation_actions
        result = self._conn.execute(t.update().where(t.c.name == name).values(
            role_arn=role_arn, params=dict(params), last_modified_date=now))
        return result.rowcount == 1

    def delete(self, name: str) -> bool:
        t = mitigation_actions
        delete_tags_of(self._conn, "mitigationaction", name)
        return self._conn.execute(t.delete().where(t.c.name == name)).rowcount == 1

    def list_page(self, *, action_type: str | None, limit: int, token: str | None
                  ) -> tuple[list[MitigationActionRow], str | None]:
        t = mitigation_actions
        stmt = sa.select(t)
        kind = "mitigation-actions"
        if action_type is not None:
            stmt = stmt.where(t.c.action_type == action_type)
            kind += "-" + action_type
        rows, next_token = keyset_page(self._conn, stmt, [t.c.name], kind=kind, limit=limit,
                                       token=token)
        return [_action(row) for row in rows], next_token


# -- bulk reads of the registry for the checks --------------------------------------------


class AuditFleetReader:
    """Read-only, batched views of the registry and the connection journal, shaped for
    the audit checks (a full audit of 100,000 certificates must not hold them all)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def certificate_count(self) -> int:
        return count(self._conn, sa.select(certificates.c.certificate_id))

    def certificates_after(self, after: str | None, limit: int, *,
                           statuses: Sequence[str] | None = None) -> list[CertificateRow]:
        """Up to ``limit`` device certificates with an id greater than ``after``, by id."""
        t = certificates
        stmt = sa.select(t)
        if after is not None:
            stmt = stmt.where(t.c.certificate_id > after)
        if statuses is not None:
            stmt = stmt.where(t.c.status.in_(list(statuses)))
        stmt = stmt.order_by(t.c.certificate_id).limit(limit)
        return [_from(CertificateRow, row) for row in self._conn.execute(stmt)]

    def certificate_validity_after(self, after: str | None, limit: int
                                   ) -> list[tuple[str, str, datetime, datetime, datetime]]:
        """``(id, status, not_before, not_after, creation_date)`` of up to ``limit``
        certificates after ``after``: the expiry and age checks need no PEM."""
        t = certificates
        stmt = sa.select(t.c.certificate_id, t.c.status, t.c.not_before, t.c.not_after,
                         t.c.creation_date)
        if after is not None:
            stmt = stmt.where(t.c.certificate_id > after)
        stmt = stmt.order_by(t.c.certificate_id).limit(limit)
        return [(row[0], row[1], row[2], row[3], row[4]) for row in self._conn.execute(stmt)]

    def active_certificates_of_ca(self, ca_certificate_id: str, statuses: Sequence[str]
                                  ) -> list[CertificateRow]:
        t = certificates
        stmt = (sa.select(t).where(t.c.ca_certificate_id == ca_certificate_id,
                                   t.c.status.in_(list(statuses)))
                .order_by(t.c.certificate_id))
        return [_from(CertificateRow, row) for row in self._conn.execute(stmt)]

    def ca_certificates(self) -> list[CaCertificateRow]:
        t = ca_certificates
        rows = []
        for found in self._conn.execute(sa.select(t).order_by(t.c.ca_certificate_id)):
            values = {f.name: found._mapping[f.name] for f in fields(CaCertificateRow)}
            if values["registration_config"] is not None:
                values["registration_config"] = dict(values["registration_config"])
            rows.append(CaCertificateRow(**values))
        return rows

    def policy_count(self) -> int:
        return count(self._conn, sa.select(policies.c.name))

    def default_policy_versions_after(self, after: str | None, limit: int
                                      ) -> list[tuple[str, int, str]]:
        """``(policy name, default version id, document)`` by name, after ``after``."""
        stmt = (sa.select(policies.c.name, policies.c.default_version_id,
                          policy_versions.c.document)
                .join(policy_versions, sa.and_(
                    policy_versions.c.policy_name == policies.c.name,
                    policy_versions.c.version_id == policies.c.default_version_id)))
        if after is not None:
            stmt = stmt.where(policies.c.name > after)
        stmt = stmt.order_by(policies.c.name).limit(limit)
        return [(row[0], int(row[1]), row[2]) for row in self._conn.execute(stmt)]

    def certificates_on_several_things(self) -> dict[str, list[str]]:
        """Certificate id → the things it is attached to, for certificates attached to
        more than one thing."""
        t = thing_principals
        shared = (sa.select(t.c.principal_id).where(t.c.principal_type == "cert")
                  .group_by(t.c.principal_id).having(sa.func.count() > 1))
        stmt = (sa.select(t.c.principal_id, t.c.thing_name)
                .where(t.c.principal_type == "cert", t.c.principal_id.in_(shared))
                .order_by(t.c.principal_id, t.c.thing_name))
        result: dict[str, list[str]] = {}
        for principal_id, thing_name in self._conn.execute(stmt):
            result.setdefault(principal_id, []).append(thing_name)
        return result

    def things_of_certificate(self, certificate_id: str) -> list[str]:
        t = thing_principals
        stmt = (sa.select(t.c.thing_name)
                .where(t.c.principal_type == "cert", t.c.principal_id == certificate_id)
                .order_by(t.c.thing_name))
        return list(self._conn.execute(stmt).scalars())

    def certificates_with_overlapping_sessions(self, since: datetime, until: datetime
                                               ) -> list[str]:
        """Certificates with two connections open at the same time, both overlapping
        ``[since, until]`` (a candidate list: the caller checks the exact overlap)."""
        a = connection_sessions.alias("a")
        b = connection_sessions.alias("b")
        far = until
        stmt = (sa.select(a.c.certificate_id).distinct()
                .join(b, sa.and_(b.c.certificate_id == a.c.certificate_id,
                                 b.c.connection_id != a.c.connection_id,
                                 b.c.connected_at >= a.c.connected_at))
                .where(a.c.connected_at <= until,
                       sa.or_(a.c.disconnected_at.is_(None), a.c.disconnected_at >= since),
                       b.c.connected_at <= until,
                       sa.or_(b.c.disconnected_at.is_(None), b.c.disconnected_at >= since),
                       b.c.connected_at < sa.func.coalesce(a.c.disconnected_at, far))
                .order_by(a.c.certificate_id))
        return list(self._conn.execute(stmt).scalars())

    def sessions_of_certificates(self, certificate_ids: Sequence[str], since: datetime,
                                 until: datetime) -> list[Mapping[str, Any]]:
        return self._sessions(connection_sessions.c.certificate_id, certificate_ids, since,
                              until)

    def client_ids_taken_over(self, since: datetime, until: datetime) -> list[str]:
        """Client ids whose connection was closed by another connection with the same
        client id (``DUPLICATE_CLIENTID``) within ``[since, until]``."""
        t = connection_sessions
        stmt = (sa.select(t.c.client_id).distinct()
                .where(t.c.disconnect_reason == DUPLICATE_CLIENTID,
                       t.c.disconnected_at >= since, t.c.disconnected_at <= until)
                .order_by(t.c.client_id))
        return list(self._conn.execute(stmt).scalars())

    def connected_client_count(self, since: datetime, until: datetime) -> int:
        """How many distinct client ids had a connection overlapping ``[since, until]``."""
        t = connection_sessions
        stmt = sa.select(sa.func.count(sa.distinct(t.c.client_id))).where(
            t.c.connected_at <= until,
            sa.or_(t.c.disconnected_at.is_(None), t.c.disconnected_at >= since))
        return int(self._conn.execute(stmt).scalar_one())

    def sessions_of_clients(self, client_ids: Sequence[str], since: datetime,
                            until: datetime) -> list[Mapping[str, Any]]:
        return self._sessions(connection_sessions.c.client_id, client_ids, since, until)

    def _sessions(self, column: sa.Column[str], values: Sequence[str], since: datetime,
                  until: datetime) -> list[Mapping[str, Any]]:
        result: list[Mapping[str, Any]] = []
        t = connection_sessions
        for start in range(0, len(values), 500):
            chunk = list(values[start:start + 500])
            stmt = (sa.select(t).where(column.in_(chunk), t.c.connected_at <= until,
                                       sa.or_(t.c.disconnected_at.is_(None),
                                              t.c.disconnected_at >= since))
                    .order_by(column, t.c.connected_at, t.c.connection_id))
            result.extend(dict(row._mapping) for row in self._conn.execute(stmt))
        return result


def iterate_in_batches(fetch: Any, key: Any, batch: int) -> Iterator[Any]:
    """Yield every item of a keyset listing: ``fetch(after, batch)`` returns the next
    items, ``key(item)`` the value to continue after."""
    after = None
    while True:
        items = fetch(after, batch)
        yield from items
        if len(items) < batch:
            return
        after = key(items[-1])


# -- row conversion -------------------------------------------------------------------------


def _task(found: sa.Row[Any]) -> AuditTaskRow:
    m = found._mapping
    return AuditTaskRow(m["task_id"], m["task_type"], m["status"], m["start_time"],
                        m["end_time"], m["scheduled_audit_name"], list(m["check_names"]),
                        dict(m["check_details"]))


def _finding(found: sa.Row[Any]) -> AuditFindingRow:
    m = found._mapping
    return AuditFindingRow(
        finding_id=m["finding_id"], task_id=m["task_id"], check_name=m["check_name"],
        task_start_time=m["task_start_time"], finding_time=m["finding_time"],
        severity=m["severity"], resource_type=m["resource_type"],
        resource_key=m["resource_key"],
        non_compliant_resource=dict(m["non_compliant_resource"]),
        related_resources=list(m["related_resources"]), reason=m["reason"],
        reason_code=m["reason_code"], is_suppressed=bool(m["is_suppressed"]))


def _finding_values(row: AuditFindingRow) -> dict[str, Any]:
    values = _row_values(row)
    values["non_compliant_resource"] = dict(row.non_compliant_resource)
    values["related_resources"] = [dict(item) for item in row.related_resources]
    return values


def _scheduled(found: sa.Row[Any]) -> ScheduledAuditRow:
    m = found._mapping
    return ScheduledAuditRow(m["name"], m["frequency"], m["day_of_week"], m["day_of_month"],
                             list(m["check_names"]), m["creation_date"],
                             m["last_modified_date"], m["last_run_time"], m["next_run_time"])


def _suppression(found: sa.Row[Any]) -> AuditSuppressionRow:
    m = found._mapping
    return AuditSuppressionRow(m["check_name"], m["resource_key"],
                               dict(m["resource_identifier"]), m["expiration_date"],
                               bool(m["suppress_indefinitely"]), m["description"],
                               m["creation_date"])


def _mitigation_task(found: sa.Row[Any]) -> AuditMitigationTaskRow:
    m = found._mapping
    return AuditMitigationTaskRow(m["task_id"], m["status"], m["start_time"], m["end_time"],
                                  dict(m["target"]),
                                  {k: list(v) for k, v in m["actions_mapping"].items()},
                                  m["client_request_token"])


def _crl(found: sa.Row[Any]) -> CrlRow:
    m = found._mapping
    der = m["crl_der"]
    return CrlRow(m["issuer_certificate_id"], m["issuer_certificate_pem"], m["source"],
                  None if der is None else bytes(der), m["this_update"], m["next_update"],
                  m["fetched_at"], m["last_error"], m["creation_date"])


def _action(found: sa.Row[Any]) -> MitigationActionRow:
    m = found._mapping
    return MitigationActionRow(m["name"], m["action_id"], m["action_type"], m["role_arn"],
                               dict(m["params"]), m["creation_date"], m["last_modified_date"])


__all__ = [
    "AuditConfigurationRow",
    "AuditFindingRow",
    "AuditFleetReader",
    "AuditMitigationExecutionRow",
    "AuditMitigationRepository",
    "AuditMitigationTaskRow",
    "AuditRepository",
    "AuditSuppressionRow",
    "AuditTaskRow",
    "ConflictError",
    "CrlRepository",
    "CrlRow",
    "MitigationActionRepository",
    "MitigationActionRow",
    "ScheduledAuditRow",
    "iterate_in_batches",
]
