"""DescribeEndpoint and the logging options, v1 and v2 (``iot``).

DescribeEndpoint answers with the address devices and tools should use: ``[api]
public_host`` when configured, else the host the caller addressed. For the data
endpoints (``iot:Data``, ``iot:Data-ATS``) that is a host name, as in AWS (devices use
the MQTT port); for ``iot:Jobs`` (the ``iot-jobs-data`` REST service, served by this API)
the port is kept when the caller gave one. Bastion has no credentials provider.
"""

from __future__ import annotations

from typing import Any, Final

from .._context import OperationContext
from .._errors import invalid_request
from .._pages import page_after
from ._common import page
from ._table import TABLE, Params, Result

ENDPOINT_TYPES: Final = ("iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs")
DEFAULT_LOG_LEVELS_PAGE: Final = 50


@TABLE.register("iot", "DescribeEndpoint")
def describe_endpoint(ctx: OperationContext, params: Params) -> Result:
    kind = params.get("endpointType") or "iot:Data"
    if kind not in ENDPOINT_TYPES:
        raise invalid_request(f"Endpoint type {kind} is not valid; use one of "
                              + ", ".join(ENDPOINT_TYPES))
    if kind == "iot:CredentialProvider":
        raise invalid_request("Bastion has no credentials provider endpoint")
    public = ctx.gateway.config.public_host
    if public:
        return {"endpointAddress": public}
    if kind == "iot:Jobs":
        return {"endpointAddress": ctx.host_header or ctx.host}
    return {"endpointAddress": ctx.host}


@TABLE.register("iot", "GetLoggingOptions")
def get_logging_options(ctx: OperationContext, params: Params) -> Result:
    return ctx.gateway.logging_options.get_v1()


@TABLE.register("iot", "SetLoggingOptions")
def set_logging_options(ctx: OperationContext, params: Params) -> Result:
    payload = params["loggingOptionsPayload"]
    ctx.gateway.logging_options.set_v1(payload["roleArn"], payload.get("logLevel"))
    return {}


@TABLE.register("iot", "GetV2LoggingOptions")
def get_v2_logging_options(ctx: OperationContext, params: Params) -> Result:
    options = ctx.gateway.logging_options.get_v2()
    return {key: options.get(key) for key in
            ("roleArn", "defaultLogLevel", "disableAllLogs", "eventConfigurations")}


@TABLE.register("iot", "SetV2LoggingOptions")
def set_v2_logging_options(ctx: OperationContext, params: Params) -> Result:
    ctx.gateway.logging_options.set_v2({
        "roleArn": params.get("roleArn"),
        "defaultLogLevel": params.get("defaultLogLevel"),
        "disableAllLogs": params.get("disableAllLogs"),
        "eventConfigurations": params.get("eventConfigurations"),
    })
    return {}


@TABLE.register("iot", "SetV2LoggingLevel")
def set_v2_logging_level(ctx: OperationContext, params: Params) -> Result:
    target = params["logTarget"]
    ctx.gateway.logging_options.set_level(target["targetType"], target.get("targetName"),
                                          params["logLevel"])
    return {}


@TABLE.register("iot", "ListV2LoggingLevels")
def list_v2_logging_levels(ctx: OperationContext, params: Params) -> Result:
    levels = ctx.gateway.logging_options.list_levels(params.get("targetType"))
    items, token = page_after(
        levels, lambda entry: f"{entry['targetType']}\x00{entry.get('targetName') or ''}",
        "v2-logging-levels", params.get("maxResults") or DEFAULT_LOG_LEVELS_PAGE,
        params.get("nextToken"))
    configurations: list[dict[str, Any]] = [
        {"logTarget": {"targetType": entry["targetType"],
                       "targetName": entry.get("targetName")},
         "logLevel": entry["logLevel"]}
        for entry in items
    ]
    return page("logTargetConfigurations", configurations, token)


@TABLE.register("iot", "DeleteV2LoggingLevel")
def delete_v2_logging_level(ctx: OperationContext, params: Params) -> Result:
    ctx.gateway.logging_options.delete_level(params["targetType"], params["targetName"])
    return {}
