"""The Device Shadow service: classic and named shadows with AWS IoT's semantics.

A domain service (no front-door imports): the MQTT reserved topics
(:mod:`bastion.reserved`) and the ``iot-data`` REST operations (:mod:`bastion.api`) both
call one :class:`ShadowService`.

* :class:`ShadowService` — get, update, delete, list named shadows; publishes
  :class:`ShadowUpdated` / :class:`ShadowDeleted` after each change.
* :class:`ShadowError` and its subclasses — refusals carrying the AWS error type and HTTP
  status (``aws_error_type``, ``http_status``: 400, 404, 409, 413, 415, 429, 500; the
  ``code`` of ``/rejected`` documents), message, client token and timestamp.
* Pure document logic — :func:`merge_state`, :func:`compute_delta`, :func:`metadata_of`,
  the message builders — and request checks (:func:`parse_update_request`).
* Topic names — :func:`parse_request_topic`, :func:`shadow_topic_prefix`.
"""

from __future__ import annotations

from ._document import (
    EMPTY_STATE,
    ShadowState,
    compute_delta,
    delete_accepted,
    delta_message,
    documents_message,
    get_accepted,
    json_equal,
    merge_state,
    metadata_of,
    update_accepted,
)
from ._errors import (
    InvalidShadowRequestError,
    ShadowError,
    ShadowInternalError,
    ShadowNotFoundError,
    ShadowThrottledError,
    ShadowTooLargeError,
    ShadowVersionConflictError,
    UnsupportedEncodingError,
)
from ._model import NamedShadowPage, ShadowDeleted, ShadowReply, ShadowUpdated, encode_document
from ._request import (
    MAX_CLIENT_TOKEN_BYTES,
    MAX_DEPTH,
    MAX_REQUEST_BYTES,
    MAX_STATE_BYTES,
    UpdateRequest,
    check_shadow_name,
    check_thing_name,
    parse_update_request,
    read_client_token,
)
from ._service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, TOMBSTONE_LIFETIME, ShadowService
from ._topics import (
    ShadowOperation,
    ShadowRequestTopic,
    parse_request_topic,
    shadow_topic_prefix,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EMPTY_STATE",
    "MAX_CLIENT_TOKEN_BYTES",
    "MAX_DEPTH",
    "MAX_PAGE_SIZE",
    "MAX_REQUEST_BYTES",
    "MAX_STATE_BYTES",
    "TOMBSTONE_LIFETIME",
    "InvalidShadowRequestError",
    "NamedShadowPage",
    "ShadowDeleted",
    "ShadowError",
    "ShadowInternalError",
    "ShadowNotFoundError",
    "ShadowOperation",
    "ShadowReply",
    "ShadowRequestTopic",
    "ShadowService",
    "ShadowState",
    "ShadowThrottledError",
    "ShadowTooLargeError",
    "ShadowUpdated",
    "ShadowVersionConflictError",
    "UnsupportedEncodingError",
    "UpdateRequest",
    "check_shadow_name",
    "check_thing_name",
    "compute_delta",
    "delete_accepted",
    "delta_message",
    "documents_message",
    "encode_document",
    "get_accepted",
    "json_equal",
    "merge_state",
    "metadata_of",
    "parse_request_topic",
    "parse_update_request",
    "read_client_token",
    "shadow_topic_prefix",
    "update_accepted",
]
