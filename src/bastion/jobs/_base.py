"""What the parts of :class:`~bastion.jobs.JobService` share: construction, the clock,
transactions that publish events after the commit, checks of names and values, and
turning rows into values.

Theory of operation of :meth:`ServiceBase._change`: a method opens a change (a writing
transaction), *touches* every thing whose executions it is about to alter — which
records that thing's pending list as it was — and makes its writes. When the block ends
normally, the pending list of each touched thing is read again, still inside the
transaction, and compared: a different set of executions is a
:class:`~bastion.jobs.JobExecutionsChanged`, a different head a
:class:`~bastion.jobs.NextJobExecutionChanged`. The transaction commits; only then are the
events handed to the ``publish`` sink, in order. A change that raises rolls back and
publishes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.registry import RegistryError, RegistryService, split_arn
from bastion.store import (
    InvalidPageTokenError,
    JobExecutionRow,
    JobRow,
    JobTemplateRow,
    Store,
    UnitOfWork,
)

from ..events import EventSink
from . import _configs as configs
from ._documents import DEFAULT_PRESIGNED_EXPIRY, JobDocumentSource
from ._errors import InvalidRequestError, ResourceNotFoundError
from ._events import MAX_LISTED, JobExecutionsChanged, NextJobExecutionChanged
from ._model import (
    PENDING_STATUSES,
    ExecutionStatus,
    Job,
    JobExecution,
    JobProcessDetails,
    JobStatus,
    JobTemplate,
    TargetSelection,
)

log = logging.getLogger("bastion.jobs")

JOB_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
THING_NAME: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
DETAILS_KEY: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
REASON_CODE: Final = re.compile(r"[A-Z0-9_]{1,128}")
MAX_DOCUMENT_BYTES: Final = 32 * 1024
MAX_DESCRIPTION: Final = 2028
MAX_DETAILS_VALUE: Final = 1024
PENDING: Final = frozenset(s.value for s in PENDING_STATUSES)
JOB = "job"
JOB_TEMPLATE = "jobtemplate"
THING = "thing"
THING_GROUP = "thinggroup"


def _discard(event: object) -> None:
    pass


# -- checks --------------------------------------------------------------------------------


def check_pattern(value: object, what: str, pattern: re.Pattern[str]) -> str:
    """:raises InvalidRequestError: not a string matching ``pattern``."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRequestError(
            f"1 validation error detected: Value '{value}' at '{what}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def check_job_id(value: object, what: str = "jobId") -> str:
    return check_pattern(value, what, JOB_ID)


def check_thing_name(value: object) -> str:
    return check_pattern(value, "thingName", THING_NAME)


def check_text(value: object, what: str, maximum: int = MAX_DESCRIPTION) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > maximum:
        raise InvalidRequestError(f"{what} must be a string of at most {maximum} characters")
    return value


def check_document(value: object) -> str:
    """A job document: a JSON object of at most 32 KB.

    :raises InvalidRequestError: not JSON, not an object, or too large.
    """
    if not isinstance(value, str):
        raise InvalidRequestError("The job document must be a string")
    if len(value.encode("utf-8")) > MAX_DOCUMENT_BYTES:
        raise InvalidRequestError(f"The job document exceeds {MAX_DOCUMENT_BYTES} bytes")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise InvalidRequestError("The job document is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError("The job document must be a JSON object")
    return value


def check_status_details(value: object) -> dict[str, str] | None:
    """``statusDetails``: names ``[a-zA-Z0-9:_-]{1,128}``, values of 1 to 1024 printable
    characters.

    :raises InvalidRequestError: another shape.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequestError("statusDetails must be an object of strings")
    details: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not DETAILS_KEY.fullmatch(key):
            raise InvalidRequestError(f"Invalid statusDetails key: {key!r}")
        if (not isinstance(item, str) or not 1 <= len(item) <= MAX_DETAILS_VALUE
                or not item.isprintable()):
            raise InvalidRequestError(f"Invalid statusDetails value for {key!r}: values are "
                                      f"1 to {MAX_DETAILS_VALUE} printable characters")
        details[key] = item
    return details


def check_step_timeout(value: object) -> int | None:
    """``stepTimeoutInMinutes``: 1 to 10080, or -1 to cancel the step timer.

    :raises InvalidRequestError: another value.
    """
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int)
            or not (value == -1 or 1 <= value <= configs.MAX_TIMEOUT_MINUTES)):
        raise InvalidRequestError(
            f"stepTimeoutInMinutes must be between 1 and {configs.MAX_TIMEOUT_MINUTES} "
            "(or -1 to cancel the step timer)")
    return value


def check_expected_version(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError("expectedVersion must be a non-negative integer")
    return value


def check_execution_number(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError("executionNumber must be a positive integer")
    return value


def check_page_size(value: object, maximum: int = 250, default: int = 50) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidRequestError(f"maxResults must be between 1 and {maximum}")
    return value


def parse_status(value: object, what: str = "status") -> ExecutionStatus | None:
    if value is None:
        return None
    try:
        return ExecutionStatus(value)
    except ValueError:
        raise InvalidRequestError(f"Invalid {what}: {value!r}") from None


def pending_order(row: JobExecutionRow) -> tuple[int, datetime, str, int]:
    """IN_PROGRESS first, then QUEUED; each by queue time (then job id)."""
    return (0 if row.status == ExecutionStatus.IN_PROGRESS.value else 1, row.queued_at,
            row.job_id, row.execution_number)


# -- the base class ---------------------------------------------------------------------------


class _Change:
    """One writing transaction of the service; see the module docstring."""

    __slots__ = ("_before", "_service", "events", "now", "uow")

    def __init__(self, service: ServiceBase, uow: UnitOfWork, now: datetime) -> None:
        self._service = service
        self.uow = uow
        self.now = now
        self.events: list[object] = []
        self._before: dict[str, list[tuple[str, int]]] = {}

    def touch(self, thing_name: str) -> None:
        """Record ``thing_name``'s pending list before this change alters it."""
        if thing_name not in self._before:
            self._before[thing_name] = [
                (r.job_id, r.execution_number)
                for r in self._service._pending_rows(self.uow, thing_name)]

    def finish(self) -> None:
        service = self._service
        for thing, before in self._before.items():
            rows = service._pending_rows(self.uow, thing)
            after = [(r.job_id, r.execution_number) for r in rows]
            if set(after) != set(before):
                listed = [service._execution(r, self.now) for r in rows[:MAX_LISTED]]
                self.events.append(JobExecutionsChanged(
                    thing,
                    tuple(e for e in listed if e.status is ExecutionStatus.IN_PROGRESS),
                    tuple(e for e in listed if e.status is ExecutionStatus.QUEUED),
                    self.now))
            if (after[:1]) != (before[:1]):
                head = None
                if rows:
                    head = service._execution(rows[0], self.now, document=service._document_of(
                        self.uow, rows[0].job_id, (rows[0].job_id, thing,
                                                   rows[0].execution_number)))
                self.events.append(NextJobExecutionChanged(thing, head, self.now))


class ServiceBase:
    """Construction and plumbing of the jobs service.

    :param store: an open :class:`~bastion.store.Store`.
    :param registry: the registry service (its account names the ARNs).
    :param clock: the current time; tests pass one they move by hand.
    :param publish_event: receives each domain event after its transaction commits.
    :param documents: where ``documentSource`` documents and the files of presigned-URL
        placeholders are kept; ``None``: inline documents only, placeholders untouched.
    :raises TypeError: wrong argument types.
    """

    __slots__ = ("_account", "_clock", "_documents", "_publish", "_registry", "_store")

    def __init__(self, store: Store, registry: RegistryService, clock: Clock | None = None,
                 publish_event: EventSink | None = None, *,
                 documents: JobDocumentSource | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if not isinstance(registry, RegistryService):
            raise TypeError(f"registry must be a RegistryService, not {type(registry).__name__}")
        if publish_event is not None and not callable(publish_event):
            raise TypeError("publish_event must be callable")
        self._store = store
        self._registry = registry
        self._account: Account = registry.account
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._publish: EventSink = publish_event or _discard
        self._documents = documents

    @property
    def account(self) -> Account:
        """The region and account the ARNs name (the registry's)."""
        return self._account

    def now(self) -> datetime:
        """The service clock's current time (UTC).

        :raises ValueError: the clock returned a naive datetime.
        """
        now = self._clock.now()
        if now.utcoffset() is None:
            raise ValueError("the clock returned a naive datetime")
        return now.astimezone(UTC)

    @contextmanager
    def _change(self) -> Iterator[_Change]:
        with self._store.transaction() as uow:
            change = _Change(self, uow, self.now())
            yield change
            change.finish()
        self._emit(change.events)

    @contextmanager
    def _read(self) -> Iterator[UnitOfWork]:
        with self._store.transaction(readonly=True) as uow:
            yield uow

    @contextmanager
    def _page_token(self) -> Iterator[None]:
        try:
            yield
        except InvalidPageTokenError:
            raise InvalidRequestError("The nextToken is not valid") from None

    def _emit(self, events: list[object]) -> None:
        for event in events:
            try:
                self._publish(event)
            except Exception:
                log.exception("the jobs event sink failed on %s", type(event).__name__)

    # -- ARNs -------------------------------------------------------------------------

    def job_arn(self, job_id: str) -> str:
        return self._account.arn(f"{JOB}/{job_id}")

    def thing_arn(self, thing_name: str) -> str:
        return self._account.arn(f"{THING}/{thing_name}")

    def template_arn(self, template_id: str) -> str:
        return self._account.arn(f"{JOB_TEMPLATE}/{template_id}")

    def _parse_arn(self, arn: object, types: frozenset[str], what: str) -> tuple[str, str]:
        if not isinstance(arn, str):
            raise InvalidRequestError(f"{what} must be an ARN")
        try:
            return split_arn(self._account, arn, types)
        except RegistryError as error:
            if error.http_status == 404:
                raise ResourceNotFoundError(error.message) from None
            raise InvalidRequestError(error.message) from None

    # -- reads shared by the parts ---------------------------------------------------------

    def _require_job(self, uow: UnitOfWork, job_id: str, *, for_update: bool = False
                     ) -> JobRow:
        row = uow.jobs.get(job_id, for_update=for_update)
        if row is None:
            raise ResourceNotFoundError(f"Job {job_id} does not exist")
        return row

    def _require_thing(self, uow: UnitOfWork, thing_name: str) -> None:
        if uow.things.get(thing_name) is None:
            raise ResourceNotFoundError(f"Thing {thing_name} cannot be found")

    def _pending_rows(self, uow: UnitOfWork, thing_name: str) -> list[JobExecutionRow]:
        return sorted(uow.job_executions.of_thing(thing_name, PENDING), key=pending_order)

    def _document_of(self, uow: UnitOfWork, job_id: str,
                     execution: tuple[str, str, int]) -> str | None:
        """The document of ``job_id`` as a device gets it (see :meth:`_device_document`)."""
        row = uow.jobs.get(job_id)
        return None if row is None else self._device_document(row, execution)

    def _device_document(self, row: JobRow, execution: tuple[str, str, int]) -> str | None:
        """The job's document as the device of ``execution`` (job id, thing name,
        execution number) gets it: presigned-URL placeholders replaced by URLs valid
        ``presignedUrlConfig.expiresInSec`` (default 3600) from now, upload placeholders
        by that execution's upload URL."""
        document = row.document
        if document is None or self._documents is None:
            return document
        config = configs.presigned_from_json(row.presigned_url_config)
        expires = DEFAULT_PRESIGNED_EXPIRY
        if config is not None and config.expires_in_sec is not None:
            expires = config.expires_in_sec
        return self._documents.presign_document(document, expires, execution=execution)

    # -- rows → values ---------------------------------------------------------------------

    def _execution(self, row: JobExecutionRow, now: datetime, *,
                   document: str | None = None) -> JobExecution:
        remaining: int | None = None
        deadlines = [d for d in (row.step_deadline, row.in_progress_deadline) if d is not None]
        if deadlines and row.status in PENDING:
            remaining = max(0, math.ceil((min(deadlines) - now).total_seconds()))
        return JobExecution(
            job_id=row.job_id, thing_name=row.thing_name,
            thing_arn=self.thing_arn(row.thing_name),
            execution_number=row.execution_number, status=ExecutionStatus(row.status),
            force_canceled=row.force_canceled, status_details=dict(row.status_details),
            queued_at=row.queued_at, started_at=row.started_at,
            last_updated_at=row.last_updated_at, version_number=row.version_number,
            approximate_seconds_before_timed_out=remaining, job_document=document,
            retry_attempt=row.retry_attempt)

    def _job(self, uow: UnitOfWork, row: JobRow, *, counts: bool = True) -> Job:
        targets = tuple(self._account.arn(f"{t.target_type}/{t.target_name}")
                        for t in uow.jobs.targets(row.job_id))
        status = JobStatus(row.status)
        process = JobProcessDetails()
        if counts:
            process = JobProcessDetails({ExecutionStatus(k): v for k, v in
                                         uow.job_executions.count_by_status(row.job_id).items()})
        concurrent = status is JobStatus.IN_PROGRESS and uow.jobs.queue_length(row.job_id) > 0
        return Job(
            job_id=row.job_id, job_arn=self.job_arn(row.job_id),
            target_selection=TargetSelection(row.target_selection), status=status,
            targets=targets, description=row.description, document_source=row.document_source,
            force_canceled=row.force_canceled, reason_code=row.reason_code,
            comment=row.comment,
            presigned_url_config=configs.presigned_from_json(row.presigned_url_config),
            rollout_config=configs.rollout_from_json(row.rollout_config),
            abort_config=configs.abort_from_json(row.abort_config),
            in_progress_timeout_minutes=row.in_progress_timeout_minutes,
            job_template_arn=(None if row.template_id is None
                              else self.template_arn(row.template_id)),
            created_at=row.created_at, last_updated_at=row.last_updated_at,
            completed_at=row.completed_at, process_details=process, is_concurrent=concurrent,
            retry_config=configs.retry_from_json(row.retry_config))

    def _template(self, row: JobTemplateRow) -> JobTemplate:
        return JobTemplate(
            job_template_id=row.template_id, job_template_arn=self.template_arn(row.template_id),
            description=row.description, document=row.document,
            document_source=row.document_source,
            presigned_url_config=configs.presigned_from_json(row.presigned_url_config),
            rollout_config=configs.rollout_from_json(row.rollout_config),
            abort_config=configs.abort_from_json(row.abort_config),
            in_progress_timeout_minutes=row.in_progress_timeout_minutes,
            created_at=row.created_at, retry_config=configs.retry_from_json(row.retry_config))
