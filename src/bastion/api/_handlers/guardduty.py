"""Threat detection over HTTPS through GuardDuty's own model (``guardduty``): the one
detector of this Bastion, its findings (list with criteria, get, statistics, archive)
and threat lists read from Bastion's files. Handlers call the
:class:`~bastion.threats.ThreatService`; its :class:`~bastion.threats.ThreatsError`
escapes to the application, which answers the AWS error (``BadRequestException``).

CreateDetector answers the existing detector's id (one per Bastion); the detector cannot
be deleted or disabled through the API: threat detection is turned off with ``[threats]
enabled = false``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bastion.threats import BadRequestError, IntelSet, ThreatService

from .._context import OperationContext
from .._errors import ApiError
from ._table import TABLE, Handler, Params, Result

GUARDDUTY = "guardduty"


def _service(ctx: OperationContext) -> ThreatService:
    threats = ctx.gateway.services.threats
    if threats is None:
        raise ApiError("BadRequestException", 400,
                       "Threat detection is off ([threats] enabled = false)")
    return threats


def _operation(name: str) -> Callable[[Handler], Handler]:
    return TABLE.register(GUARDDUTY, name)


def _detector(ctx: OperationContext, params: Params) -> ThreatService:
    service = _service(ctx)
    service.check_detector(params["DetectorId"])
    return service


def _page(items: list[Any], params: Params, limit: int) -> tuple[list[Any], str | None]:
    token = params.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise BadRequestError("The request is rejected because the nextToken is invalid."
                              ) from None
    size = params.get("MaxResults") or limit
    chunk = items[start:start + size]
    return chunk, (str(start + size) if start + size < len(items) else None)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@_operation("ListDetectors")
def list_detectors(ctx: OperationContext, params: Params) -> Result:
    return {"DetectorIds": [_service(ctx).detector_id]}


@_operation("CreateDetector")
def create_detector(ctx: OperationContext, params: Params) -> Result:
    return {"DetectorId": _service(ctx).detector_id}


@_operation("GetDetector")
def get_detector(ctx: OperationContext, params: Params) -> Result:
    service = _detector(ctx, params)
    return {"CreatedAt": _iso(service.created_at), "UpdatedAt": _iso(service.created_at),
            "FindingPublishingFrequency": "FIFTEEN_MINUTES", "Status": "ENABLED",
            "ServiceRole": service.account.arn("role/bastion-threats")
            .replace(":iot:", ":iam:", 1), "Tags": {}}


@_operation("ListFindings")
def list_findings(ctx: OperationContext, params: Params) -> Result:
    service = _detector(ctx, params)
    ids = service.list_finding_ids(params.get("FindingCriteria"), params.get("SortCriteria"))
    chunk, token = _page(ids, params, 50)
    return {"FindingIds": chunk, "NextToken": token}


@_operation("GetFindings")
def get_findings(ctx: OperationContext, params: Params) -> Result:
    return {"Findings": _detector(ctx, params).get_findings(params.get("FindingIds") or [])}


@_operation("GetFindingsStatistics")
def get_findings_statistics(ctx: OperationContext, params: Params) -> Result:
    service = _detector(ctx, params)
    kinds = params.get("FindingStatisticTypes") or ["COUNT_BY_SEVERITY"]
    if any(k != "COUNT_BY_SEVERITY" for k in kinds) or params.get("GroupBy"):
        raise BadRequestError("Only COUNT_BY_SEVERITY statistics are supported.")
    return {"FindingStatistics": {
        "CountBySeverity": service.statistics(params.get("FindingCriteria"))}}


@_operation("ArchiveFindings")
def archive_findings(ctx: OperationContext, params: Params) -> Result:
    _detector(ctx, params).archive(params.get("FindingIds") or [], True)
    return {}


@_operation("UnarchiveFindings")
def unarchive_findings(ctx: OperationContext, params: Params) -> Result:
    _detector(ctx, params).archive(params.get("FindingIds") or [], False)
    return {}


def _intel(intel: IntelSet) -> dict[str, Any]:
    return {"Name": intel.name, "Format": intel.format, "Location": intel.location,
            "Status": intel.status, "Tags": {}}


@_operation("CreateThreatIntelSet")
def create_threat_intel_set(ctx: OperationContext, params: Params) -> Result:
    intel = _detector(ctx, params).create_intel_set(
        params["Name"], params["Format"], params["Location"], bool(params.get("Activate")))
    return {"ThreatIntelSetId": intel.id}


@_operation("ListThreatIntelSets")
def list_threat_intel_sets(ctx: OperationContext, params: Params) -> Result:
    sets = [s.id for s in _detector(ctx, params).intel_sets()]
    chunk, token = _page(sets, params, 50)
    return {"ThreatIntelSetIds": chunk, "NextToken": token}


@_operation("GetThreatIntelSet")
def get_threat_intel_set(ctx: OperationContext, params: Params) -> Result:
    return _intel(_detector(ctx, params).intel_set(params["ThreatIntelSetId"]))


@_operation("DeleteThreatIntelSet")
def delete_threat_intel_set(ctx: OperationContext, params: Params) -> Result:
    _detector(ctx, params).delete_intel_set(params["ThreatIntelSetId"])
    return {}
