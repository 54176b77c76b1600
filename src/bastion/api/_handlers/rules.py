"""Topic rules and topic rule destinations (``iot``): the rules engine's API.

The handlers translate between AWS's shapes and :class:`bastion.rules.RuleService`;
every refusal is one of the service's errors (``SqlParseException``,
``ResourceAlreadyExistsException``, ``UnauthorizedException`` for a rule that does not
exist, as AWS answers), put on the wire in one place by the API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from bastion.registry import check_tags
from bastion.rules import RuleService
from bastion.store import TopicRuleDestinationRow, TopicRuleRow

from .._context import OperationContext
from ._common import page, refuse_unsupported, tag_created
from ._table import TABLE, Params, Result


def _service(ctx: OperationContext) -> RuleService:
    return ctx.regional.rules


def _rule_json(ctx: OperationContext, row: TopicRuleRow) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "ruleName": row.name,
        "sql": row.sql,
        "description": row.description,
        "createdAt": row.created_at,
        "actions": row.actions,
        "ruleDisabled": row.disabled,
        "awsIotSqlVersion": row.sql_version,
    }
    if row.error_action is not None:
        rule["errorAction"] = row.error_action
    return rule


def _destination_json(ctx: OperationContext, row: TopicRuleDestinationRow,
                      *, summary: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {
        "arn": _service(ctx).destination_arn(row.id),
        "status": row.status,
        "createdAt": row.created_at,
        "lastUpdatedAt": row.last_updated_at,
        "statusReason": row.status_reason,
    }
    key = "httpUrlSummary" if summary else "httpUrlProperties"
    result[key] = {"confirmationUrl": row.confirmation_url}
    return result


@TABLE.register("iot", "CreateTopicRule")
def create_topic_rule(ctx: OperationContext, params: Params) -> Result:
    # CreateTopicRule carries its tags in the x-amz-tagging header, URL-query encoded:
    # "k1=v1&k2=v2".
    header = params.get("tags") or ""
    tags = check_tags([{"Key": key, "Value": value}
                       for key, value in parse_qsl(header, keep_blank_values=True)])
    _service(ctx).create_topic_rule(params["ruleName"], params["topicRulePayload"])
    tag_created(ctx, "rule", params["ruleName"], tags)
    return {}


@TABLE.register("iot", "ReplaceTopicRule")
def replace_topic_rule(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).replace_topic_rule(params["ruleName"], params["topicRulePayload"])
    return {}


@TABLE.register("iot", "GetTopicRule")
def get_topic_rule(ctx: OperationContext, params: Params) -> Result:
    service = _service(ctx)
    row = service.get_topic_rule(params["ruleName"])
    return {"ruleArn": service.rule_arn(row.name), "rule": _rule_json(ctx, row)}


@TABLE.register("iot", "ListTopicRules")
def list_topic_rules(ctx: OperationContext, params: Params) -> Result:
    service = _service(ctx)
    rows, token = service.list_topic_rules(
        topic=params.get("topic"), disabled=params.get("ruleDisabled"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("rules", [{"ruleArn": service.rule_arn(row.name), "ruleName": row.name,
                           "topicPattern": row.topic_pattern, "createdAt": row.created_at,
                           "ruleDisabled": row.disabled} for row in rows], token)


@TABLE.register("iot", "EnableTopicRule")
def enable_topic_rule(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).set_rule_disabled(params["ruleName"], False)
    return {}


@TABLE.register("iot", "DisableTopicRule")
def disable_topic_rule(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).set_rule_disabled(params["ruleName"], True)
    return {}


@TABLE.register("iot", "DeleteTopicRule")
def delete_topic_rule(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_topic_rule(params["ruleName"])
    return {}


@TABLE.register("iot", "CreateTopicRuleDestination")
def create_topic_rule_destination(ctx: OperationContext, params: Params) -> Result:
    configuration = params["destinationConfiguration"]
    refuse_unsupported(configuration, "vpcConfiguration", "influxDBConfiguration")
    http = configuration.get("httpUrlConfiguration") or {}
    row = _service(ctx).create_destination(http.get("confirmationUrl"))
    return {"topicRuleDestination": _destination_json(ctx, row)}


@TABLE.register("iot", "ConfirmTopicRuleDestination")
def confirm_topic_rule_destination(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).confirm_destination(params["confirmationToken"])
    return {}


@TABLE.register("iot", "GetTopicRuleDestination")
def get_topic_rule_destination(ctx: OperationContext, params: Params) -> Result:
    row = _service(ctx).get_destination(params["arn"])
    return {"topicRuleDestination": _destination_json(ctx, row)}


@TABLE.register("iot", "ListTopicRuleDestinations")
def list_topic_rule_destinations(ctx: OperationContext, params: Params) -> Result:
    rows, token = _service(ctx).list_destinations(max_results=params.get("maxResults"),
                                                  next_token=params.get("nextToken"))
    return page("destinationSummaries",
                [_destination_json(ctx, row, summary=True) for row in rows], token)


@TABLE.register("iot", "UpdateTopicRuleDestination")
def update_topic_rule_destination(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).update_destination(params["arn"], params["status"])
    return {}


@TABLE.register("iot", "DeleteTopicRuleDestination")
def delete_topic_rule_destination(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_destination(params["arn"])
    return {}
