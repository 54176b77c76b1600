"""Tags on resources: TagResource, UntagResource, ListTagsForResource (``iot``).

The resource is named by ARN; :class:`bastion.registry.TaggingService` decides which
ARNs take tags and keeps AWS's limits. Create operations take their ``tags`` in their own
handlers (:func:`._common.creation_tags`).
"""

from __future__ import annotations

from .._context import OperationContext
from ._common import page
from ._table import TABLE, Params, Result


@TABLE.register("iot", "TagResource")
def tag_resource(ctx: OperationContext, params: Params) -> Result:
    ctx.services.tags.tag_resource(params["resourceArn"], params["tags"])
    return {}


@TABLE.register("iot", "UntagResource")
def untag_resource(ctx: OperationContext, params: Params) -> Result:
    ctx.services.tags.untag_resource(params["resourceArn"], params["tagKeys"])
    return {}


@TABLE.register("iot", "ListTagsForResource")
def list_tags_for_resource(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.tags.list_tags_for_resource(
        params["resourceArn"], next_token=params.get("nextToken"))
    return page("tags", [{"Key": key, "Value": value} for key, value in items], token)
