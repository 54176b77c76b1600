"""The operator's side of jobs (``iot``): jobs, their executions, job templates.

Rules (AWS IoT developer guide, API reference):

* a job id is ``[a-zA-Z0-9_-]{1,64}``; the document a JSON object of at most 32 KB, given
  inline, read from ``documentSource`` (a file uploaded to Bastion, see
  :class:`~bastion.jobs.JobDocumentSource`) or taken from a job template; its
  presigned-URL placeholders must designate uploaded files;
* targets are thing and thing group ARNs of this account and region (a group stands for
  its members and its descendants' members); a SNAPSHOT job runs on the things targeted at
  creation and completes when all its executions are final; a CONTINUOUS job also runs on
  things that join a target group later, and never completes;
* CancelJob cancels QUEUED executions, and with ``force`` IN_PROGRESS ones; DeleteJob of a
  job in progress, or with executions in progress, needs ``force``; CancelJobExecution
  follows the same rule for one execution; DeleteJobExecution of a pending execution needs
  ``force``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from bastion.store import ConflictError as StoreConflict
from bastion.store import JobRow, JobTargetRow, JobTemplateRow, UnitOfWork

from . import _configs as configs
from ._base import (
    JOB,
    JOB_TEMPLATE,
    PENDING,
    REASON_CODE,
    THING,
    THING_GROUP,
    THING_NAME,
    check_document,
    check_execution_number,
    check_expected_version,
    check_job_id,
    check_page_size,
    check_pattern,
    check_status_details,
    check_text,
    check_thing_name,
    parse_status,
)
from ._errors import (
    ConflictError,
    InvalidRequestError,
    InvalidStateTransitionError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionMismatchError,
)
from ._lifecycle import ExecutionLifecycle
from ._model import (
    ExecutionStatus,
    Job,
    JobExecutionState,
    JobStatus,
    JobTemplate,
    TargetSelection,
)
from ._states import Actor

Page = tuple[list[Any], str | None]
_UNSET: Any = object()
_MEMBERS_PAGE = 250


def _target_selection(value: object) -> TargetSelection:
    if value is None:
        return TargetSelection.SNAPSHOT
    try:
        return TargetSelection(value)
    except ValueError:
        raise InvalidRequestError("targetSelection must be SNAPSHOT or CONTINUOUS") from None


class ControlOperations(ExecutionLifecycle):
    __slots__ = ()

    # -- jobs -----------------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        *,
        targets: Sequence[str],
        document: str | None = None,
        document_source: str | None = None,
        description: str | None = None,
        target_selection: str | None = None,
        presigned_url_config: Mapping[str, Any] | None = None,
        rollout_config: Mapping[str, Any] | None = None,
        abort_config: Mapping[str, Any] | None = None,
        timeout_config: Mapping[str, Any] | None = None,
        job_template_arn: str | None = None,
        retry_config: Mapping[str, Any] | None = None,
    ) -> Job:
        """CreateJob: the job, and executions queued for the things targeted now.

        :raises InvalidRequestError: a bad id, document, target or configuration, or no
            document at all.
        :raises ResourceNotFoundError: a target or the template does not exist.
        :raises ResourceAlreadyExistsError: a job with this id exists.
        """
        job_id = check_job_id(job_id)
        document = self._from_source(document, document_source)
        selection = _target_selection(target_selection)
        description = check_text(description, "description")
        template: JobTemplateRow | None = None
        if job_template_arn is not None:
            _, template_id = self._parse_arn(job_template_arn, frozenset({JOB_TEMPLATE}),
                                             "jobTemplateArn")
            with self._read() as uow:
                template = uow.job_templates.get(template_id)
            if template is None:
                raise ResourceNotFoundError(f"Job template {template_id} does not exist")
            if document is None:
                document = template.document
        if document is None:
            raise InvalidRequestError("A job needs a document (document or jobTemplateArn)")
        document = self._document(document)
        presigned = configs.presigned_from_json(presigned_url_config)
        rollout = configs.rollout_from_json(rollout_config)
        abort = configs.abort_from_json(abort_config)
        timeout = configs.timeout_from_json(timeout_config)
        retry = configs.retry_from_json(retry_config)
        if template is not None:
            presigned = presigned or configs.presigned_from_json(template.presigned_url_config)
            rollout = rollout or configs.rollout_from_json(template.rollout_config)
            abort = abort or configs.abort_from_json(template.abort_config)
            timeout = timeout if timeout is not None else template.in_progress_timeout_minutes
            retry = retry or configs.retry_from_json(template.retry_config)
        parsed = self._targets(targets)
        with self._change() as change:
            uow = change.uow
            if uow.jobs.get(job_id) is not None:
                raise ResourceAlreadyExistsError(f"Job {job_id} already exists")
            things = self._resolve(uow, parsed)
            row = JobRow(
                job_id=job_id, description=description, document=document,
                document_source=document_source, target_selection=selection.value,
                status=JobStatus.IN_PROGRESS.value, force_canceled=False, reason_code=None,
                comment=None, presigned_url_config=configs.presigned_to_json(presigned),
                rollout_config=configs.rollout_to_json(rollout),
                abort_config=configs.abort_to_json(abort),
                in_progress_timeout_minutes=timeout,
                template_id=None if template is None else template.template_id,
                rollout_window_start=None, rollout_window_count=0, created_at=change.now,
                last_updated_at=change.now, completed_at=None,
                retry_config=configs.retry_to_json(retry))
            try:
                uow.jobs.insert(row, parsed)
            except StoreConflict:
                raise ResourceAlreadyExistsError(f"Job {job_id} already exists") from None
            row = self._release(change, row, things)
            row = self._complete_if_done(change, row)
            return self._job(uow, row)

    def describe_job(self, job_id: str) -> Job:
        """DescribeJob (with the execution counts).

        :raises ResourceNotFoundError: no such job.
        """
        job_id = check_job_id(job_id)
        with self._read() as uow:
            return self._job(uow, self._require_job(uow, job_id))

    def get_job_document(self, job_id: str) -> str:
        """GetJobDocument.

        :raises ResourceNotFoundError: no such job.
        """
        job_id = check_job_id(job_id)
        with self._read() as uow:
            return self._require_job(uow, job_id).document or "{}"

    def list_jobs(self, *, status: str | None = None, target_selection: str | None = None,
                  thing_group_name: str | None = None, max_results: int | None = None,
                  next_token: str | None = None) -> Page:
        """ListJobs: jobs by id (execution counts are not included).

        :raises InvalidRequestError: a bad filter, page size or token.
        """
        if status is not None:
            try:
                status = JobStatus(status).value
            except ValueError:
                raise InvalidRequestError(f"Invalid job status: {status!r}") from None
        selection = None if target_selection is None else _target_selection(target_selection)
        if thing_group_name is not None:
            check_pattern(thing_group_name, "thingGroupName", THING_NAME)
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.jobs.list_page(
                status=status, target_selection=None if selection is None else selection.value,
                target_group=thing_group_name, limit=limit, token=next_token)
            return [self._job(uow, row, counts=False) for row in rows], token

    def update_job(self, job_id: str, *, description: Any = _UNSET,
                   presigned_url_config: Any = _UNSET, rollout_config: Any = _UNSET,
                   abort_config: Any = _UNSET, timeout_config: Any = _UNSET,
                   retry_config: Any = _UNSET) -> None:
        """UpdateJob: only the arguments given change (``None`` clears a configuration).
        A new timeout applies to executions that start after the change.

        :raises ResourceNotFoundError: no such job.
        :raises InvalidRequestError: a bad value.
        """
        job_id = check_job_id(job_id)
        changes: dict[str, Any] = {}
        if description is not _UNSET:
            changes["description"] = check_text(description, "description")
        if presigned_url_config is not _UNSET:
            changes["presigned_url_config"] = configs.presigned_to_json(
                configs.presigned_from_json(presigned_url_config))
        if rollout_config is not _UNSET:
            changes["rollout_config"] = configs.rollout_to_json(
                configs.rollout_from_json(rollout_config))
        if abort_config is not _UNSET:
            changes["abort_config"] = configs.abort_to_json(configs.abort_from_json(abort_config))
        if timeout_config is not _UNSET:
            changes["in_progress_timeout_minutes"] = configs.timeout_from_json(timeout_config)
        if retry_config is not _UNSET:  # applies to failures from now on
            changes["retry_config"] = configs.retry_to_json(configs.retry_from_json(retry_config))
        with self._change() as change:
            job = self._require_job(change.uow, job_id, for_update=True)
            if changes:
                job = dataclasses.replace(job, last_updated_at=change.now, **changes)
                change.uow.jobs.save(job)
            if "abort_config" in changes:
                self._after_final(change, job_id)

    def cancel_job(self, job_id: str, *, reason_code: str | None = None,
                   comment: str | None = None, force: bool = False) -> Job:
        """CancelJob. Canceling a canceled job again does nothing, unless ``force`` now
        cancels the executions in progress.

        :raises ResourceNotFoundError: no such job.
        :raises InvalidRequestError: the job is COMPLETED; a bad reason code or comment.
        """
        job_id = check_job_id(job_id)
        if reason_code is not None:
            check_pattern(reason_code, "reasonCode", REASON_CODE)
        comment = check_text(comment, "comment")
        with self._change() as change:
            job = self._require_job(change.uow, job_id, for_update=True)
            if job.status == JobStatus.COMPLETED.value:
                raise InvalidRequestError(
                    f"Job {job_id} is COMPLETED and can no longer be canceled")
            if job.status != JobStatus.CANCELED.value or (force and not job.force_canceled):
                job = self._cancel(change, job, force=force, reason_code=reason_code,
                                   comment=comment)
            return self._job(change.uow, job, counts=False)

    def delete_job(self, job_id: str, *, force: bool = False) -> None:
        """DeleteJob: the job and all its executions.

        :raises ResourceNotFoundError: no such job.
        :raises InvalidStateTransitionError: the job, or one of its executions, is in
            progress and ``force`` is not set.
        """
        job_id = check_job_id(job_id)
        with self._change() as change:
            uow = change.uow
            job = self._require_job(uow, job_id, for_update=True)
            in_progress = uow.job_executions.things_with(
                job_id, {ExecutionStatus.IN_PROGRESS.value})
            if not force and (job.status == JobStatus.IN_PROGRESS.value or in_progress):
                raise InvalidStateTransitionError(
                    f"Job {job_id} is in progress (or has executions in progress); "
                    "delete it with force, or cancel it first")
            for thing in uow.job_executions.things_with(job_id, PENDING):
                change.touch(thing)
            uow.job_executions.delete_of_job(job_id)
            uow.jobs.delete(job_id)

    # -- executions -------------------------------------------------------------------------

    def list_job_executions_for_job(self, job_id: str, *, status: str | None = None,
                                    max_results: int | None = None,
                                    next_token: str | None = None) -> Page:
        """ListJobExecutionsForJob: by thing name, then execution number.

        :raises ResourceNotFoundError: no such job.
        """
        job_id = check_job_id(job_id)
        wanted = parse_status(status)
        limit = check_page_size(max_results)
        now = self.now()
        with self._read() as uow, self._page_token():
            self._require_job(uow, job_id)
            rows, token = uow.job_executions.page_of_job(
                job_id, status=None if wanted is None else wanted.value, limit=limit,
                token=next_token)
            return [self._execution(row, now) for row in rows], token

    def list_job_executions_for_thing(self, thing_name: str, *, status: str | None = None,
                                      job_id: str | None = None,
                                      max_results: int | None = None,
                                      next_token: str | None = None) -> Page:
        """ListJobExecutionsForThing: by job id, then execution number.

        :raises ResourceNotFoundError: no such thing.
        """
        thing_name = check_thing_name(thing_name)
        if job_id is not None:
            job_id = check_job_id(job_id)
        wanted = parse_status(status)
        limit = check_page_size(max_results)
        now = self.now()
        with self._read() as uow, self._page_token():
            self._require_thing(uow, thing_name)
            rows, token = uow.job_executions.page_of_thing(
                thing_name, status=None if wanted is None else wanted.value, job_id=job_id,
                limit=limit, token=next_token)
            return [self._execution(row, now) for row in rows], token

    def cancel_job_execution(self, job_id: str, thing_name: str, *, force: bool = False,
                             expected_version: int | None = None,
                             status_details: Mapping[str, str] | None = None) -> None:
        """CancelJobExecution (the latest execution of the job on the thing).

        :raises ResourceNotFoundError: no such execution.
        :raises VersionMismatchError: ``expected_version`` is not the current version.
        :raises InvalidStateTransitionError: final, or IN_PROGRESS without ``force``.
        """
        job_id = check_job_id(job_id)
        thing_name = check_thing_name(thing_name)
        expected = check_expected_version(expected_version)
        details = check_status_details(status_details)
        with self._change() as change:
            row = change.uow.job_executions.get(job_id, thing_name, for_update=True)
            if row is None:
                raise ResourceNotFoundError(
                    f"Job execution of job {job_id} on thing {thing_name} does not exist")
            state = JobExecutionState(ExecutionStatus(row.status), row.status_details,
                                      row.version_number)
            if expected is not None and expected != row.version_number:
                raise VersionMismatchError(
                    f"The expected version {expected} is not the current version "
                    f"{row.version_number}", execution_state=state)
            self._transition(change, row, ExecutionStatus.CANCELED,
                             Actor.OPERATOR_FORCE if force else Actor.OPERATOR,
                             status_details=details, force_canceled=force)
            self._after_final(change, job_id)

    def delete_job_execution(self, job_id: str, thing_name: str, execution_number: int, *,
                             force: bool = False) -> None:
        """DeleteJobExecution.

        :raises ResourceNotFoundError: no such execution.
        :raises InvalidStateTransitionError: the execution is pending and ``force`` is not
            set.
        """
        job_id = check_job_id(job_id)
        thing_name = check_thing_name(thing_name)
        number = check_execution_number(execution_number)
        if number is None:
            raise InvalidRequestError("executionNumber is required")
        with self._change() as change:
            uow = change.uow
            row = uow.job_executions.get(job_id, thing_name, number, for_update=True)
            if row is None:
                raise ResourceNotFoundError(
                    f"Job execution {number} of job {job_id} on thing {thing_name} "
                    "does not exist")
            if row.status in PENDING and not force:
                raise InvalidStateTransitionError(
                    f"The job execution is {row.status}; delete it with force")
            change.touch(thing_name)
            uow.job_executions.delete(job_id, thing_name, number)
            self._after_final(change, job_id)

    # -- job templates ----------------------------------------------------------------------

    def create_job_template(
        self,
        job_template_id: str,
        *,
        description: str,
        job_arn: str | None = None,
        document: str | None = None,
        document_source: str | None = None,
        presigned_url_config: Mapping[str, Any] | None = None,
        rollout_config: Mapping[str, Any] | None = None,
        abort_config: Mapping[str, Any] | None = None,
        timeout_config: Mapping[str, Any] | None = None,
        retry_config: Mapping[str, Any] | None = None,
    ) -> JobTemplate:
        """CreateJobTemplate, from a document or from an existing job (``job_arn``: its
        document and configurations, unless given here).

        :raises InvalidRequestError: a bad id or document, or both a job and a document.
        :raises ResourceNotFoundError: ``job_arn`` names no job.
        :raises ConflictError: a template with this id exists.
        """
        template_id = check_job_id(job_template_id, "jobTemplateId")
        if job_arn is not None and document_source is not None:
            raise InvalidRequestError("Give either jobArn or documentSource, not both")
        document = self._from_source(document, document_source)
        text = check_text(description, "description")
        if text is None:
            raise InvalidRequestError("A job template needs a description")
        if job_arn is not None and document is not None:
            raise InvalidRequestError("Give either jobArn or document, not both")
        presigned = configs.presigned_from_json(presigned_url_config)
        rollout = configs.rollout_from_json(rollout_config)
        abort = configs.abort_from_json(abort_config)
        timeout = configs.timeout_from_json(timeout_config)
        retry = configs.retry_from_json(retry_config)
        if document is not None:
            document = self._document(document)
        with self._change() as change:
            uow = change.uow
            if job_arn is not None:
                _, source_id = self._parse_arn(job_arn, frozenset({JOB}), "jobArn")
                job = uow.jobs.get(source_id)
                if job is None:
                    raise ResourceNotFoundError(f"Job {source_id} does not exist")
                document = check_document(job.document)
                presigned = presigned or configs.presigned_from_json(job.presigned_url_config)
                rollout = rollout or configs.rollout_from_json(job.rollout_config)
                abort = abort or configs.abort_from_json(job.abort_config)
                timeout = timeout if timeout is not None else job.in_progress_timeout_minutes
                retry = retry or configs.retry_from_json(job.retry_config)
            if document is None:
                raise InvalidRequestError("A job template needs a document or a jobArn")
            row = JobTemplateRow(
                template_id=template_id, description=text, document=document,
                document_source=document_source,
                presigned_url_config=configs.presigned_to_json(presigned),
                rollout_config=configs.rollout_to_json(rollout),
                abort_config=configs.abort_to_json(abort), in_progress_timeout_minutes=timeout,
                created_at=change.now, retry_config=configs.retry_to_json(retry))
            if uow.job_templates.get(template_id) is not None:
                raise ConflictError(f"Job template {template_id} already exists")
            try:
                uow.job_templates.insert(row)
            except StoreConflict:
                raise ConflictError(f"Job template {template_id} already exists") from None
            return self._template(row)

    def describe_job_template(self, job_template_id: str) -> JobTemplate:
        """:raises ResourceNotFoundError: no such template."""
        template_id = check_job_id(job_template_id, "jobTemplateId")
        with self._read() as uow:
            row = uow.job_templates.get(template_id)
        if row is None:
            raise ResourceNotFoundError(f"Job template {template_id} does not exist")
        return self._template(row)

    def list_job_templates(self, *, max_results: int | None = None,
                           next_token: str | None = None) -> Page:
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.job_templates.list_page(limit=limit, token=next_token)
        return [self._template(row) for row in rows], token

    def delete_job_template(self, job_template_id: str) -> None:
        """:raises ResourceNotFoundError: no such template."""
        template_id = check_job_id(job_template_id, "jobTemplateId")
        with self._change() as change:
            if not change.uow.job_templates.delete(template_id):
                raise ResourceNotFoundError(f"Job template {template_id} does not exist")

    # -- helpers ------------------------------------------------------------------------------

    def _document(self, document: str) -> str:
        """A document checked: JSON object, size, placeholders (outside a transaction: the
        document source may open its own).

        :raises InvalidRequestError: a bad document or placeholder.
        """
        document = check_document(document)
        if self._documents is not None:
            try:
                self._documents.check_document(document)
            except (LookupError, ValueError) as error:
                raise InvalidRequestError(str(error)) from None
        return document

    def _from_source(self, document: str | None, document_source: str | None) -> str | None:
        """``document``, or the one read from ``document_source``.

        :raises InvalidRequestError: both given, a bad source, or no document source.
        """
        if document_source is None:
            return document
        if not isinstance(document_source, str) or not 1 <= len(document_source) <= 1350:
            raise InvalidRequestError("documentSource must be a URL of 1 to 1350 characters")
        if document is not None:
            raise InvalidRequestError("Give either document or documentSource, not both")
        if self._documents is None:
            raise InvalidRequestError(
                "documentSource is not supported by this Bastion: pass the job document "
                "inline (document) or through a job template")
        try:
            return self._documents.fetch_document(document_source)
        except (LookupError, ValueError) as error:
            raise InvalidRequestError(f"documentSource: {error}") from None

    def _targets(self, targets: Sequence[str]) -> list[JobTargetRow]:
        if isinstance(targets, str) or not isinstance(targets, Sequence) or not targets:
            raise InvalidRequestError("targets must list at least one thing or thing group ARN")
        parsed: list[JobTargetRow] = []
        for arn in targets:
            kind, name = self._parse_arn(arn, frozenset({THING, THING_GROUP}), "target")
            target = JobTargetRow(kind, name)
            if target not in parsed:
                parsed.append(target)
        return parsed

    def _resolve(self, uow: UnitOfWork, targets: Sequence[JobTargetRow]) -> list[str]:
        """The things ``targets`` stand for now, in target order, each once.

        :raises ResourceNotFoundError: a target does not exist.
        """
        things: dict[str, None] = {}
        for target in targets:
            if target.target_type == THING:
                if uow.things.get(target.target_name) is None:
                    raise ResourceNotFoundError(f"Thing {target.target_name} cannot be found")
                things[target.target_name] = None
                continue
            if uow.thing_groups.get(target.target_name) is None:
                raise ResourceNotFoundError(
                    f"Thing group {target.target_name} cannot be found")
            token: str | None = None
            while True:
                names, token = uow.thing_groups.members_page(
                    target.target_name, recursive=True, limit=_MEMBERS_PAGE, token=token)
                things.update(dict.fromkeys(names))
                if not token:
                    break
        return list(things)
