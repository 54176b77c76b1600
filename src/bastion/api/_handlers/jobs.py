"""Jobs over HTTPS: the operator's side (``iot``: jobs, executions, templates) and the
device's side (``iot-jobs-data``).

Both call the :class:`~bastion.jobs.JobService` that serves the MQTT jobs topics (both get
it from :class:`bastion.services.Services`), so a job created here is delivered
over MQTT at once, and a device may mix both doors. A :class:`~bastion.jobs.JobsError`
escapes to the application, which answers its AWS error; the few refusals the two
services name differently (a version conflict) are named per service
(:meth:`~bastion.jobs.JobsError.aws_error_type_for`).

``iot-jobs-data`` times (``queuedAt``, …) are epoch seconds (``long`` in the model); the
``iot`` ones are timestamps.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bastion.jobs import (
    ExecutionStatus,
    Job,
    JobExecution,
    JobExecutionState,
    JobService,
    JobTemplate,
    abort_to_json,
    presigned_to_json,
    retry_to_json,
    rollout_to_json,
    timeout_to_json,
)

from .._context import OperationContext
from .._errors import ApiError
from ._common import creation_tags, page, refuse_unsupported, tag_created
from ._table import TABLE, Handler, Params, Result

IOT = "iot"
JOBS_DATA = "iot-jobs-data"


def _service(ctx: OperationContext) -> JobService:
    return ctx.regional.jobs


def _iot(operation: str) -> Callable[[Handler], Handler]:
    return TABLE.register(IOT, operation)


def _data(operation: str) -> Callable[[Handler], Handler]:
    return TABLE.register(JOBS_DATA, operation)


# -- iot: jobs ------------------------------------------------------------------------------------


def _counts(job: Job) -> dict[str, Any]:
    details = job.process_details
    names = {
        ExecutionStatus.CANCELED: "numberOfCanceledThings",
        ExecutionStatus.SUCCEEDED: "numberOfSucceededThings",
        ExecutionStatus.FAILED: "numberOfFailedThings",
        ExecutionStatus.REJECTED: "numberOfRejectedThings",
        ExecutionStatus.QUEUED: "numberOfQueuedThings",
        ExecutionStatus.IN_PROGRESS: "numberOfInProgressThings",
        ExecutionStatus.REMOVED: "numberOfRemovedThings",
        ExecutionStatus.TIMED_OUT: "numberOfTimedOutThings",
    }
    result: dict[str, Any] = {name: details.count(status) for status, name in names.items()}
    result["processingTargets"] = []
    return result


def _job_json(job: Job) -> dict[str, Any]:
    return {
        "jobArn": job.job_arn,
        "jobId": job.job_id,
        "targetSelection": job.target_selection.value,
        "status": job.status.value,
        "forceCanceled": job.force_canceled,
        "reasonCode": job.reason_code,
        "comment": job.comment,
        "targets": list(job.targets),
        "description": job.description,
        "presignedUrlConfig": presigned_to_json(job.presigned_url_config),
        "jobExecutionsRolloutConfig": rollout_to_json(job.rollout_config),
        "abortConfig": abort_to_json(job.abort_config),
        "createdAt": job.created_at,
        "lastUpdatedAt": job.last_updated_at,
        "completedAt": job.completed_at,
        "jobProcessDetails": _counts(job),
        "timeoutConfig": timeout_to_json(job.in_progress_timeout_minutes),
        "jobTemplateArn": job.job_template_arn,
        "isConcurrent": job.is_concurrent,
        "jobExecutionsRetryConfig": retry_to_json(job.retry_config),
    }


@_iot("CreateJob")
def create_job(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "namespaceId",
                       "documentParameters", "schedulingConfig", "destinationPackageVersions")
    tags = creation_tags(params)
    job = _service(ctx).create_job(
        params["jobId"], targets=params["targets"], document=params.get("document"),
        document_source=params.get("documentSource"),
        description=params.get("description"),
        target_selection=params.get("targetSelection"),
        presigned_url_config=params.get("presignedUrlConfig"),
        rollout_config=params.get("jobExecutionsRolloutConfig"),
        abort_config=params.get("abortConfig"), timeout_config=params.get("timeoutConfig"),
        job_template_arn=params.get("jobTemplateArn"),
        retry_config=params.get("jobExecutionsRetryConfig"))
    tag_created(ctx, "job", job.job_id, tags)
    return {"jobArn": job.job_arn, "jobId": job.job_id, "description": job.description}


@_iot("DescribeJob")
def describe_job(ctx: OperationContext, params: Params) -> Result:
    job = _service(ctx).describe_job(params["jobId"])
    return {"documentSource": job.document_source, "job": _job_json(job)}


@_iot("GetJobDocument")
def get_job_document(ctx: OperationContext, params: Params) -> Result:
    return {"document": _service(ctx).get_job_document(params["jobId"])}


@_iot("ListJobs")
def list_jobs(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "namespaceId", "thingGroupId")
    items, token = _service(ctx).list_jobs(
        status=params.get("status"), target_selection=params.get("targetSelection"),
        thing_group_name=params.get("thingGroupName"), max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("jobs", [{
        "jobArn": job.job_arn, "jobId": job.job_id,
        "targetSelection": job.target_selection.value, "status": job.status.value,
        "createdAt": job.created_at, "lastUpdatedAt": job.last_updated_at,
        "completedAt": job.completed_at, "isConcurrent": job.is_concurrent,
    } for job in items], token)


@_iot("UpdateJob")
def update_job(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "namespaceId")
    names = {"description": "description", "presignedUrlConfig": "presigned_url_config",
             "jobExecutionsRolloutConfig": "rollout_config", "abortConfig": "abort_config",
             "timeoutConfig": "timeout_config", "jobExecutionsRetryConfig": "retry_config"}
    # Only what the request carries changes.
    _service(ctx).update_job(params["jobId"], **{
        keyword: params[member] for member, keyword in names.items() if member in params})
    return {}


@_iot("CancelJob")
def cancel_job(ctx: OperationContext, params: Params) -> Result:
    job = _service(ctx).cancel_job(params["jobId"], reason_code=params.get("reasonCode"),
                                   comment=params.get("comment"),
                                   force=bool(params.get("force", False)))
    return {"jobArn": job.job_arn, "jobId": job.job_id, "description": job.description}


@_iot("DeleteJob")
def delete_job(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "namespaceId")
    _service(ctx).delete_job(params["jobId"], force=bool(params.get("force", False)))
    return {}


# -- iot: executions ---------------------------------------------------------------------------


def _summary_for_job(execution: JobExecution) -> dict[str, Any]:
    return {
        "status": execution.status.value,
        "queuedAt": execution.queued_at,
        "startedAt": execution.started_at,
        "lastUpdatedAt": execution.last_updated_at,
        "executionNumber": execution.execution_number,
        "retryAttempt": execution.retry_attempt,
    }


@_iot("ListJobExecutionsForJob")
def list_job_executions_for_job(ctx: OperationContext, params: Params) -> Result:
    items, token = _service(ctx).list_job_executions_for_job(
        params["jobId"], status=params.get("status"), max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("executionSummaries", [
        {"thingArn": e.thing_arn, "jobExecutionSummary": _summary_for_job(e)} for e in items],
        token)


@_iot("ListJobExecutionsForThing")
def list_job_executions_for_thing(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "namespaceId")
    items, token = _service(ctx).list_job_executions_for_thing(
        params["thingName"], status=params.get("status"), job_id=params.get("jobId"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("executionSummaries", [
        {"jobId": e.job_id, "jobExecutionSummary": _summary_for_job(e)} for e in items], token)


@_iot("DescribeJobExecution")
def describe_job_execution(ctx: OperationContext, params: Params) -> Result:
    service = _service(ctx)
    execution = service.describe_job_execution(
        _real_job_id(params["jobId"]), params["thingName"],
        execution_number=params.get("executionNumber"))
    assert execution is not None  # only $next answers None, and it is refused above
    return {"execution": {
        "jobId": execution.job_id,
        "status": execution.status.value,
        "forceCanceled": execution.force_canceled,
        "statusDetails": {"detailsMap": dict(execution.status_details)},
        "thingArn": execution.thing_arn,
        "queuedAt": execution.queued_at,
        "startedAt": execution.started_at,
        "lastUpdatedAt": execution.last_updated_at,
        "executionNumber": execution.execution_number,
        "versionNumber": execution.version_number,
        "approximateSecondsBeforeTimedOut": execution.approximate_seconds_before_timed_out,
    }}


def _real_job_id(job_id: str) -> str:
    if job_id == "$next":  # only the device API knows $next
        raise ApiError("InvalidRequestException", 400,
                       "jobId $next is only valid in the iot-jobs-data API")
    return job_id


@_iot("CancelJobExecution")
def cancel_job_execution(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).cancel_job_execution(
        params["jobId"], params["thingName"], force=bool(params.get("force", False)),
        expected_version=params.get("expectedVersion"),
        status_details=params.get("statusDetails"))
    return {}


@_iot("DeleteJobExecution")
def delete_job_execution(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "namespaceId")
    _service(ctx).delete_job_execution(params["jobId"], params["thingName"],
                                       params["executionNumber"],
                                       force=bool(params.get("force", False)))
    return {}


# -- iot: job templates -----------------------------------------------------------------------


def _template_json(template: JobTemplate) -> dict[str, Any]:
    return {
        "jobTemplateArn": template.job_template_arn,
        "jobTemplateId": template.job_template_id,
        "description": template.description,
        "documentSource": template.document_source,
        "document": template.document,
        "createdAt": template.created_at,
        "presignedUrlConfig": presigned_to_json(template.presigned_url_config),
        "jobExecutionsRolloutConfig": rollout_to_json(template.rollout_config),
        "abortConfig": abort_to_json(template.abort_config),
        "timeoutConfig": timeout_to_json(template.in_progress_timeout_minutes),
        "jobExecutionsRetryConfig": retry_to_json(template.retry_config),
    }


@_iot("CreateJobTemplate")
def create_job_template(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "maintenanceWindows", "destinationPackageVersions")
    tags = creation_tags(params)
    template = _service(ctx).create_job_template(
        params["jobTemplateId"], description=params["description"],
        job_arn=params.get("jobArn"), document=params.get("document"),
        document_source=params.get("documentSource"),
        presigned_url_config=params.get("presignedUrlConfig"),
        rollout_config=params.get("jobExecutionsRolloutConfig"),
        abort_config=params.get("abortConfig"), timeout_config=params.get("timeoutConfig"),
        retry_config=params.get("jobExecutionsRetryConfig"))
    tag_created(ctx, "jobtemplate", template.job_template_id, tags)
    return {"jobTemplateArn": template.job_template_arn,
            "jobTemplateId": template.job_template_id}


@_iot("DescribeJobTemplate")
def describe_job_template(ctx: OperationContext, params: Params) -> Result:
    return _template_json(_service(ctx).describe_job_template(params["jobTemplateId"]))


@_iot("ListJobTemplates")
def list_job_templates(ctx: OperationContext, params: Params) -> Result:
    items, token = _service(ctx).list_job_templates(max_results=params.get("maxResults"),
                                                    next_token=params.get("nextToken"))
    return page("jobTemplates", [{
        "jobTemplateArn": t.job_template_arn, "jobTemplateId": t.job_template_id,
        "description": t.description, "createdAt": t.created_at} for t in items], token)


@_iot("DeleteJobTemplate")
def delete_job_template(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_job_template(params["jobTemplateId"])
    return {}


# -- iot-jobs-data: the device's side -------------------------------------------------------------


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else calendar.timegm(moment.utctimetuple())


def _data_summary(execution: JobExecution) -> dict[str, Any]:
    return {
        "jobId": execution.job_id,
        "queuedAt": _epoch(execution.queued_at),
        "startedAt": _epoch(execution.started_at),
        "lastUpdatedAt": _epoch(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }


def _data_execution(execution: JobExecution) -> dict[str, Any]:
    return {
        "jobId": execution.job_id,
        "thingName": execution.thing_name,
        "status": execution.status.value,
        "statusDetails": dict(execution.status_details) or None,
        "queuedAt": _epoch(execution.queued_at),
        "startedAt": _epoch(execution.started_at),
        "lastUpdatedAt": _epoch(execution.last_updated_at),
        "approximateSecondsBeforeTimedOut": execution.approximate_seconds_before_timed_out,
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
        "jobDocument": execution.job_document,
    }


def _data_state(state: JobExecutionState) -> dict[str, Any]:
    return {"status": state.status.value,
            "statusDetails": dict(state.status_details) or None,
            "versionNumber": state.version_number}


@_data("GetPendingJobExecutions")
def get_pending_job_executions(ctx: OperationContext, params: Params) -> Result:
    pending = _service(ctx).get_pending_job_executions(params["thingName"])
    return {"inProgressJobs": [_data_summary(e) for e in pending.in_progress],
            "queuedJobs": [_data_summary(e) for e in pending.queued]}


@_data("StartNextPendingJobExecution")
def start_next_pending_job_execution(ctx: OperationContext, params: Params) -> Result:
    execution = _service(ctx).start_next_pending_job_execution(
        params["thingName"], status_details=params.get("statusDetails"),
        step_timeout_in_minutes=params.get("stepTimeoutInMinutes"))
    return {} if execution is None else {"execution": _data_execution(execution)}


@_data("DescribeJobExecution")
def describe_job_execution_data(ctx: OperationContext, params: Params) -> Result:
    execution = _service(ctx).describe_job_execution(
        params["jobId"], params["thingName"], execution_number=params.get("executionNumber"),
        include_job_document=bool(params.get("includeJobDocument", False)))
    return {} if execution is None else {"execution": _data_execution(execution)}


@_data("UpdateJobExecution")
def update_job_execution(ctx: OperationContext, params: Params) -> Result:
    updated = _service(ctx).update_job_execution(
        params["jobId"], params["thingName"], params["status"],
        status_details=params.get("statusDetails"),
        expected_version=params.get("expectedVersion"),
        execution_number=params.get("executionNumber"),
        step_timeout_in_minutes=params.get("stepTimeoutInMinutes"))
    result: dict[str, Any] = {}
    if params.get("includeJobExecutionState"):
        result["executionState"] = _data_state(updated.execution_state)
    if params.get("includeJobDocument"):
        result["jobDocument"] = updated.job_document
    return result
