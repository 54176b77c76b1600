"""Application messages on their way through the broker, and subscription options.

A :class:`Message` is built once per PUBLISH (or will, or service reply) and shared by
every delivery of it: its bytes are encoded once per (protocol version, QoS, retain flag)
and patched with each delivery's packet id, so fan-out does not re-encode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..mqtt import (
    MQTT_5,
    NO_PROPERTIES,
    Properties,
    RetainHandling,
    encode_publish,
    with_packet_id,
)


class Message:
    """One application message on its way through the broker.

    Mutable only in its private encode cache; the fields themselves never change.
    ``expires_at`` is a deadline on the broker clock's ``monotonic()`` (MQTT 5 message
    expiry) or ``None``.
    """

    __slots__ = (
        "_encoded",
        "_raw",
        "expires_at",
        "origin",
        "payload",
        "properties",
        "qos",
        "received_at",
        "retain",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: Properties = NO_PROPERTIES,
        origin: str | None = None,
        expires_at: float | None = None,
        raw: bytes | None = None,
    ) -> None:
        """``raw``: the MQTT 3.1/3.1.1 PUBLISH this message arrived in, when its retain and
        DUP flags are clear; forwarded unchanged to 3.1/3.1.1 subscribers at its QoS."""
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.origin = origin
        self.expires_at = expires_at
        self.received_at = 0.0  # epoch seconds; set for retained messages when stored
        self._raw = raw
        self._encoded: dict[tuple[int, int, bool], bytes] | None = None

    def encoded(self, version: int, qos: int, retain: bool) -> bytes:
        """PUBLISH bytes for this message; for QoS > 0 the packet id is a placeholder."""
        if self._raw is not None and version != MQTT_5 and qos == self.qos and not retain:
            return self._raw
        key = (version, qos, retain)
        encoded = self._encoded
        if encoded is None:
            encoded = self._encoded = {}
        data = encoded.get(key)
        if data is None:
            props = self.properties if version == MQTT_5 else NO_PROPERTIES
            data = encode_publish(self.topic, self.payload, qos, retain,
                                  1 if qos else None, version, props)
            encoded[key] = data
        return data

    def encode_for(
        self, version: int, qos: int, retain: bool, packet_id: int | None,
        subscription_ids: tuple[int, ...], monotonic: Callable[[], float],
        dup: bool = False,
    ) -> bytes | None:
        """The PUBLISH bytes for one delivery, or ``None`` when the message has expired
        (``monotonic`` is read only for a message with an expiry)."""
        if self.expires_at is not None or (subscription_ids and version == MQTT_5):
            props = self.properties
            if self.expires_at is not None:
                remaining = self.expires_at - monotonic()
                if remaining <= 0:
                    return None
                if version == MQTT_5:
                    props = _replace(props, message_expiry_interval=max(1, int(remaining)))
            if version == MQTT_5:
                if subscription_ids:
                    props = _replace(props, subscription_identifiers=subscription_ids)
            else:
                props = NO_PROPERTIES
            return encode_publish(self.topic, self.payload, qos, retain, packet_id, version,
                                  props, dup)
        data = self.encoded(version, qos, retain)
        if packet_id is not None:
            return with_packet_id(data, packet_id, dup)
        return data


def _replace(props: Properties, **changes: object) -> Properties:
    return replace(props, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: RetainHandling = RetainHandling.SEND_ON_SUBSCRIBE
    subscription_id: int | None = None


def message_properties(props: Properties) -> Properties:
    """The properties of an incoming PUBLISH or will that travel with the message."""
    if props is NO_PROPERTIES:
        return props
    return Properties(
        payload_format_indicator=props.payload_format_indicator,
        content_type=props.content_type,
        response_topic=props.response_topic,
        correlation_data=props.correlation_data,
        user_properties=props.user_properties,
    )


def expiry_deadline(props: Properties, monotonic: Callable[[], float]) -> float | None:
    """The ``monotonic()`` deadline of an MQTT 5 message expiry interval, if any."""
    interval = props.message_expiry_interval
    return None if interval is None else monotonic() + interval
