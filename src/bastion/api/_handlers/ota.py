"""OTA updates over HTTPS (``iot``): CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates,
DeleteOTAUpdate, served by the :class:`~bastion.ota.OtaService` (which creates the job
devices receive). Its errors, and those of the services it uses (jobs, code signing,
files), escape to the application, which answers the AWS error as ``iot`` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.ota import OtaService, OtaUpdate

from .._context import OperationContext
from ._common import page, refuse_unsupported
from ._table import TABLE, Handler, Params, Result

IOT = "iot"


def _service(ctx: OperationContext) -> OtaService:
    return ctx.gateway.services.ota


def _iot(operation: str) -> Callable[[Handler], Handler]:
    return TABLE.register(IOT, operation)


@_iot("CreateOTAUpdate")
def create_ota_update(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "tags")
    update = _service(ctx).create_ota_update(
        params["otaUpdateId"], targets=params["targets"], files=params["files"],
        role_arn=params["roleArn"], description=params.get("description"),
        protocols=params.get("protocols"), target_selection=params.get("targetSelection"),
        rollout_config=params.get("awsJobExecutionsRolloutConfig"),
        presigned_url_config=params.get("awsJobPresignedUrlConfig"),
        abort_config=params.get("awsJobAbortConfig"),
        timeout_config=params.get("awsJobTimeoutConfig"),
        additional_parameters=params.get("additionalParameters"),
        requested_by=ctx.caller.access_key_id)
    return {"otaUpdateId": update.ota_update_id, "awsIotJobId": update.job_id,
            "otaUpdateArn": update.arn, "awsIotJobArn": update.job_arn,
            "otaUpdateStatus": update.status}


def _info(update: OtaUpdate) -> dict[str, Any]:
    request = update.request
    info: dict[str, Any] = {
        "otaUpdateId": update.ota_update_id, "otaUpdateArn": update.arn,
        "creationDate": update.creation_date, "lastModifiedDate": update.last_modified_date,
        "targets": request.get("targets"), "protocols": request.get("protocols"),
        "targetSelection": request.get("targetSelection"),
        "otaUpdateFiles": request.get("files"), "otaUpdateStatus": update.status,
        "awsIotJobId": update.job_id, "awsIotJobArn": update.job_arn,
        "additionalParameters": request.get("additionalParameters")}
    for member in ("description", "awsJobExecutionsRolloutConfig",
                   "awsJobPresignedUrlConfig"):
        if request.get(member) is not None:
            info[member] = request[member]
    if update.error is not None:
        info["errorInfo"] = dict(update.error)
    return info


@_iot("GetOTAUpdate")
def get_ota_update(ctx: OperationContext, params: Params) -> Result:
    return {"otaUpdateInfo": _info(_service(ctx).get_ota_update(params["otaUpdateId"]))}


@_iot("ListOTAUpdates")
def list_ota_updates(ctx: OperationContext, params: Params) -> Result:
    updates, token = _service(ctx).list_ota_updates(
        status=params.get("otaUpdateStatus"), max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("otaUpdates", [{
        "otaUpdateId": update.ota_update_id, "otaUpdateArn": update.arn,
        "creationDate": update.creation_date} for update in updates], token)


@_iot("DeleteOTAUpdate")
def delete_ota_update(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_ota_update(
        params["otaUpdateId"], force_delete_job=bool(params.get("forceDeleteAWSJob", False)))
    return {}
