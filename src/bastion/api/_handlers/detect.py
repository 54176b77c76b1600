"""Device Defender detect (``iot``): security profiles and their targets, behaviors
validation, custom metrics, dimensions, violations and metric values.

The handlers call the detect service of the running Bastion's directory
(:class:`bastion.services.Services`); a
:class:`~bastion.defender.detect.DetectError` becomes its AWS error. Two Bastion
extensions ride on profile tags, since AWS's model has no member for them:
``bastion:mitigationActions`` (comma-separated mitigation action names applied when a
behavior goes in-alarm) and ``bastion:severeBehaviors`` (behaviors whose violation
deactivates the device's certificates). List operations page with an offset token.
Detect mitigation actions tasks run on the app's
:class:`~bastion.defender.detect.DetectMitigationTasks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from bastion.defender.audit import DefenderError
from bastion.defender.detect import (
    DetectError,
    DetectMitigationTask,
    DetectMitigationTasks,
    DetectService,
    SecurityProfile,
    dimension_key,
)

from .._context import OperationContext
from .._errors import ApiError, invalid_request
from ._common import creation_tags, page, tag_created
from ._table import TABLE, Handler, Params, Result

IOT: Final = "iot"
MITIGATION_TAG: Final = "bastion:mitigationActions"
SEVERE_TAG: Final = "bastion:severeBehaviors"
T = TypeVar("T")


def _detect(ctx: OperationContext) -> DetectService:
    detect = ctx.gateway.services.detect
    service = None if detect is None else detect.service
    if service is None:
        raise ApiError("ServiceUnavailableException", 503,
                       "Device Defender detect is not running")
    return service


def _operation(operation: str) -> Callable[[Handler], Handler]:
    """Register ``operation`` (a DetectError is answered by the application)."""
    return TABLE.register(IOT, operation)


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    raise invalid_request("a timestamp is required")


def _paged(items: Sequence[T], params: Params) -> tuple[list[T], str | None]:
    token = params.get("nextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise invalid_request("bad nextToken") from None
    size = params.get("maxResults") or 250
    if not 1 <= size <= 250:
        raise invalid_request("maxResults must be 1..250")
    chunk = list(items[start:start + size])
    return chunk, (str(start + size) if start + size < len(items) else None)


def _tags(params: Params) -> dict[str, str]:
    return {t.get("Key", ""): t.get("Value", "") for t in params.get("tags") or ()}


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _behaviors(raw: object, severe: list[str]) -> object:
    if not isinstance(raw, list):
        return raw
    return [{**b, "severe": True} if isinstance(b, dict) and b.get("name") in severe else b
            for b in raw]


def _profile(service: DetectService, profile: SecurityProfile) -> dict[str, Any]:
    result: dict[str, Any] = {
        "securityProfileName": profile.name,
        "securityProfileArn": service.target_arn(f"securityprofile/{profile.name}"),
        "securityProfileDescription": profile.description,
        "behaviors": [b.to_json() for b in profile.behaviors],
        "alertTargets": profile.alert_targets,
        "additionalMetricsToRetainV2": list(profile.additional_metrics),
        "version": profile.version,
        "creationDate": _time(profile.creation_date),
        "lastModifiedDate": _time(profile.last_modified_date),
    }
    if profile.metrics_export is not None:
        result["metricsExportConfig"] = dict(profile.metrics_export)
    return result


# -- security profiles -----------------------------------------------------------------------


@_operation("CreateSecurityProfile")
def create_security_profile(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    all_tags = creation_tags(params)
    tags = _tags(params)
    profile = service.create_security_profile(
        params["securityProfileName"],
        behaviors=_behaviors(params.get("behaviors") or [], _split(tags.get(SEVERE_TAG))),
        description=params.get("securityProfileDescription") or "",
        alert_targets=params.get("alertTargets"),
        additional_metrics=params.get("additionalMetricsToRetainV2") or [
            {"metric": m} for m in params.get("additionalMetricsToRetain") or ()],
        mitigation_actions=_split(tags.get(MITIGATION_TAG)),
        metrics_export=params.get("metricsExportConfig"), now=service.clock.time())
    tag_created(ctx, "securityprofile", profile.name, all_tags)
    return {"securityProfileName": profile.name,
            "securityProfileArn": service.target_arn(f"securityprofile/{profile.name}")}


@_operation("DescribeSecurityProfile")
def describe_security_profile(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    return _profile(service, service.describe_security_profile(params["securityProfileName"]))


@_operation("UpdateSecurityProfile")
def update_security_profile(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    name = params["securityProfileName"]
    current = service.describe_security_profile(name)
    severe = [b.name for b in current.behaviors if b.severe]
    metrics = params.get("additionalMetricsToRetainV2")
    if metrics is None and params.get("additionalMetricsToRetain") is not None:
        metrics = [{"metric": m} for m in params["additionalMetricsToRetain"]]
    profile = service.update_security_profile(
        name, expected_version=params.get("expectedVersion"),
        behaviors=_behaviors(params.get("behaviors"), severe),
        description=params.get("securityProfileDescription"),
        alert_targets=params.get("alertTargets"), additional_metrics=metrics,
        delete_behaviors=bool(params.get("deleteBehaviors")),
        delete_alert_targets=bool(params.get("deleteAlertTargets")),
        metrics_export=params.get("metricsExportConfig"),
        delete_metrics_export=bool(params.get("deleteMetricsExportConfig")),
        now=service.clock.time())
    return _profile(service, profile)


@_operation("DeleteSecurityProfile")
def delete_security_profile(ctx: OperationContext, params: Params) -> Result:
    _detect(ctx).delete_security_profile(params["securityProfileName"],
                                         params.get("expectedVersion"))
    return {}


@_operation("ListSecurityProfiles")
def list_security_profiles(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    profiles = service.list_security_profiles()
    if params.get("metricName"):
        profiles = [p for p in profiles
                    if any(b.metric == params["metricName"] for b in p.behaviors)]
    if params.get("dimensionName"):
        profiles = [p for p in profiles if any(
            b.metric_dimension and b.metric_dimension.dimension_name == params["dimensionName"]
            for b in p.behaviors)]
    items, token = _paged(profiles, params)
    return page("securityProfileIdentifiers", [
        {"name": p.name, "arn": service.target_arn(f"securityprofile/{p.name}")}
        for p in items], token)


@_operation("AttachSecurityProfile")
def attach_security_profile(ctx: OperationContext, params: Params) -> Result:
    _detect(ctx).attach(params["securityProfileName"], params["securityProfileTargetArn"])
    return {}


@_operation("DetachSecurityProfile")
def detach_security_profile(ctx: OperationContext, params: Params) -> Result:
    _detect(ctx).detach(params["securityProfileName"], params["securityProfileTargetArn"])
    return {}


@_operation("ListTargetsForSecurityProfile")
def list_targets_for_security_profile(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    profile = service.describe_security_profile(params["securityProfileName"])
    items, token = _paged(sorted(profile.targets), params)
    return page("securityProfileTargets", [{"arn": service.target_arn(t)} for t in items],
                token)


@_operation("ListSecurityProfilesForTarget")
def list_security_profiles_for_target(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    found = service.profiles_for_target(params["securityProfileTargetArn"])
    items, token = _paged(found, params)
    return page("securityProfileTargetMappings", [{
        "securityProfileIdentifier": {
            "name": p.name, "arn": service.target_arn(f"securityprofile/{p.name}")},
        "target": {"arn": service.target_arn(key)}} for p, key in items], token)


@_operation("ValidateSecurityProfileBehaviors")
def validate_security_profile_behaviors(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    errors = []
    for behavior in params.get("behaviors") or ():
        try:
            service.validate_behaviors([behavior])
        except DetectError as error:
            errors.append({"errorMessage": error.message})
    return {"valid": not errors, "validationErrors": errors}


# -- custom metrics and dimensions ------------------------------------------------------------


@_operation("CreateCustomMetric")
def create_custom_metric(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    tags = creation_tags(params)
    metric = service.create_custom_metric(params["metricName"], params["metricType"],
                                          params.get("displayName") or "")
    tag_created(ctx, "custommetric", metric.name, tags)
    return {"metricName": metric.name,
            "metricArn": service.target_arn(f"custommetric/{metric.name}")}


def _custom(service: DetectService, name: str) -> dict[str, Any]:
    metric = service.describe_custom_metric(name)
    return {"metricName": metric.name,
            "metricArn": service.target_arn(f"custommetric/{metric.name}"),
            "metricType": metric.metric_type.value, "displayName": metric.display_name}


@_operation("DescribeCustomMetric")
def describe_custom_metric(ctx: OperationContext, params: Params) -> Result:
    return _custom(_detect(ctx), params["metricName"])


@_operation("UpdateCustomMetric")
def update_custom_metric(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    service.update_custom_metric(params["metricName"], params["displayName"])
    return _custom(service, params["metricName"])


@_operation("DeleteCustomMetric")
def delete_custom_metric(ctx: OperationContext, params: Params) -> Result:
    _detect(ctx).delete_custom_metric(params["metricName"])
    return {}


@_operation("ListCustomMetrics")
def list_custom_metrics(ctx: OperationContext, params: Params) -> Result:
    items, token = _paged(sorted(_detect(ctx).custom_metrics), params)
    return page("metricNames", items, token)


def _dimension(service: DetectService, name: str) -> dict[str, Any]:
    dimension = service.describe_dimension(name)
    return {"name": dimension.name, "arn": service.target_arn(f"dimension/{dimension.name}"),
            "type": dimension.type, "stringValues": list(dimension.string_values)}


@_operation("CreateDimension")
def create_dimension(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    tags = creation_tags(params)
    dimension = service.create_dimension(params["name"], params["type"],
                                         list(params["stringValues"]))
    tag_created(ctx, "dimension", dimension.name, tags)
    return {"name": dimension.name, "arn": service.target_arn(f"dimension/{dimension.name}")}


@_operation("DescribeDimension")
def describe_dimension(ctx: OperationContext, params: Params) -> Result:
    return _dimension(_detect(ctx), params["name"])


@_operation("UpdateDimension")
def update_dimension(ctx: OperationContext, params: Params) -> Result:
    service = _detect(ctx)
    service.update_dimension(params["name"], list(params["stringValues"]))
    return _dimension(service, params["name"])


@_operation("DeleteDimension")
def delete_dimension(ctx: OperationContext, params: Params) -> Result:
    _detect(ctx).delete_dimension(params["name"])
    return {}


@_operation("ListDimensions")
def list_dimensions(ctx: OperationContext, params: Params) -> Result:
    items, token = _paged(sorted(_detect(ctx).dimensions), params)
    return page("dimensionNames", items, token)


# -- violations and metric values -------------------------------------------------------------


def _filters(params: Params) -> dict[str, Any]:
    return {"thing_name": params.get("thingName"),
            "security_profile_name": params.get("securityProfileName"),
            "criteria_type": params.get("behaviorCriteriaType"),
            "list_suppressed": params.get("listSuppressedAlerts"),
            "verification_state": params.get("verificationState")}


def _dated(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if key in document:
            document[key] = _time(document[key])
    return document


@_operation("ListActiveViolations")
def list_active_violations(ctx: OperationContext, params: Params) -> Result:
    found = _detect(ctx).list_active_violations(**_filters(params))
    items, token = _paged(found, params)
    return page("activeViolations", [
        _dated(v.to_json(), "lastViolationTime", "violationStartTime") for v in items], token)


@_operation("ListViolationEvents")
def list_violation_events(ctx: OperationContext, params: Params) -> Result:
    found = _detect(ctx).list_violation_events(
        _epoch(params.get("startTime")), _epoch(params.get("endTime")), **_filters(params))
    items, token = _paged(found, params)
    return page("violationEvents", [_dated(e.to_json(), "violationEventTime") for e in items],
                token)


@_operation("GetBehaviorModelTrainingSummaries")
def get_behavior_model_training_summaries(ctx: OperationContext, params: Params) -> Result:
    found = _detect(ctx).training_summaries(params.get("securityProfileName"))
    size = params.get("maxResults") or 10
    if not 1 <= size <= 10:
        raise invalid_request("maxResults must be 1..10")
    items, token = _paged(found, {**params, "maxResults": size})
    summaries = []
    for item in items:
        status = item.status
        summary: dict[str, Any] = {
            "securityProfileName": item.security_profile_name,
            "behaviorName": item.behavior_name, "modelStatus": status.status,
            "datapointsCollectionPercentage": status.collection_percentage}
        if status.started is not None:
            summary["trainingDataCollectionStartDate"] = _time(status.started)
        if status.refreshed is not None:
            summary["lastModelRefreshDate"] = _time(status.refreshed)
        summaries.append(summary)
    return {"summaries": summaries, "nextToken": token}


@_operation("PutVerificationStateOnViolation")
def put_verification_state_on_violation(ctx: OperationContext, params: Params) -> Result:
    _detect(ctx).put_verification_state(params["violationId"], params["verificationState"],
                                        params.get("verificationStateDescription"))
    return {}


@_operation("ListMetricValues")
def list_metric_values(ctx: OperationContext, params: Params) -> Result:
    dimension = params.get("dimensionName")
    values = _detect(ctx).list_metric_values(
        params["thingName"], params["metricName"], _epoch(params.get("startTime")),
        _epoch(params.get("endTime")),
        None if dimension is None else dimension_key(
            dimension, params.get("dimensionValueOperator") or "IN"))
    items, token = _paged(values, params)
    return page("metricDatumList", [{"timestamp": _time(t), "value": v.to_json()}
                                    for t, v in items], token)


# -- detect mitigation actions tasks ----------------------------------------------------------


def _tasks(ctx: OperationContext) -> DetectMitigationTasks:
    tasks = _detect(ctx).mitigation_tasks
    if tasks is None:
        raise ApiError("ServiceUnavailableException", 503,
                       "detect mitigation actions tasks are not running")
    return tasks


def _task_summary(ctx: OperationContext, task: DetectMitigationTask) -> dict[str, Any]:
    actions = ctx.regional.mitigation_actions
    definitions = []
    for name in task.action_names:
        try:
            action = actions.describe_action(name)
        except DefenderError:
            continue
        definitions.append({"name": action.name, "id": action.action_id,
                            "roleArn": action.role_arn,
                            "actionParams": dict(action.params)})
    summary: dict[str, Any] = {
        "taskId": task.task_id, "taskStatus": task.status.value,
        "taskStartTime": _time(task.start_time), "target": task.target_json(),
        "onlyActiveViolationsIncluded": task.only_active,
        "suppressedAlertsIncluded": task.include_suppressed,
        "actionsDefinition": definitions,
        "taskStatistics": {"actionsExecuted": task.executed,
                           "actionsSkipped": task.skipped, "actionsFailed": task.failed},
    }
    if task.end_time is not None:
        summary["taskEndTime"] = _time(task.end_time)
    if task.occurrence_range is not None:
        summary["violationEventOccurrenceRange"] = {
            "startTime": _time(task.occurrence_range[0]),
            "endTime": _time(task.occurrence_range[1])}
    return summary


@_operation("StartDetectMitigationActionsTask")
def start_detect_mitigation_actions_task(ctx: OperationContext, params: Params) -> Result:
    occurrence = params.get("violationEventOccurrenceRange")
    task_id = _tasks(ctx).start(
        params["taskId"], target=params["target"], actions=params["actions"],
        client_request_token=params["clientRequestToken"],
        occurrence_range=None if occurrence is None else (
            _epoch(occurrence["startTime"]), _epoch(occurrence["endTime"])),
        only_active=bool(params.get("includeOnlyActiveViolations")),
        include_suppressed=bool(params.get("includeSuppressedAlerts")))
    return {"taskId": task_id}


@_operation("DescribeDetectMitigationActionsTask")
def describe_detect_mitigation_actions_task(ctx: OperationContext, params: Params) -> Result:
    return {"taskSummary": _task_summary(ctx, _tasks(ctx).describe(params["taskId"]))}


@_operation("CancelDetectMitigationActionsTask")
def cancel_detect_mitigation_actions_task(ctx: OperationContext, params: Params) -> Result:
    _tasks(ctx).cancel(params["taskId"])
    return {}


@_operation("ListDetectMitigationActionsTasks")
def list_detect_mitigation_actions_tasks(ctx: OperationContext, params: Params) -> Result:
    found = _tasks(ctx).list_tasks(_epoch(params.get("startTime")),
                                   _epoch(params.get("endTime")))
    items, token = _paged(found, params)
    return page("tasks", [_task_summary(ctx, t) for t in items], token)


@_operation("ListDetectMitigationActionsExecutions")
def list_detect_mitigation_actions_executions(ctx: OperationContext, params: Params
                                              ) -> Result:
    start, end = params.get("startTime"), params.get("endTime")
    found = _tasks(ctx).list_executions(
        task_id=params.get("taskId"), violation_id=params.get("violationId"),
        thing_name=params.get("thingName"),
        start=None if start is None else _epoch(start),
        end=None if end is None else _epoch(end))
    items, token = _paged(found, params)
    executions = []
    for e in items:
        item: dict[str, Any] = {
            "taskId": e.task_id, "violationId": e.violation_id, "actionName": e.action_name,
            "thingName": e.thing_name, "executionStartDate": _time(e.start),
            "status": e.status.value}
        if e.end is not None:
            item["executionEndDate"] = _time(e.end)
        if e.error_code is not None:
            item["errorCode"] = e.error_code
        if e.message is not None:
            item["message"] = e.message
        executions.append(item)
    return page("actionsExecutions", executions, token)
