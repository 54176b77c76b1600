"""Device Defender audit and mitigation actions (``iot``): account audit configuration,
audit tasks, scheduled audits, findings and related resources, suppressions, audit
mitigation actions tasks and executions, and the mitigation actions themselves.

The handlers call the audit services of the running Bastion's directory
(:class:`bastion.services.Services`); a :class:`~bastion.defender.audit.DefenderError`
becomes its AWS error. Bastion-only resource identifiers (a provisioning template) are
not in AWS's model: findings show them through ``additionalInfo``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from bastion.defender.audit import (
    AccountAuditConfiguration,
    AuditMitigationExecution,
    AuditMitigationTask,
    AuditTask,
    Finding,
    Resource,
    ScheduledAudit,
    Suppression,
)
from bastion.defender.mitigation import MitigationAction
from bastion.services import AuditServices

from .._context import OperationContext
from .._errors import ApiError
from ._common import creation_tags, page, tag_created
from ._table import TABLE, Handler, Params, Result

IOT: Final = "iot"
_AWS_IDENTIFIER_MEMBERS: Final = frozenset({
    "deviceCertificateId", "caCertificateId", "cognitoIdentityPoolId", "clientId",
    "policyVersionIdentifier", "account", "iamRoleArn", "roleAliasArn",
    "issuerCertificateIdentifier", "deviceCertificateArn"})


def _services(ctx: OperationContext) -> AuditServices:
    services = ctx.gateway.services.audit
    if services is None:
        raise ApiError("ServiceUnavailableException", 503,
                       "Device Defender audit is not running")
    return services


def _operation(operation: str) -> Callable[[Handler], Handler]:
    """Register ``operation`` (a DefenderError is answered by the application)."""
    return TABLE.register(IOT, operation)


# -- shapes ---------------------------------------------------------------------------------


def _resource(resource: Resource) -> dict[str, Any]:
    identifier = {k: v for k, v in resource.identifier.as_json().items()
                  if k in _AWS_IDENTIFIER_MEMBERS}
    info = dict(resource.additional_info)
    for key, value in resource.identifier.as_json().items():
        if key not in _AWS_IDENTIFIER_MEMBERS:
            info.setdefault(key, str(value))
    result: dict[str, Any] = {"resourceType": resource.resource_type.value,
                              "resourceIdentifier": identifier}
    if info:
        result["additionalInfo"] = info
    return result


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "findingId": finding.finding_id, "taskId": finding.task_id,
        "checkName": finding.check_name, "taskStartTime": finding.task_start_time,
        "findingTime": finding.finding_time, "severity": finding.severity.value,
        "nonCompliantResource": _resource(finding.non_compliant_resource),
        "relatedResources": [_resource(r) for r in finding.related_resources],
        "reasonForNonCompliance": finding.reason,
        "reasonForNonComplianceCode": finding.reason_code,
        "isSuppressed": finding.is_suppressed,
    }


def _configuration(config: AccountAuditConfiguration) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for name, check in config.checks.items():
        entry: dict[str, Any] = {"enabled": check.enabled}
        if check.configuration:
            entry["configuration"] = dict(check.configuration)
        checks[name] = entry
    targets = {kind: {"targetArn": t.target_arn, "roleArn": t.role_arn, "enabled": t.enabled}
               for kind, t in config.notification_targets.items()}
    return {"roleArn": config.role_arn, "auditNotificationTargetConfigurations": targets,
            "auditCheckConfigurations": checks}


def _scheduled(item: ScheduledAudit) -> dict[str, Any]:
    return {"scheduledAuditName": item.name, "scheduledAuditArn": item.arn,
            "frequency": item.frequency.value,
            "dayOfWeek": None if item.day_of_week is None else item.day_of_week.value,
            "dayOfMonth": item.day_of_month}


def _suppression(item: Suppression) -> dict[str, Any]:
    return {"checkName": item.check_name, "resourceIdentifier": item.identifier.as_json(),
            "expirationDate": item.expiration_date,
            "suppressIndefinitely": item.suppress_indefinitely,
            "description": item.description}


def _task_details(task: AuditTask) -> dict[str, Any]:
    stats = task.statistics
    return {
        "taskStatus": task.status.value, "taskType": task.task_type.value,
        "taskStartTime": task.start_time,
        "taskStatistics": {
            "totalChecks": stats.total_checks, "inProgressChecks": stats.in_progress_checks,
            "waitingForDataCollectionChecks": stats.waiting_for_data_collection_checks,
            "compliantChecks": stats.compliant_checks,
            "nonCompliantChecks": stats.non_compliant_checks,
            "failedChecks": stats.failed_checks, "canceledChecks": stats.canceled_checks},
        "scheduledAuditName": task.scheduled_audit_name,
        "auditDetails": {name: d.as_json() for name, d in task.details.items()},
    }


def _action_definition(action: MitigationAction) -> dict[str, Any]:
    return {"name": action.name, "id": action.action_id, "roleArn": action.role_arn,
            "actionParams": dict(action.params)}


def _mitigation_task(task: AuditMitigationTask, actions: list[MitigationAction]
                     ) -> dict[str, Any]:
    return {
        "taskStatus": task.status.value, "startTime": task.start_time,
        "endTime": task.end_time,
        "taskStatistics": {check: {
            "totalFindingsCount": s.total, "failedFindingsCount": s.failed,
            "succeededFindingsCount": s.succeeded, "skippedFindingsCount": s.skipped,
            "canceledFindingsCount": s.canceled} for check, s in task.statistics.items()},
        "target": task.target.as_json(),
        "auditCheckToActionsMapping": {k: list(v) for k, v in task.actions_mapping.items()},
        "actionsDefinition": [_action_definition(a) for a in actions],
    }


def _execution(item: AuditMitigationExecution) -> dict[str, Any]:
    return {"taskId": item.task_id, "findingId": item.finding_id,
            "actionName": item.action_name, "actionId": item.action_id,
            "status": item.status.value, "startTime": item.start_time,
            "endTime": item.end_time, "errorCode": item.error_code, "message": item.message}


# -- account configuration -------------------------------------------------------------------


@_operation("DescribeAccountAuditConfiguration")
def describe_account_audit_configuration(ctx: OperationContext, params: Params) -> Result:
    return _configuration(_services(ctx).audit.describe_account_audit_configuration())


@_operation("UpdateAccountAuditConfiguration")
def update_account_audit_configuration(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).audit.update_account_audit_configuration(
        role_arn=params.get("roleArn"),
        notification_targets=params.get("auditNotificationTargetConfigurations"),
        check_configurations=params.get("auditCheckConfigurations"))
    return {}


@_operation("DeleteAccountAuditConfiguration")
def delete_account_audit_configuration(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).audit.delete_account_audit_configuration(
        delete_scheduled_audits=bool(params.get("deleteScheduledAudits", False)))
    return {}


# -- audit tasks -----------------------------------------------------------------------------


@_operation("StartOnDemandAuditTask")
def start_on_demand_audit_task(ctx: OperationContext, params: Params) -> Result:
    return {"taskId": _services(ctx).audit.start_on_demand_audit_task(
        params["targetCheckNames"])}


@_operation("DescribeAuditTask")
def describe_audit_task(ctx: OperationContext, params: Params) -> Result:
    return _task_details(_services(ctx).audit.describe_audit_task(params["taskId"]))


@_operation("ListAuditTasks")
def list_audit_tasks(ctx: OperationContext, params: Params) -> Result:
    tasks, token = _services(ctx).audit.list_audit_tasks(
        start_time=params["startTime"], end_time=params["endTime"],
        task_type=params.get("taskType"), task_status=params.get("taskStatus"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("tasks", [{"taskId": t.task_id, "taskStatus": t.status.value,
                           "taskType": t.task_type.value} for t in tasks], token)


@_operation("CancelAuditTask")
def cancel_audit_task(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).audit.cancel_audit_task(params["taskId"])
    return {}


# -- scheduled audits -------------------------------------------------------------------------


@_operation("CreateScheduledAudit")
def create_scheduled_audit(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    created = _services(ctx).audit.create_scheduled_audit(
        params["scheduledAuditName"], frequency=params["frequency"],
        target_check_names=params["targetCheckNames"], day_of_week=params.get("dayOfWeek"),
        day_of_month=params.get("dayOfMonth"))
    tag_created(ctx, "scheduledaudit", params["scheduledAuditName"], tags)
    return {"scheduledAuditArn": created.arn}


@_operation("DescribeScheduledAudit")
def describe_scheduled_audit(ctx: OperationContext, params: Params) -> Result:
    item = _services(ctx).audit.describe_scheduled_audit(params["scheduledAuditName"])
    return {**_scheduled(item), "targetCheckNames": list(item.check_names)}


@_operation("UpdateScheduledAudit")
def update_scheduled_audit(ctx: OperationContext, params: Params) -> Result:
    item = _services(ctx).audit.update_scheduled_audit(
        params["scheduledAuditName"], frequency=params.get("frequency"),
        day_of_week=params.get("dayOfWeek"), day_of_month=params.get("dayOfMonth"),
        target_check_names=params.get("targetCheckNames"))
    return {"scheduledAuditArn": item.arn}


@_operation("DeleteScheduledAudit")
def delete_scheduled_audit(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).audit.delete_scheduled_audit(params["scheduledAuditName"])
    return {}


@_operation("ListScheduledAudits")
def list_scheduled_audits(ctx: OperationContext, params: Params) -> Result:
    items, token = _services(ctx).audit.list_scheduled_audits(
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("scheduledAudits", [_scheduled(i) for i in items], token)


# -- findings ---------------------------------------------------------------------------------


@_operation("ListAuditFindings")
def list_audit_findings(ctx: OperationContext, params: Params) -> Result:
    findings, token = _services(ctx).audit.list_audit_findings(
        task_id=params.get("taskId"), check_name=params.get("checkName"),
        resource_identifier=params.get("resourceIdentifier"),
        start_time=params.get("startTime"), end_time=params.get("endTime"),
        list_suppressed_findings=params.get("listSuppressedFindings"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("findings", [_finding(f) for f in findings], token)


@_operation("DescribeAuditFinding")
def describe_audit_finding(ctx: OperationContext, params: Params) -> Result:
    return {"finding": _finding(_services(ctx).audit.describe_audit_finding(
        params["findingId"]))}


@_operation("ListRelatedResourcesForAuditFinding")
def list_related_resources_for_audit_finding(ctx: OperationContext, params: Params) -> Result:
    items, token = _services(ctx).audit.list_related_resources_for_audit_finding(
        params["findingId"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("relatedResources", [_resource(r) for r in items], token)


# -- suppressions -----------------------------------------------------------------------------


@_operation("CreateAuditSuppression")
def create_audit_suppression(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).audit.create_audit_suppression(
        params["checkName"], params["resourceIdentifier"],
        expiration_date=params.get("expirationDate"),
        suppress_indefinitely=params.get("suppressIndefinitely"),
        description=params.get("description"))
    return {}


@_operation("DescribeAuditSuppression")
def describe_audit_suppression(ctx: OperationContext, params: Params) -> Result:
    return _suppression(_services(ctx).audit.describe_audit_suppression(
        params["checkName"], params["resourceIdentifier"]))


@_operation("UpdateAuditSuppression")
def update_audit_suppression(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).audit.update_audit_suppression(
        params["checkName"], params["resourceIdentifier"],
        expiration_date=params.get("expirationDate"),
        suppress_indefinitely=params.get("suppressIndefinitely"),
        description=params.get("description"))
    return {}


@_operation("DeleteAuditSuppression")
def delete_audit_suppression(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).audit.delete_audit_suppression(params["checkName"],
                                                  params["resourceIdentifier"])
    return {}


@_operation("ListAuditSuppressions")
def list_audit_suppressions(ctx: OperationContext, params: Params) -> Result:
    items, token = _services(ctx).audit.list_audit_suppressions(
        check_name=params.get("checkName"),
        resource_identifier=params.get("resourceIdentifier"),
        ascending_order=params.get("ascendingOrder", True),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("suppressions", [_suppression(i) for i in items], token)


# -- audit mitigation actions tasks -------------------------------------------------------------


@_operation("StartAuditMitigationActionsTask")
def start_audit_mitigation_actions_task(ctx: OperationContext, params: Params) -> Result:
    task_id = _services(ctx).mitigation.start_audit_mitigation_actions_task(
        params["taskId"], target=params["target"],
        audit_check_to_actions_mapping=params["auditCheckToActionsMapping"],
        client_request_token=params.get("clientRequestToken"))
    return {"taskId": task_id}


@_operation("DescribeAuditMitigationActionsTask")
def describe_audit_mitigation_actions_task(ctx: OperationContext, params: Params) -> Result:
    mitigation = _services(ctx).mitigation
    task = mitigation.describe_audit_mitigation_actions_task(params["taskId"])
    return _mitigation_task(task, mitigation.actions_of(task))


@_operation("CancelAuditMitigationActionsTask")
def cancel_audit_mitigation_actions_task(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).mitigation.cancel_audit_mitigation_actions_task(params["taskId"])
    return {}


@_operation("ListAuditMitigationActionsTasks")
def list_audit_mitigation_actions_tasks(ctx: OperationContext, params: Params) -> Result:
    tasks, token = _services(ctx).mitigation.list_audit_mitigation_actions_tasks(
        start_time=params["startTime"], end_time=params["endTime"],
        audit_task_id=params.get("auditTaskId"), finding_id=params.get("findingId"),
        task_status=params.get("taskStatus"), max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("tasks", [{"taskId": t.task_id, "startTime": t.start_time,
                           "taskStatus": t.status.value} for t in tasks], token)


@_operation("ListAuditMitigationActionsExecutions")
def list_audit_mitigation_actions_executions(ctx: OperationContext, params: Params) -> Result:
    items, token = _services(ctx).mitigation.list_audit_mitigation_actions_executions(
        params["taskId"], params["findingId"], action_status=params.get("actionStatus"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("actionsExecutions", [_execution(i) for i in items], token)


# -- mitigation actions -------------------------------------------------------------------------


@_operation("CreateMitigationAction")
def create_mitigation_action(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    action = _services(ctx).actions.create_action(params["actionName"], params["roleArn"],
                                                  params["actionParams"])
    tag_created(ctx, "mitigationaction", action.name, tags)
    return {"actionArn": action.arn, "actionId": action.action_id}


@_operation("DescribeMitigationAction")
def describe_mitigation_action(ctx: OperationContext, params: Params) -> Result:
    action = _services(ctx).actions.describe_action(params["actionName"])
    return {"actionName": action.name, "actionType": action.action_type.value,
            "actionArn": action.arn, "actionId": action.action_id,
            "roleArn": action.role_arn, "actionParams": dict(action.params),
            "creationDate": action.creation_date, "lastModifiedDate": action.last_modified_date}


@_operation("UpdateMitigationAction")
def update_mitigation_action(ctx: OperationContext, params: Params) -> Result:
    action = _services(ctx).actions.update_action(
        params["actionName"], role_arn=params.get("roleArn"),
        action_params=params.get("actionParams"))
    return {"actionArn": action.arn, "actionId": action.action_id}


@_operation("DeleteMitigationAction")
def delete_mitigation_action(ctx: OperationContext, params: Params) -> Result:
    _services(ctx).actions.delete_action(params["actionName"])
    return {}


@_operation("ListMitigationActions")
def list_mitigation_actions(ctx: OperationContext, params: Params) -> Result:
    items, token = _services(ctx).actions.list_actions(
        action_type=params.get("actionType"), max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("actionIdentifiers", [{"actionName": a.name, "actionArn": a.arn,
                                       "creationDate": a.creation_date} for a in items], token)
