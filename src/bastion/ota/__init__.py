"""OTA updates: signed files delivered to devices by jobs, over presigned HTTPS or MQTT
streams.

* :class:`OtaService` — CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates, DeleteOTAUpdate.
* :func:`ota_job_document` — the ``afr_ota`` job document (the pure core), and
  :class:`OtaFile`, one file of it.
* :class:`StreamService` — CreateStream, DescribeStream, ListStreams, UpdateStream,
  DeleteStream, and the blocks devices read over MQTT; :mod:`._stream_messages`, the
  messages of the streams topics (the pure core: short keys, bounds, the block plan).
* Errors: :class:`OtaError` (``aws_error_type``, ``http_status``) and its subclasses;
  :class:`StreamRequestRefused`, a device's refused streams request.
"""

from __future__ import annotations

from ._document import AUTH_SCHEME, CERTIFICATE_KEY, SIGNATURE_KEY, OtaFile, ota_job_document
from ._errors import (
    InvalidRequestError,
    OtaError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from ._service import JOB_PREFIX, OtaService, OtaUpdate
from ._stream_messages import (
    GetStreamRequest,
    StreamErrorCode,
    StreamRequestRefused,
    client_token_of,
    data_message,
    decode_request,
    description_message,
    encode,
    parse_get_request,
    plan_blocks,
    rejection_message,
)
from ._streams import Stream, StreamService

__all__ = [
    "AUTH_SCHEME",
    "CERTIFICATE_KEY",
    "JOB_PREFIX",
    "SIGNATURE_KEY",
    "GetStreamRequest",
    "InvalidRequestError",
    "OtaError",
    "OtaFile",
    "OtaService",
    "OtaUpdate",
    "ResourceAlreadyExistsError",
    "ResourceNotFoundError",
    "Stream",
    "StreamErrorCode",
    "StreamRequestRefused",
    "StreamService",
    "client_token_of",
    "data_message",
    "decode_request",
    "description_message",
    "encode",
    "ota_job_document",
    "parse_get_request",
    "plan_blocks",
    "rejection_message",
]
