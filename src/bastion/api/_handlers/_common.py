"""Small pieces the handler modules share."""

from __future__ import annotations

from typing import Any

from bastion.account import Account
from bastion.registry import check_tags, split_arn

from .._context import OperationContext
from .._errors import invalid_request
from ._table import Params


def refuse_unsupported(params: Params, *names: str) -> None:
    """Refuse parameters Bastion cannot honour rather than silently dropping them.

    :raises ApiError: 400 InvalidRequestException naming the first one given.
    """
    for name in names:
        value = params.get(name)
        if value not in (None, [], {}, False):
            raise invalid_request(f"{name} is not supported by Bastion yet")


def name_from(params: Params, name_key: str, arn_key: str, account: Account,
              resource_type: str) -> str:
    """A resource name given either by name or by ARN (AddThingToThingGroup style).

    :raises ApiError: InvalidRequestException when neither is given, or the ARN is not a
        ``resource_type`` ARN; ResourceNotFoundException for another account or region
        (raised by the registry as a RegistryError).
    """
    name = params.get(name_key)
    if isinstance(name, str):
        return name
    arn = params.get(arn_key)
    if isinstance(arn, str):
        _, ident = split_arn(account, arn, frozenset({resource_type}))
        return ident
    raise invalid_request(f"Specify {name_key} or {arn_key}")


def page(items_key: str, items: list[Any], token: str | None,
         token_key: str = "nextToken") -> dict[str, Any]:
    """A list operation's result."""
    result: dict[str, Any] = {items_key: items}
    if token:
        result[token_key] = token
    return result


def creation_tags(params: Params) -> dict[str, str]:
    """The ``tags`` a create operation was given, checked before anything is created.

    :raises InvalidRequestError: a bad or reserved key, a long value, more than 50 tags.
    """
    return check_tags(params.get("tags"))


def tag_created(ctx: OperationContext, resource_type: str, resource_id: str,
                tags: dict[str, str]) -> None:
    """Write the tags of a resource the handler has just created (see
    :meth:`bastion.registry.TaggingService.tag_new_resource`)."""
    if tags:
        ctx.services.tags.tag_new_resource(resource_type, resource_id, tags)
