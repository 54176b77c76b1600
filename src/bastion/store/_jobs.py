"""Repositories of jobs (tables ``jobs``, ``job_targets``, ``job_rollout_queue``), job
executions (``job_executions``) and job templates (``job_templates``).

Statuses and configurations are stored as the service hands them over (strings, JSON
objects); the service owns their meaning.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import job_executions as ex
from ._schema import job_rollout_queue as queue
from ._schema import job_targets as targets
from ._schema import job_templates as templates
from ._schema import jobs
from ._sql import execute_write
from ._tags import delete_tags_of

JsonObject = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: str
    description: str | None
    document: str | None
    document_source: str | None
    target_selection: str
    status: str
    force_canceled: bool
    reason_code: str | None
    comment: str | None
    presigned_url_config: JsonObject | None
    rollout_config: JsonObject | None
    abort_config: JsonObject | None
    in_progress_timeout_minutes: int | None
    template_id: str | None
    rollout_window_start: datetime | None
    rollout_window_count: int
    created_at: datetime
    last_updated_at: datetime
    completed_at: datetime | None
    retry_config: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class JobTargetRow:
    target_type: str
    target_name: str


@dataclass(frozen=True, slots=True)
class JobExecutionRow:
    job_id: str
    thing_name: str
    execution_number: int
    status: str
    force_canceled: bool
    status_details: Mapping[str, str]
    queued_at: datetime
    started_at: datetime | None
    last_updated_at: datetime
    version_number: int
    step_deadline: datetime | None
    in_progress_deadline: datetime | None
    retry_attempt: int = 0


@dataclass(frozen=True, slots=True)
class JobTemplateRow:
    template_id: str
    description: str
    document: str | None
    document_source: str | None
    presigned_url_config: JsonObject | None
    rollout_config: JsonObject | None
    abort_config: JsonObject | None
    in_progress_timeout_minutes: int | None
    created_at: datetime
    retry_config: JsonObject | None = None


def _job_values(row: JobRow) -> dict[str, Any]:
    return {
        "description": row.description,
        "document": row.document,
        "document_source": row.document_source,
        "target_selection": row.target_selection,
        "status": row.status,
        "force_canceled": row.force_canceled,
        "reason_code": row.reason_code,
        "comment": row.comment,
        "presigned_url_config": _json(row.presigned_url_config),
        "rollout_config": _json(row.rollout_config),
        "abort_config": _json(row.abort_config),
        "in_progress_timeout_minutes": row.in_progress_timeout_minutes,
        "template_id": row.template_id,
        "rollout_window_start": row.rollout_window_start,
        "rollout_window_count": row.rollout_window_count,
        "created_at": row.created_at,
        "last_updated_at": row.last_updated_at,
        "completed_at": row.completed_at,
        "retry_config": _json(row.retry_config),
    }


def _json(value: JsonObject | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def _job(row: sa.Row[Any]) -> JobRow:
    m = row._mapping
    return JobRow(job_id=m["job_id"], **{key: m[key] for key in _JOB_COLUMNS})


_JOB_COLUMNS = tuple(c.name for c in jobs.columns if c.name != "job_id")


class JobRepository:
    """Jobs, their targets and their rollout queues."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: JobRow, job_targets: Sequence[JobTargetRow]) -> None:
        """:raises ConflictError: a job with this id exists."""
        execute_write(self._conn, jobs.insert().values(job_id=row.job_id, **_job_values(row)))
        if job_targets:
            self._conn.execute(targets.insert(), [
                {"job_id": row.job_id, "target_type": t.target_type,
                 "target_name": t.target_name, "position": index}
                for index, t in enumerate(job_targets)])

    def get(self, job_id: str, *, for_update: bool = False) -> JobRow | None:
        stmt = sa.select(jobs).where(jobs.c.job_id == job_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self._conn.execute(stmt).first()
        return None if row is None else _job(row)

    def save(self, row: JobRow) -> None:
        """Write every column of an existing job."""
        self._conn.execute(jobs.update().where(jobs.c.job_id == row.job_id)
                           .values(**_job_values(row)))

    def delete(self, job_id: str) -> bool:
        result = self._conn.execute(jobs.delete().where(jobs.c.job_id == job_id))
        delete_tags_of(self._conn, "job", job_id)
        return result.rowcount == 1

    def targets(self, job_id: str) -> list[JobTargetRow]:
        """The job's targets in the order they were given."""
        stmt = (sa.select(targets.c.target_type, targets.c.target_name)
                .where(targets.c.job_id == job_id).order_by(targets.c.position))
        return [JobTargetRow(r.target_type, r.target_name) for r in self._conn.execute(stmt)]

    def list_page(self, *, status: str | None = None, target_selection: str | None = None,
                  target_group: str | None = None, limit: int, token: str | None
                  ) -> tuple[list[JobRow], str | None]:
        """A page of jobs ordered by id, optionally filtered."""
        stmt = sa.select(jobs)
        if status is not None:
            stmt = stmt.where(jobs.c.status == status)
        if target_selection is not None:
            stmt = stmt.where(jobs.c.target_selection == target_selection)
        if target_group is not None:
            stmt = stmt.where(sa.select(targets.c.job_id).where(
                targets.c.job_id == jobs.c.job_id, targets.c.target_type == "thinggroup",
                targets.c.target_name == target_group).exists())
        rows, next_token = keyset_page(self._conn, stmt, [jobs.c.job_id], kind="jobs",
                                       limit=limit, token=token)
        return [_job(row) for row in rows], next_token

    def targeting(self, target_type: str, names: Collection[str], *,
                  target_selection: str | None = None, statuses: Collection[str] = ()
                  ) -> list[JobRow]:
        """Jobs naming one of ``names`` (of ``target_type``) among their targets."""
        if not names:
            return []
        stmt = sa.select(jobs).where(sa.select(targets.c.job_id).where(
            targets.c.job_id == jobs.c.job_id, targets.c.target_type == target_type,
            targets.c.target_name.in_(sorted(names))).exists())
        if target_selection is not None:
            stmt = stmt.where(jobs.c.target_selection == target_selection)
        if statuses:
            stmt = stmt.where(jobs.c.status.in_(sorted(statuses)))
        return [_job(row) for row in self._conn.execute(stmt.order_by(jobs.c.job_id))]

    def with_status(self, statuses: Collection[str], *, target_selection: str | None = None
                    ) -> list[JobRow]:
        stmt = sa.select(jobs).where(jobs.c.status.in_(sorted(statuses)))
        if target_selection is not None:
            stmt = stmt.where(jobs.c.target_selection == target_selection)
        return [_job(row) for row in self._conn.execute(stmt.order_by(jobs.c.job_id))]

    # -- rollout queue ------------------------------------------------------------------

    def enqueue(self, job_id: str, thing_names: Sequence[str]) -> None:
        """Append things to the job's rollout queue (ignoring those already queued)."""
        if not thing_names:
            return
        present = set(self._conn.execute(
            sa.select(queue.c.thing_name).where(queue.c.job_id == job_id,
                                                queue.c.thing_name.in_(list(thing_names))))
            .scalars())
        last = self._conn.execute(sa.select(sa.func.max(queue.c.position))
                                  .where(queue.c.job_id == job_id)).scalar()
        start = 0 if last is None else int(last) + 1
        fresh = [name for name in dict.fromkeys(thing_names) if name not in present]
        if fresh:
            self._conn.execute(queue.insert(), [
                {"job_id": job_id, "thing_name": name, "position": start + index}
                for index, name in enumerate(fresh)])

    def dequeue(self, job_id: str, count: int) -> list[str]:
        """Remove and return the first ``count`` things of the job's rollout queue."""
        if count <= 0:
            return []
        names = list(self._conn.execute(
            sa.select(queue.c.thing_name).where(queue.c.job_id == job_id)
            .order_by(queue.c.position).limit(count)).scalars())
        if names:
            self._conn.execute(queue.delete().where(queue.c.job_id == job_id,
                                                    queue.c.thing_name.in_(names)))
        return names

    def unqueue(self, job_id: str, thing_name: str) -> bool:
        """Remove one thing from the job's rollout queue."""
        result = self._conn.execute(queue.delete().where(queue.c.job_id == job_id,
                                                         queue.c.thing_name == thing_name))
        return result.rowcount == 1

    def queue_length(self, job_id: str) -> int:
        value = self._conn.execute(sa.select(sa.func.count()).select_from(queue)
                                   .where(queue.c.job_id == job_id)).scalar_one()
        return int(value)

    def clear_queue(self, job_id: str) -> int:
        return int(self._conn.execute(queue.delete().where(queue.c.job_id == job_id)).rowcount)

    def with_queue(self) -> list[str]:
        """Ids of the jobs whose rollout queue is not empty."""
        return list(self._conn.execute(
            sa.select(queue.c.job_id).distinct().order_by(queue.c.job_id)).scalars())

    def queued_for(self, thing_name: str) -> list[str]:
        """Ids of the jobs whose rollout queue holds ``thing_name``."""
        return list(self._conn.execute(
            sa.select(queue.c.job_id).where(queue.c.thing_name == thing_name)
            .order_by(queue.c.job_id)).scalars())

    def is_queued(self, job_id: str, thing_name: str) -> bool:
        stmt = sa.select(queue.c.job_id).where(queue.c.job_id == job_id,
                                               queue.c.thing_name == thing_name)
        return self._conn.execute(stmt).first() is not None


def _execution(row: sa.Row[Any]) -> JobExecutionRow:
    m = row._mapping
    return JobExecutionRow(
        job_id=m["job_id"], thing_name=m["thing_name"],
        execution_number=int(m["execution_number"]), status=m["status"],
        force_canceled=bool(m["force_canceled"]),
        status_details=dict(m["status_details"] or {}), queued_at=m["queued_at"],
        started_at=m["started_at"], last_updated_at=m["last_updated_at"],
        version_number=int(m["version_number"]), step_deadline=m["step_deadline"],
        in_progress_deadline=m["in_progress_deadline"],
        retry_attempt=int(m["retry_attempt"] or 0))


def _execution_values(row: JobExecutionRow) -> dict[str, Any]:
    return {
        "status": row.status,
        "force_canceled": row.force_canceled,
        "status_details": dict(row.status_details),
        "queued_at": row.queued_at,
        "started_at": row.started_at,
        "last_updated_at": row.last_updated_at,
        "version_number": row.version_number,
        "step_deadline": row.step_deadline,
        "in_progress_deadline": row.in_progress_deadline,
        "retry_attempt": row.retry_attempt,
    }


class JobExecutionRepository:
    """Job executions: one row per (job, thing, execution number)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: JobExecutionRow) -> None:
        """:raises ConflictError: the execution exists, or its job or thing does not."""
        execute_write(self._conn, ex.insert().values(
            job_id=row.job_id, thing_name=row.thing_name,
            execution_number=row.execution_number, **_execution_values(row)))

    def save(self, row: JobExecutionRow) -> None:
        """Write every column of an existing execution."""
        self._conn.execute(ex.update().where(*self._key(row.job_id, row.thing_name,
                                                        row.execution_number))
                           .values(**_execution_values(row)))

    def get(self, job_id: str, thing_name: str, execution_number: int | None = None, *,
            for_update: bool = False) -> JobExecutionRow | None:
        """One execution; the latest (highest number) when ``execution_number`` is None."""
        stmt = sa.select(ex).where(ex.c.job_id == job_id, ex.c.thing_name == thing_name)
        if execution_number is not None:
            stmt = stmt.where(ex.c.execution_number == execution_number)
        stmt = stmt.order_by(ex.c.execution_number.desc()).limit(1)
        if for_update:
            stmt = stmt.with_for_update()
        row = self._conn.execute(stmt).first()
        return None if row is None else _execution(row)

    def delete(self, job_id: str, thing_name: str, execution_number: int) -> bool:
        result = self._conn.execute(ex.delete().where(*self._key(job_id, thing_name,
                                                                 execution_number)))
        return result.rowcount == 1

    def delete_of_job(self, job_id: str) -> int:
        return int(self._conn.execute(ex.delete().where(ex.c.job_id == job_id)).rowcount)

    def of_thing(self, thing_name: str, statuses: Collection[str]) -> list[JobExecutionRow]:
        """The thing's executions in one of ``statuses`` (unordered)."""
        stmt = sa.select(ex).where(ex.c.thing_name == thing_name,
                                   ex.c.status.in_(sorted(statuses)))
        return [_execution(row) for row in self._conn.execute(stmt)]

    def of_job(self, job_id: str, statuses: Collection[str] = ()) -> list[JobExecutionRow]:
        """The job's executions (in one of ``statuses`` when given), by thing and number."""
        stmt = sa.select(ex).where(ex.c.job_id == job_id)
        if statuses:
            stmt = stmt.where(ex.c.status.in_(sorted(statuses)))
        stmt = stmt.order_by(ex.c.thing_name, ex.c.execution_number)
        return [_execution(row) for row in self._conn.execute(stmt)]

    def things_with(self, job_id: str, statuses: Collection[str]) -> list[str]:
        stmt = (sa.select(ex.c.thing_name).distinct()
                .where(ex.c.job_id == job_id, ex.c.status.in_(sorted(statuses))))
        return sorted(self._conn.execute(stmt).scalars())

    def latest_of(self, job_id: str, thing_names: Iterable[str]
                  ) -> dict[str, JobExecutionRow]:
        """The latest execution of the job for each of ``thing_names`` that has one."""
        names = sorted(set(thing_names))
        if not names:
            return {}
        stmt = (sa.select(ex).where(ex.c.job_id == job_id, ex.c.thing_name.in_(names))
                .order_by(ex.c.thing_name, ex.c.execution_number))
        latest: dict[str, JobExecutionRow] = {}
        for row in self._conn.execute(stmt):
            latest[row.thing_name] = _execution(row)
        return latest

    def count_by_status(self, job_id: str) -> dict[str, int]:
        stmt = (sa.select(ex.c.status, sa.func.count()).where(ex.c.job_id == job_id)
                .group_by(ex.c.status))
        return {str(row[0]): int(row[1]) for row in self._conn.execute(stmt)}

    def page_of_job(self, job_id: str, *, status: str | None, limit: int, token: str | None
                    ) -> tuple[list[JobExecutionRow], str | None]:
        stmt = sa.select(ex).where(ex.c.job_id == job_id)
        if status is not None:
            stmt = stmt.where(ex.c.status == status)
        rows, next_token = keyset_page(self._conn, stmt,
                                       [ex.c.thing_name, ex.c.execution_number],
                                       kind="job-executions-of-job", limit=limit, token=token)
        return [_execution(row) for row in rows], next_token

    def page_of_thing(self, thing_name: str, *, status: str | None, job_id: str | None,
                      limit: int, token: str | None
                      ) -> tuple[list[JobExecutionRow], str | None]:
        stmt = sa.select(ex).where(ex.c.thing_name == thing_name)
        if status is not None:
            stmt = stmt.where(ex.c.status == status)
        if job_id is not None:
            stmt = stmt.where(ex.c.job_id == job_id)
        rows, next_token = keyset_page(self._conn, stmt, [ex.c.job_id, ex.c.execution_number],
                                       kind="job-executions-of-thing", limit=limit,
                                       token=token)
        return [_execution(row) for row in rows], next_token

    def due(self, now: datetime, statuses: Collection[str]) -> list[JobExecutionRow]:
        """Executions in one of ``statuses`` whose step or in-progress deadline is at or
        before ``now``."""
        stmt = sa.select(ex).where(
            ex.c.status.in_(sorted(statuses)),
            sa.or_(ex.c.step_deadline <= now, ex.c.in_progress_deadline <= now))
        stmt = stmt.order_by(ex.c.job_id, ex.c.thing_name, ex.c.execution_number)
        return [_execution(row) for row in self._conn.execute(stmt)]

    def next_deadline(self, statuses: Collection[str]) -> datetime | None:
        """The earliest step or in-progress deadline of executions in ``statuses``."""
        chosen = sorted(statuses)
        step = self._conn.execute(sa.select(sa.func.min(ex.c.step_deadline))
                                  .where(ex.c.status.in_(chosen))).scalar()
        total = self._conn.execute(sa.select(sa.func.min(ex.c.in_progress_deadline))
                                   .where(ex.c.status.in_(chosen))).scalar()
        found: list[datetime] = [value for value in (step, total) if value is not None]
        return min(found) if found else None

    @staticmethod
    def _key(job_id: str, thing_name: str, execution_number: int
             ) -> tuple[sa.ColumnElement[bool], ...]:
        return (ex.c.job_id == job_id, ex.c.thing_name == thing_name,
                ex.c.execution_number == execution_number)


def _template(row: sa.Row[Any]) -> JobTemplateRow:
    m = row._mapping
    return JobTemplateRow(**{c.name: m[c.name] for c in templates.columns})


class JobTemplateRepository:
    """Job templates."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: JobTemplateRow) -> None:
        """:raises ConflictError: a template with this id exists."""
        execute_write(self._conn, templates.insert().values(
            template_id=row.template_id, description=row.description,
            document=row.document, document_source=row.document_source,
            presigned_url_config=_json(row.presigned_url_config),
            rollout_config=_json(row.rollout_config), abort_config=_json(row.abort_config),
            in_progress_timeout_minutes=row.in_progress_timeout_minutes,
            created_at=row.created_at, retry_config=_json(row.retry_config)))

    def get(self, template_id: str) -> JobTemplateRow | None:
        row = self._conn.execute(sa.select(templates)
                                 .where(templates.c.template_id == template_id)).first()
        return None if row is None else _template(row)

    def delete(self, template_id: str) -> bool:
        result = self._conn.execute(templates.delete()
                                    .where(templates.c.template_id == template_id))
        delete_tags_of(self._conn, "jobtemplate", template_id)
        return result.rowcount == 1

    def list_page(self, *, limit: int, token: str | None
                  ) -> tuple[list[JobTemplateRow], str | None]:
        rows, next_token = keyset_page(self._conn, sa.select(templates),
                                       [templates.c.template_id], kind="job-templates",
                                       limit=limit, token=token)
        return [_template(row) for row in rows], next_token
