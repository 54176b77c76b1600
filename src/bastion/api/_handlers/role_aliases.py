"""Role aliases (``iot``): what devices name to get temporary credentials."""

from __future__ import annotations

from .._context import OperationContext
from ._common import page
from ._table import TABLE, Params, Result


@TABLE.register("iot", "CreateRoleAlias")
def create_role_alias(ctx: OperationContext, params: Params) -> Result:
    alias = ctx.services.role_aliases.create_role_alias(
        params["roleAlias"], role_arn=params["roleArn"],
        credential_duration_seconds=params.get("credentialDurationSeconds"),
        tags=params.get("tags"))
    return {"roleAlias": alias.role_alias, "roleAliasArn": alias.role_alias_arn}


@TABLE.register("iot", "DescribeRoleAlias")
def describe_role_alias(ctx: OperationContext, params: Params) -> Result:
    alias = ctx.services.role_aliases.describe_role_alias(params["roleAlias"])
    return {"roleAliasDescription": {
        "roleAlias": alias.role_alias,
        "roleAliasArn": alias.role_alias_arn,
        "roleArn": alias.role_arn,
        "owner": alias.owner,
        "credentialDurationSeconds": alias.credential_duration_seconds,
        "creationDate": alias.creation_date,
        "lastModifiedDate": alias.last_modified_date,
    }}


@TABLE.register("iot", "UpdateRoleAlias")
def update_role_alias(ctx: OperationContext, params: Params) -> Result:
    alias = ctx.services.role_aliases.update_role_alias(
        params["roleAlias"], role_arn=params.get("roleArn"),
        credential_duration_seconds=params.get("credentialDurationSeconds"))
    return {"roleAlias": alias.role_alias, "roleAliasArn": alias.role_alias_arn}


@TABLE.register("iot", "DeleteRoleAlias")
def delete_role_alias(ctx: OperationContext, params: Params) -> Result:
    ctx.services.role_aliases.delete_role_alias(params["roleAlias"])
    return {}


@TABLE.register("iot", "ListRoleAliases")
def list_role_aliases(ctx: OperationContext, params: Params) -> Result:
    names, marker = ctx.services.role_aliases.list_role_aliases(
        page_size=params.get("pageSize"), marker=params.get("marker"),
        ascending_order=params.get("ascendingOrder", True))
    return page("roleAliases", names, marker, "nextMarker")
