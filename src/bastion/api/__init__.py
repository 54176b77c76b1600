"""The AWS-compatible REST front door: ``iot``, ``iot-data`` and ``iot-jobs-data`` as
boto3 and the ``aws`` CLI speak them, with SigV4 authentication.

Requests are routed, bound, validated and answered with botocore's own service models
(:mod:`._models`, :mod:`._binding`, :mod:`._serialize`), so names, types, constraints and
error codes match AWS; each implemented operation is one small handler
(:mod:`._handlers`). See :mod:`._app` for the life of a request.

* :class:`ApiServer` — serve the API inside Bastion's event loop (``bastion serve``).
* :class:`CredentialSource`, :class:`TrailSink` (and its :class:`ChangeRecord`),
  :class:`Role`, :class:`Caller`, :func:`role_allows` — the plug points for access keys
  and the audit trail, with :class:`StaticCredentials`, :class:`MemoryTrail` and
  :class:`LogTrail`.
* :class:`PresignedUrlAuthenticator` — the SigV4-presigned URLs of MQTT-over-WebSocket
  upgrades (service ``iotdevicegateway``), for the broker's WebSocket listener.
* :func:`implemented_operations` — which operations have a handler.
"""

from __future__ import annotations

from ._app import SCRAPE_OPERATION, ApiApplication, CallCounts, MetricsDoor
from ._auth import (
    ADMIN_SERVICE,
    Caller,
    CallerSession,
    ChangeRecord,
    CredentialSource,
    LogTrail,
    MemoryTrail,
    Role,
    SessionSource,
    StaticCredentials,
    TrailRecord,
    TrailSink,
    is_read_only,
    role_allows,
)
from ._errors import ApiError
from ._handlers import TABLE
from ._models import SERVICE_NAMES, load_catalog
from ._presigned import DEVICE_GATEWAY_SERVICE, PresignedUrlAuthenticator
from ._server import ApiConfigError, ApiServer, check_api_config, is_loopback


def implemented_operations(service: str) -> frozenset[str]:
    """The operations of ``service`` (``iot``, ``iot-data``, ``iot-jobs-data``) that have a
    handler; every other operation of the model answers ``NotImplementedException``."""
    return TABLE.operations(service)


__all__ = [
    "ADMIN_SERVICE",
    "DEVICE_GATEWAY_SERVICE",
    "SCRAPE_OPERATION",
    "SERVICE_NAMES",
    "ApiApplication",
    "ApiConfigError",
    "ApiError",
    "ApiServer",
    "CallCounts",
    "Caller",
    "CallerSession",
    "ChangeRecord",
    "CredentialSource",
    "LogTrail",
    "MemoryTrail",
    "MetricsDoor",
    "PresignedUrlAuthenticator",
    "Role",
    "SessionSource",
    "StaticCredentials",
    "TrailRecord",
    "TrailSink",
    "check_api_config",
    "implemented_operations",
    "is_loopback",
    "is_read_only",
    "load_catalog",
    "role_allows",
]
