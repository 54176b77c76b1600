"""Billing groups and the things in them (``iot``)."""

from __future__ import annotations

from .._context import OperationContext
from ._common import name_from, page
from ._table import TABLE, Params, Result


@TABLE.register("iot", "CreateBillingGroup")
def create_billing_group(ctx: OperationContext, params: Params) -> Result:
    properties = params.get("billingGroupProperties") or {}
    group = ctx.services.registry.create_billing_group(
        params["billingGroupName"], description=properties.get("billingGroupDescription"),
        tags=params.get("tags"))
    return {"billingGroupName": group.billing_group_name,
            "billingGroupArn": group.billing_group_arn,
            "billingGroupId": group.billing_group_id}


@TABLE.register("iot", "DescribeBillingGroup")
def describe_billing_group(ctx: OperationContext, params: Params) -> Result:
    group = ctx.services.registry.describe_billing_group(params["billingGroupName"])
    properties = ({} if group.description is None
                  else {"billingGroupDescription": group.description})
    return {
        "billingGroupName": group.billing_group_name,
        "billingGroupId": group.billing_group_id,
        "billingGroupArn": group.billing_group_arn,
        "version": group.version,
        "billingGroupProperties": properties,
        "billingGroupMetadata": {"creationDate": group.creation_date},
    }


@TABLE.register("iot", "UpdateBillingGroup")
def update_billing_group(ctx: OperationContext, params: Params) -> Result:
    version = ctx.services.registry.update_billing_group(
        params["billingGroupName"],
        description=params["billingGroupProperties"].get("billingGroupDescription"),
        expected_version=params.get("expectedVersion"))
    return {"version": version}


@TABLE.register("iot", "DeleteBillingGroup")
def delete_billing_group(ctx: OperationContext, params: Params) -> Result:
    ctx.services.registry.delete_billing_group(params["billingGroupName"],
                                               expected_version=params.get("expectedVersion"))
    return {}


@TABLE.register("iot", "ListBillingGroups")
def list_billing_groups(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_billing_groups(
        name_prefix_filter=params.get("namePrefixFilter"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("billingGroups", [{"groupName": item.group_name, "groupArn": item.group_arn}
                                  for item in items], token)


def _membership(ctx: OperationContext, params: Params) -> tuple[str, str]:
    account = ctx.services.account
    group = name_from(params, "billingGroupName", "billingGroupArn", account, "billinggroup")
    thing = name_from(params, "thingName", "thingArn", account, "thing")
    return group, thing


@TABLE.register("iot", "AddThingToBillingGroup")
def add_thing_to_billing_group(ctx: OperationContext, params: Params) -> Result:
    group, thing = _membership(ctx, params)
    ctx.services.registry.add_thing_to_billing_group(billing_group_name=group,
                                                     thing_name=thing)
    return {}


@TABLE.register("iot", "RemoveThingFromBillingGroup")
def remove_thing_from_billing_group(ctx: OperationContext, params: Params) -> Result:
    group, thing = _membership(ctx, params)
    ctx.services.registry.remove_thing_from_billing_group(billing_group_name=group,
                                                          thing_name=thing)
    return {}


@TABLE.register("iot", "ListThingsInBillingGroup")
def list_things_in_billing_group(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_things_in_billing_group(
        params["billingGroupName"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("things", items, token)
