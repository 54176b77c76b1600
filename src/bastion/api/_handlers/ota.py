"""OTA updates and streams (``iot``): CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates,
DeleteOTAUpdate, served by the :class:`~bastion.ota.OtaService` (which creates the job
devices receive, and the stream of an MQTT update); CreateStream, DescribeStream,
ListStreams, UpdateStream, DeleteStream, served by the :class:`~bastion.ota.StreamService`.
Their errors, and those of the services they use (jobs, code signing, files), escape to
the application, which answers the AWS error as ``iot`` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.ota import OtaService, OtaUpdate, Stream, StreamService

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
        params["otaUpdateId"], force_delete_job=bool(params.get("forceDeleteAWSJob", False)),
        delete_stream=bool(params.get("deleteStream", False)))
    return {}


# -- streams ---------------------------------------------------------------------------------


def _streams(ctx: OperationContext) -> StreamService:
    return ctx.regional.streams


def _stream_answer(stream: Stream) -> dict[str, Any]:
    answer: dict[str, Any] = {"streamId": stream.stream_id, "streamArn": stream.arn,
                              "streamVersion": stream.version}
    if stream.description is not None:
        answer["description"] = stream.description
    return answer


@_iot("CreateStream")
def create_stream(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "tags")
    return _stream_answer(_streams(ctx).create_stream(
        params["streamId"], files=params["files"], role_arn=params["roleArn"],
        description=params.get("description")))


@_iot("DescribeStream")
def describe_stream(ctx: OperationContext, params: Params) -> Result:
    stream = _streams(ctx).describe_stream(params["streamId"])
    info = _stream_answer(stream)
    info.update({
        "files": [{"fileId": item.file_id, "s3Location": {
            "bucket": item.bucket, "key": item.key, "version": item.sha256}}
            for item in stream.files],
        "createdAt": stream.created_at, "lastUpdatedAt": stream.last_updated_at,
        "roleArn": stream.role_arn})
    return {"streamInfo": info}


@_iot("ListStreams")
def list_streams(ctx: OperationContext, params: Params) -> Result:
    streams, token = _streams(ctx).list_streams(
        max_results=params.get("maxResults"), next_token=params.get("nextToken"),
        ascending=params.get("ascendingOrder", True) is not False)
    return page("streams", [_stream_answer(stream) for stream in streams], token)


@_iot("UpdateStream")
def update_stream(ctx: OperationContext, params: Params) -> Result:
    return _stream_answer(_streams(ctx).update_stream(
        params["streamId"], files=params.get("files"), role_arn=params.get("roleArn"),
        description=params.get("description")))


@_iot("DeleteStream")
def delete_stream(ctx: OperationContext, params: Params) -> Result:
    _streams(ctx).delete_stream(params["streamId"])
    return {}
