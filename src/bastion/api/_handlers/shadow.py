"""Device shadows over HTTPS (``iot-data``): GetThingShadow, UpdateThingShadow,
DeleteThingShadow, ListNamedShadowsForThing.

The handlers call the same :class:`~bastion.shadow.ShadowService` as the broker's
``$aws/things/…/shadow`` topics (both get it from :class:`bastion.services.Services`), so the
rules and the documents are the same through both doors, and an update or delete made
here is announced to MQTT subscribers (``/update/accepted``, ``/update/delta``,
``/update/documents``, ``/delete/accepted``) as AWS does. The request and response
bodies are the shadow documents themselves (blob payloads). Refusals are the service's
:class:`~bastion.shadow.ShadowError`, answered by the application with AWS's status and
message: 400 ``InvalidRequestException``, 404 ``ResourceNotFoundException`` (``No
shadow exists with name: '…'``), 409 ``ConflictException`` (``Version conflict``), 413
``RequestEntityTooLargeException``, 415 ``UnsupportedDocumentEncodingException``.

They run in a worker thread (the service reads and writes the store).
"""

from __future__ import annotations

from typing import Any

from bastion.shadow import ShadowService

from .._context import OperationContext
from ._table import TABLE, Params, Result


def _service(ctx: OperationContext) -> ShadowService:
    return ctx.gateway.services.shadow


@TABLE.register("iot-data", "GetThingShadow")
def get_thing_shadow(ctx: OperationContext, params: Params) -> Result:
    service = _service(ctx)
    reply = service.get(params["thingName"], params.get("shadowName"))
    return {"payload": reply.payload}


@TABLE.register("iot-data", "UpdateThingShadow")
def update_thing_shadow(ctx: OperationContext, params: Params) -> Result:
    service = _service(ctx)
    payload = params.get("payload") or b""
    updated = service.update(params["thingName"], params.get("shadowName"), payload)
    return {"payload": updated.accepted}


@TABLE.register("iot-data", "DeleteThingShadow")
def delete_thing_shadow(ctx: OperationContext, params: Params) -> Result:
    service = _service(ctx)
    deleted = service.delete(params["thingName"], params.get("shadowName"))
    return {"payload": deleted.accepted}


@TABLE.register("iot-data", "ListNamedShadowsForThing")
def list_named_shadows_for_thing(ctx: OperationContext, params: Params) -> Result:
    service = _service(ctx)
    found = service.list_named_shadows(params["thingName"], page_size=params.get("pageSize"),
                                       next_token=params.get("nextToken"))
    result: dict[str, Any] = {"results": list(found.results), "timestamp": found.timestamp}
    if found.next_token:
        result["nextToken"] = found.next_token
    return result
