"""Device connectivity (``iot``): GetThingConnectivityData, answered from the connection
journal (:mod:`bastion.registry._connectivity` says how, and what a cluster sees)."""

from __future__ import annotations

from typing import Any

from .._context import OperationContext
from ._table import TABLE, Params, Result


@TABLE.register("iot", "GetThingConnectivityData")
def get_thing_connectivity_data(ctx: OperationContext, params: Params) -> Result:
    """``includeSocketInformation`` adds ``sourceIp``: the journal keeps the device's
    address, not its port nor the listener's, which are left out."""
    found = ctx.services.registry.thing_connectivity(params["thingName"])
    answer: dict[str, Any] = {"thingName": found.thing_name, "connected": found.connected}
    if found.timestamp is not None:
        answer["timestamp"] = found.timestamp
        answer["clientId"] = found.client_id
    if found.disconnect_reason is not None:
        answer["disconnectReason"] = found.disconnect_reason
    if params.get("includeSocketInformation") and found.source_ip:
        answer["sourceIp"] = found.source_ip
    return answer
