"""Fleet indexing (``iot``): the indexing configuration, SearchIndex, the aggregations,
DescribeIndex and ListIndices (:mod:`bastion.index` says what is indexed and how)."""

from __future__ import annotations

from typing import Any

from bastion.index import FleetIndex, IndexingConfiguration, InvalidIndexRequestError

from .._context import OperationContext
from ._common import page
from ._table import TABLE, Params, Result

_THING_MANAGED = (("thingName", "String"), ("thingId", "String"),
                  ("thingTypeName", "String"), ("thingGroupNames", "String"),
                  ("registry.version", "Number"))
_SHADOW_MANAGED = (("shadow.version", "Number"), ("shadow.hasDelta", "Boolean"))
_CONNECTIVITY_MANAGED = (("connectivity.connected", "Boolean"),
                         ("connectivity.timestamp", "Number"),
                         ("connectivity.disconnectReason", "String"))
_GROUP_MANAGED = (("thingGroupName", "String"), ("thingGroupId", "String"),
                  ("thingGroupDescription", "String"), ("parentGroupNames", "String"))


def _index(ctx: OperationContext) -> FleetIndex:
    return ctx.gateway.services.index


def _fields(pairs: Any) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in pairs]


def _configuration(config: IndexingConfiguration) -> dict[str, Any]:
    managed = list(_THING_MANAGED)
    if config.shadow_on:
        managed += _SHADOW_MANAGED
    if config.connectivity_on:
        managed += _CONNECTIVITY_MANAGED
    things: dict[str, Any] = {
        "thingIndexingMode": config.thing_indexing_mode.value,
        "thingConnectivityIndexingMode": config.connectivity_mode.value,
        "namedShadowIndexingMode": config.named_shadow_mode.value,
        "deviceDefenderIndexingMode": "OFF",
    }
    if config.things_on:
        things["managedFields"] = _fields(managed)
        things["customFields"] = _fields((f.name, f.type) for f in config.thing_custom_fields)
    if config.named_shadow_names:
        things["filter"] = {"namedShadowNames": list(config.named_shadow_names)}
    groups: dict[str, Any] = {"thingGroupIndexingMode": config.thing_group_indexing_mode.value}
    if config.groups_on:
        groups["managedFields"] = _fields(_GROUP_MANAGED)
        groups["customFields"] = _fields((f.name, f.type) for f in config.group_custom_fields)
    return {"thingIndexingConfiguration": things, "thingGroupIndexingConfiguration": groups}


@TABLE.register("iot", "GetIndexingConfiguration")
def get_indexing_configuration(ctx: OperationContext, params: Params) -> Result:
    return _configuration(_index(ctx).configuration)


@TABLE.register("iot", "UpdateIndexingConfiguration")
def update_indexing_configuration(ctx: OperationContext, params: Params) -> Result:
    _index(ctx).update_configuration(
        things=params.get("thingIndexingConfiguration"),
        groups=params.get("thingGroupIndexingConfiguration"))
    return {}


@TABLE.register("iot", "DescribeIndex")
def describe_index(ctx: OperationContext, params: Params) -> Result:
    status = _index(ctx).describe_index(params["indexName"])
    return {"indexName": status.index_name, "indexStatus": status.index_status,
            "schema": status.schema}


@TABLE.register("iot", "ListIndices")
def list_indices(ctx: OperationContext, params: Params) -> Result:
    names = _index(ctx).list_indices()
    token = params.get("nextToken")
    if token is not None:
        if token not in names:
            raise InvalidIndexRequestError("The nextToken is not valid")
        names = names[names.index(token):]
    limit = params.get("maxResults") or len(names) or 1
    following = names[limit] if len(names) > limit else None
    return page("indexNames", names[:limit], following)


@TABLE.register("iot", "SearchIndex")
def search_index(ctx: OperationContext, params: Params) -> Result:
    found = _index(ctx).search(
        params["queryString"], index_name=params.get("indexName"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"),
        query_version=params.get("queryVersion"))
    result: dict[str, Any] = {"things": found.things, "thingGroups": found.thing_groups}
    if found.next_token:
        result["nextToken"] = found.next_token
    return result


def _query(params: Params) -> dict[str, Any]:
    return {"index_name": params.get("indexName"),
            "query_version": params.get("queryVersion")}


@TABLE.register("iot", "GetStatistics")
def get_statistics(ctx: OperationContext, params: Params) -> Result:
    found = _index(ctx).statistics(params["queryString"],
                                   aggregation_field=params.get("aggregationField"),
                                   **_query(params))
    statistics: dict[str, Any] = {"count": found.count}
    for key, value in (("average", found.average), ("sum", found.sum),
                       ("minimum", found.minimum), ("maximum", found.maximum),
                       ("sumOfSquares", found.sum_of_squares),
                       ("variance", found.variance), ("stdDeviation", found.std_deviation)):
        if value is not None:
            statistics[key] = value
    return {"statistics": statistics}


@TABLE.register("iot", "GetCardinality")
def get_cardinality(ctx: OperationContext, params: Params) -> Result:
    return {"cardinality": _index(ctx).cardinality(
        params["queryString"], aggregation_field=params.get("aggregationField"),
        **_query(params))}


@TABLE.register("iot", "GetPercentiles")
def get_percentiles(ctx: OperationContext, params: Params) -> Result:
    found = _index(ctx).percentiles(
        params["queryString"], aggregation_field=params.get("aggregationField"),
        percents=params.get("percents"), **_query(params))
    return {"percentiles": [{"percent": p, "value": v} for p, v in found]}


@TABLE.register("iot", "GetBucketsAggregation")
def get_buckets_aggregation(ctx: OperationContext, params: Params) -> Result:
    terms = (params.get("bucketsAggregationType") or {}).get("termsAggregation") or {}
    total, found = _index(ctx).buckets(
        params["queryString"], aggregation_field=params["aggregationField"],
        max_buckets=terms.get("maxBuckets"), **_query(params))
    return {"totalCount": total,
            "buckets": [{"keyValue": key, "count": count} for key, count in found]}
