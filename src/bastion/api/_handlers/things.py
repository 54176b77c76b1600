"""Things, thing types and thing principals (``iot``)."""

from __future__ import annotations

from typing import Any

from bastion.registry import Thing, ThingType

from .._context import OperationContext
from .._errors import invalid_request
from ._common import creation_tags, page, refuse_unsupported, tag_created
from ._table import TABLE, Params, Result

NON_EXCLUSIVE_THING = "NON_EXCLUSIVE_THING"


def _attributes(params: Params) -> tuple[dict[str, str] | None, bool]:
    payload = params.get("attributePayload")
    if payload is None:
        return None, False
    return payload.get("attributes"), bool(payload.get("merge", False))


def _thing_type_json(thing_type: ThingType) -> dict[str, Any]:
    return {
        "thingTypeName": thing_type.thing_type_name,
        "thingTypeArn": thing_type.thing_type_arn,
        "thingTypeProperties": {
            "thingTypeDescription": thing_type.description,
            "searchableAttributes": list(thing_type.searchable_attributes),
        },
        "thingTypeMetadata": {
            "deprecated": thing_type.deprecated,
            "deprecationDate": thing_type.deprecation_date,
            "creationDate": thing_type.creation_date,
        },
    }


def _thing_summary(thing: Thing) -> dict[str, Any]:
    return {
        "thingName": thing.thing_name,
        "thingTypeName": thing.thing_type_name,
        "thingArn": thing.thing_arn,
        "attributes": dict(thing.attributes),
        "version": thing.version,
    }


# -- thing types ------------------------------------------------------------------------


@TABLE.register("iot", "CreateThingType")
def create_thing_type(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    properties = params.get("thingTypeProperties") or {}
    refuse_unsupported(properties, "mqtt5Configuration")
    created = ctx.services.registry.create_thing_type(
        params["thingTypeName"],
        description=properties.get("thingTypeDescription"),
        searchable_attributes=properties.get("searchableAttributes") or (),
    )
    tag_created(ctx, "thingtype", created.thing_type_name, tags)
    return {"thingTypeName": created.thing_type_name, "thingTypeArn": created.thing_type_arn,
            "thingTypeId": created.thing_type_id}


@TABLE.register("iot", "DescribeThingType")
def describe_thing_type(ctx: OperationContext, params: Params) -> Result:
    thing_type = ctx.services.registry.describe_thing_type(params["thingTypeName"])
    return {**_thing_type_json(thing_type), "thingTypeId": thing_type.thing_type_id}


@TABLE.register("iot", "ListThingTypes")
def list_thing_types(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_thing_types(
        thing_type_name=params.get("thingTypeName"), max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("thingTypes", [_thing_type_json(item) for item in items], token)


@TABLE.register("iot", "DeprecateThingType")
def deprecate_thing_type(ctx: OperationContext, params: Params) -> Result:
    ctx.services.registry.deprecate_thing_type(
        params["thingTypeName"], undo_deprecate=params.get("undoDeprecate", False))
    return {}


@TABLE.register("iot", "DeleteThingType")
def delete_thing_type(ctx: OperationContext, params: Params) -> Result:
    ctx.services.registry.delete_thing_type(params["thingTypeName"])
    return {}


# -- things -----------------------------------------------------------------------------


@TABLE.register("iot", "CreateThing")
def create_thing(ctx: OperationContext, params: Params) -> Result:
    attributes, _merge = _attributes(params)
    thing = ctx.services.registry.create_thing(
        params["thingName"], thing_type_name=params.get("thingTypeName"),
        attributes=attributes, billing_group_name=params.get("billingGroupName"))
    return {"thingName": thing.thing_name, "thingArn": thing.thing_arn,
            "thingId": thing.thing_id}


@TABLE.register("iot", "DescribeThing")
def describe_thing(ctx: OperationContext, params: Params) -> Result:
    thing = ctx.services.registry.describe_thing(params["thingName"])
    return {
        "defaultClientId": thing.thing_name,
        "thingName": thing.thing_name,
        "thingId": thing.thing_id,
        "thingArn": thing.thing_arn,
        "thingTypeName": thing.thing_type_name,
        "attributes": dict(thing.attributes),
        "version": thing.version,
        "billingGroupName": thing.billing_group_name,
    }


@TABLE.register("iot", "UpdateThing")
def update_thing(ctx: OperationContext, params: Params) -> Result:
    attributes, merge = _attributes(params)
    ctx.services.registry.update_thing(
        params["thingName"],
        thing_type_name=params.get("thingTypeName"),
        remove_thing_type=params.get("removeThingType", False),
        attributes=attributes,
        merge=merge,
        expected_version=params.get("expectedVersion"),
    )
    return {}


@TABLE.register("iot", "DeleteThing")
def delete_thing(ctx: OperationContext, params: Params) -> Result:
    ctx.services.registry.delete_thing(params["thingName"],
                                       expected_version=params.get("expectedVersion"))
    return {}


@TABLE.register("iot", "ListThings")
def list_things(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_things(
        attribute_name=params.get("attributeName"),
        attribute_value=params.get("attributeValue"),
        thing_type_name=params.get("thingTypeName"),
        use_prefix_attribute_value=params.get("usePrefixAttributeValue", False),
        max_results=params.get("maxResults"),
        next_token=params.get("nextToken"),
    )
    return page("things", [_thing_summary(item) for item in items], token)


# -- thing principals -------------------------------------------------------------------


def _only_non_exclusive(params: Params) -> None:
    kind = params.get("thingPrincipalType")
    if kind is not None and kind != NON_EXCLUSIVE_THING:
        raise invalid_request(f"thingPrincipalType {kind} is not supported by Bastion yet; "
                              f"principals are attached as {NON_EXCLUSIVE_THING}")


@TABLE.register("iot", "AttachThingPrincipal")
def attach_thing_principal(ctx: OperationContext, params: Params) -> Result:
    _only_non_exclusive(params)
    ctx.services.registry.attach_thing_principal(params["thingName"], params["principal"])
    return {}


@TABLE.register("iot", "DetachThingPrincipal")
def detach_thing_principal(ctx: OperationContext, params: Params) -> Result:
    ctx.services.registry.detach_thing_principal(params["thingName"], params["principal"])
    return {}


@TABLE.register("iot", "ListThingPrincipals")
def list_thing_principals(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_thing_principals(
        params["thingName"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("principals", items, token)


@TABLE.register("iot", "ListThingPrincipalsV2")
def list_thing_principals_v2(ctx: OperationContext, params: Params) -> Result:
    if params.get("thingPrincipalType") not in (None, NON_EXCLUSIVE_THING):
        return {"thingPrincipalObjects": []}
    items, token = ctx.services.registry.list_thing_principals(
        params["thingName"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    objects = [{"principal": arn, "thingPrincipalType": NON_EXCLUSIVE_THING} for arn in items]
    return page("thingPrincipalObjects", objects, token)


@TABLE.register("iot", "ListPrincipalThings")
def list_principal_things(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.registry.list_principal_things(
        params["principal"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("things", items, token)


@TABLE.register("iot", "ListPrincipalThingsV2")
def list_principal_things_v2(ctx: OperationContext, params: Params) -> Result:
    if params.get("thingPrincipalType") not in (None, NON_EXCLUSIVE_THING):
        return {"principalThingObjects": []}
    items, token = ctx.services.registry.list_principal_things(
        params["principal"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    objects = [{"thingName": name, "thingPrincipalType": NON_EXCLUSIVE_THING}
               for name in items]
    return page("principalThingObjects", objects, token)
