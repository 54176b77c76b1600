"""Thing groups — static and dynamic — and their membership (``iot``)."""

from __future__ import annotations

from typing import Any

from bastion.registry import GroupNameAndArn

from .._context import OperationContext
from ._common import creation_tags, name_from, page, tag_created
from ._table import TABLE, Params, Result


def _group_ref(ref: GroupNameAndArn) -> dict[str, str]:
    return {"groupName": ref.group_name, "groupArn": ref.group_arn}


@TABLE.register("iot", "CreateThingGroup")
def create_thing_group(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    properties = params.get("thingGroupProperties") or {}
    payload = properties.get("attributePayload") or {}
    group = ctx.services.registry.create_thing_group(
        params["thingGroupName"],
        parent_group_name=params.get("parentGroupName"),
        description=properties.get("thingGroupDescription"),
        attributes=payload.get("attributes"),
    )
    tag_created(ctx, "thinggroup", group.thing_group_name, tags)
    return {"thingGroupName": group.thing_group_name, "thingGroupArn": group.thing_group_arn,
            "thingGroupId": group.thing_group_id}


@TABLE.register("iot", "DescribeThingGroup")
def describe_thing_group(ctx: OperationContext, params: Params) -> Result:
    group = ctx.services.registry.describe_thing_group(params["thingGroupName"])
    result: dict[str, Any] = {
        "thingGroupName": group.thing_group_name,
        "thingGroupId": group.thing_group_id,
        "thingGroupArn": group.thing_group_arn,
        "version": group.version,
        "thingGroupProperties": {
            "thingGroupDescription": group.description,
            "attributePayload": {"attributes": dict(group.attributes)},
        },
        "thingGroupMetadata": {
            "parentGroupName": group.parent_group_name,
            "rootToParentThingGroups": [_group_ref(r)
                                        for r in group.root_to_parent_thing_groups],
            "creationDate": group.creation_date,
        },
    }
    if group.dynamic:
        result.update(indexName=group.index_name, queryString=group.query_string,
                      queryVersion=group.query_version, status="ACTIVE")
    return result


@TABLE.register("iot", "UpdateThingGroup")
def update_thing_group(ctx: OperationContext, params: Params) -> Result:
    properties = params["thingGroupProperties"]
    payload = properties.get("attributePayload")
    version = ctx.services.registry.update_thing_group(
        params["thingGroupName"],
        description=properties.get("thingGroupDescription"),
        attributes=None if payload is None else payload.get("attributes", {}),
        merge=bool(payload.get("merge", False)) if payload is not None else False,
        expected_version=params.get("expectedVersion"),
    )
    return {"version": version}


@TABLE.register("iot", "DeleteThingGroup")
def delete_thing_group(ctx: OperationContext, params: Params) -> Result:
    ctx.services.registry.delete_thing_group(params["thingGroupName"],
                                             expected_version=params.get("expectedVersion"))
    return {}


@TABLE.register("iot", "ListThingGroups")
def list_thing_groups(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_thing_groups(
        parent_group=params.get("parentGroup"),
        name_prefix_filter=params.get("namePrefixFilter"),
        recursive=params.get("recursive", True),
        max_results=params.get("maxResults"),
        next_token=params.get("nextToken"),
    )
    return page("thingGroups", [_group_ref(item) for item in items], token)


def _membership(ctx: OperationContext, params: Params) -> tuple[str, str]:
    account = ctx.services.account
    group = name_from(params, "thingGroupName", "thingGroupArn", account, "thinggroup")
    thing = name_from(params, "thingName", "thingArn", account, "thing")
    return group, thing


@TABLE.register("iot", "AddThingToThingGroup")
def add_thing_to_thing_group(ctx: OperationContext, params: Params) -> Result:
    group, thing = _membership(ctx, params)
    ctx.services.registry.add_thing_to_thing_group(
        thing_group_name=group, thing_name=thing,
        override_dynamic_groups=bool(params.get("overrideDynamicGroups", False)))
    return {}


@TABLE.register("iot", "RemoveThingFromThingGroup")
def remove_thing_from_thing_group(ctx: OperationContext, params: Params) -> Result:
    group, thing = _membership(ctx, params)
    ctx.services.registry.remove_thing_from_thing_group(thing_group_name=group,
                                                        thing_name=thing)
    return {}


@TABLE.register("iot", "UpdateThingGroupsForThing")
def update_thing_groups_for_thing(ctx: OperationContext, params: Params) -> Result:
    registry = ctx.services.registry
    thing = params.get("thingName")
    if thing is None:
        return {}
    for group in params.get("thingGroupsToRemove") or []:
        registry.remove_thing_from_thing_group(thing_group_name=group, thing_name=thing)
    for group in params.get("thingGroupsToAdd") or []:
        registry.add_thing_to_thing_group(thing_group_name=group, thing_name=thing)
    return {}


@TABLE.register("iot", "ListThingsInThingGroup")
def list_things_in_thing_group(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_things_in_thing_group(
        params["thingGroupName"], recursive=params.get("recursive", False),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("things", items, token)


@TABLE.register("iot", "ListThingGroupsForThing")
def list_thing_groups_for_thing(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_thing_groups_for_thing(
        params["thingName"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("thingGroups", [_group_ref(item) for item in items], token)


# -- dynamic thing groups ------------------------------------------------------------


@TABLE.register("iot", "CreateDynamicThingGroup")
def create_dynamic_thing_group(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    properties = params.get("thingGroupProperties") or {}
    payload = properties.get("attributePayload") or {}
    group = ctx.gateway.services.dynamic_groups.create(
        ctx.services.registry, params["thingGroupName"],
        query_string=params["queryString"], index_name=params.get("indexName"),
        query_version=params.get("queryVersion"),
        description=properties.get("thingGroupDescription"),
        attributes=payload.get("attributes"))
    tag_created(ctx, "thinggroup", group.thing_group_name, tags)
    return {"thingGroupName": group.thing_group_name, "thingGroupArn": group.thing_group_arn,
            "thingGroupId": group.thing_group_id, "indexName": group.index_name,
            "queryString": group.query_string, "queryVersion": group.query_version}


@TABLE.register("iot", "UpdateDynamicThingGroup")
def update_dynamic_thing_group(ctx: OperationContext, params: Params) -> Result:
    properties = params["thingGroupProperties"]
    payload = properties.get("attributePayload")
    version = ctx.gateway.services.dynamic_groups.update(
        ctx.services.registry, params["thingGroupName"],
        query_string=params.get("queryString"), index_name=params.get("indexName"),
        query_version=params.get("queryVersion"),
        description=properties.get("thingGroupDescription"),
        attributes=None if payload is None else payload.get("attributes", {}),
        merge=bool(payload.get("merge", False)) if payload is not None else False,
        expected_version=params.get("expectedVersion"))
    return {"version": version}


@TABLE.register("iot", "DeleteDynamicThingGroup")
def delete_dynamic_thing_group(ctx: OperationContext, params: Params) -> Result:
    ctx.gateway.services.dynamic_groups.delete(
        ctx.services.registry, params["thingGroupName"],
        expected_version=params.get("expectedVersion"))
    return {}
