"""The MQTT data plane over HTTPS (``iot-data``): Publish, GetRetainedMessage,
ListRetainedMessages.

These handlers run on the broker's event loop (the broker is single-threaded) and never
block. A published message goes through :meth:`Broker.publish` like any other: each
subscriber's session checks ``iot:Receive`` before delivery, retained messages are kept,
and an empty retained payload deletes the retained message. Messages published here
have no MQTT sender (``origin`` is ``None``), so they do not reach the reserved-topic
services (``$aws/things/…/shadow``) yet.

MQTT 5 extras map to message properties: ``x-amz-mqtt5-user-properties`` (base64 of a
JSON array of ``{"name": "value"}`` objects), ``x-amz-mqtt5-payload-format-indicator``,
``x-amz-mqtt5-correlation-data`` (base64), and the query's ``contentType``,
``responseTopic`` and ``messageExpiry`` (seconds).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable
from typing import Any, Final

from bastion.broker import Message
from bastion.mqtt import MQTTError, Properties, validate_topic_name

from .._context import OperationContext
from .._errors import ApiError, invalid_request, not_found
from .._nesting import loads_bounded
from .._pages import decode_token, encode_token
from ._common import page
from ._table import TABLE, Params, Result

DEFAULT_RETAINED_PAGE: Final = 200
MAX_EXPIRY: Final = 0xFFFFFFFF
_PAYLOAD_FORMATS: Final = {"UNSPECIFIED_BYTES": 0, "UTF8_DATA": 1}


def _check_topic(ctx: OperationContext, topic: str, what: str = "topic") -> None:
    try:
        validate_topic_name(topic)
    except MQTTError as error:
        raise invalid_request(f"The {what} {topic!r} is not a valid MQTT topic name: "
                              f"{error}") from None
    limits = ctx.gateway.broker.limits
    if len(topic.encode("utf-8")) > limits.max_topic_bytes:
        raise invalid_request(f"The {what} is longer than {limits.max_topic_bytes} bytes")
    levels = topic.count("/") + 1
    if topic.startswith("$aws/rules/"):
        levels -= 3
    if levels > limits.max_topic_levels:
        raise invalid_request(f"The {what} has more than {limits.max_topic_levels - 1} "
                              "forward slashes")


def _user_properties(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        try:
            value = loads_bounded(value, "userProperties")
        except ValueError:
            value = None
    if not isinstance(value, list):
        raise invalid_request("userProperties must be a JSON array of objects, e.g. "
                              '[{"deviceName": "alpha"}]')
    pairs: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in item.items()):
            raise invalid_request("userProperties must be objects of string names and "
                                  "string values")
        pairs.extend(item.items())
    return tuple(pairs)


def _properties(params: Params, payload: bytes) -> tuple[Properties, float | None]:
    user_properties: tuple[tuple[str, str], ...] = ()
    if params.get("userProperties") is not None:
        user_properties = _user_properties(params["userProperties"])
    payload_format = None
    if params.get("payloadFormatIndicator") is not None:
        payload_format = _PAYLOAD_FORMATS[params["payloadFormatIndicator"]]
        if payload_format == 1:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid_request("The payload is not UTF-8 although "
                                      "payloadFormatIndicator is UTF8_DATA") from None
    correlation = None
    if params.get("correlationData") is not None:
        try:
            correlation = base64.b64decode(params["correlationData"], validate=True)
        except binascii.Error:
            raise invalid_request("correlationData must be base64-encoded") from None
    expiry = params.get("messageExpiry")
    expires_at = None
    if expiry is not None:
        if not 0 <= expiry <= MAX_EXPIRY:
            raise invalid_request(f"messageExpiry must be between 0 and {MAX_EXPIRY} seconds")
        expires_at = time.monotonic() + expiry
    properties = Properties(
        payload_format_indicator=payload_format,
        message_expiry_interval=expiry,
        content_type=params.get("contentType"),
        response_topic=params.get("responseTopic"),
        correlation_data=correlation,
        user_properties=user_properties,
    )
    return properties, expires_at


@TABLE.register("iot-data", "Publish", on_loop=True)
def publish(ctx: OperationContext, params: Params) -> Result | Awaitable[Result]:
    topic = params["topic"]
    _check_topic(ctx, topic)
    if params.get("responseTopic") is not None:
        _check_topic(ctx, params["responseTopic"], "responseTopic")
    payload = params.get("payload") or b""
    broker = ctx.gateway.broker
    if len(payload) > broker.limits.max_payload_bytes:
        raise ApiError("RequestEntityTooLargeException", 413,
                       f"The payload exceeds the maximum size of "
                       f"{broker.limits.max_payload_bytes} bytes")
    properties, expires_at = _properties(params, payload)
    retain = bool(params.get("retain", False))
    message = Message(topic, payload, int(params.get("qos", 0)), retain, properties, None,
                      expires_at)
    broker.publish(message)
    durable = broker.durable()
    if durable is None:
        return {}
    return _answer_when(durable)


async def _answer_when(durable: Awaitable[None]) -> Result:
    """The 200 of a publish once what it changed (queued deliveries of persistent sessions,
    a retained message) is durable: an acknowledged publish survives a crash."""
    await durable
    return {}


def _current(ctx: OperationContext, topic: str) -> Message | None:
    retained = ctx.gateway.broker.retained
    message = retained.get(topic)
    if message is not None and message.expires_at is not None \
            and message.expires_at <= time.monotonic():
        retained.delete(topic)
        return None
    return message


@TABLE.register("iot-data", "GetRetainedMessage", on_loop=True)
def get_retained_message(ctx: OperationContext, params: Params) -> Result:
    topic = params["topic"]
    message = _current(ctx, topic)
    if message is None:
        raise not_found(f"No retained message exists for topic {topic}")
    result: dict[str, Any] = {
        "topic": message.topic,
        "payload": message.payload,
        "qos": message.qos,
        "lastModifiedTime": int(message.received_at * 1000),
    }
    user_properties = message.properties.user_properties
    if user_properties:
        result["userProperties"] = json.dumps(
            [{name: value} for name, value in user_properties]).encode("utf-8")
    return result


@TABLE.register("iot-data", "ListRetainedMessages", on_loop=True)
def list_retained_messages(ctx: OperationContext, params: Params) -> Result:
    limit = params.get("maxResults") or DEFAULT_RETAINED_PAGE
    token = params.get("nextToken")
    after = None if token is None else decode_token("retained", token)
    retained = ctx.gateway.broker.retained
    topics = retained.topics(after=after, limit=limit + 1)
    more = len(topics) > limit
    topics = topics[:limit]
    summaries: list[dict[str, Any]] = []
    for topic in topics:
        message = _current(ctx, topic)
        if message is None:
            continue
        summaries.append({"topic": topic, "payloadSize": len(message.payload),
                          "qos": message.qos,
                          "lastModifiedTime": int(message.received_at * 1000)})
    next_token = encode_token("retained", topics[-1]) if more and topics else None
    return page("retainedTopics", summaries, next_token)
