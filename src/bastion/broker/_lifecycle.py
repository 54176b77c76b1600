"""AWS IoT lifecycle events, published by the broker on ``$aws/events/…`` topics.

Consumes the broker's own bus events and turns them into the JSON messages AWS IoT sends:
``$aws/events/presence/connected|disconnected/<clientId>`` and
``$aws/events/subscriptions/subscribed|unsubscribed/<clientId>``. A connect and its
matching disconnect share a ``versionNumber`` that grows per client id. Client ids that
contain ``+`` or ``#`` get no events (they could not be topic levels), as in AWS IoT.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..events import EventBus
from ._events import ClientConnected, ClientDisconnected, Subscribed, Unsubscribed
from ._message import Message

Publish = Callable[[Message], object]


class LifecycleEvents:
    """Subscribes to ``bus`` and publishes lifecycle messages through ``publish``."""

    def __init__(self, bus: EventBus, publish: Publish) -> None:
        self._publish = publish
        self._versions: dict[str, int] = {}
        self._unsubscribe = [
            bus.subscribe(ClientConnected, self._connected),
            bus.subscribe(ClientDisconnected, self._disconnected),
            bus.subscribe(Subscribed, self._subscribed),
            bus.subscribe(Unsubscribed, self._unsubscribed),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def _send(self, topic: str, body: dict[str, object]) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self._publish(Message(topic, payload, 1, False))

    @staticmethod
    def _eligible(client_id: str) -> bool:
        return "+" not in client_id and "#" not in client_id

    def _connected(self, event: ClientConnected) -> None:
        if not self._eligible(event.client_id):
            return
        version = self._versions.get(event.client_id, -1) + 1
        self._versions[event.client_id] = version
        self._send(f"$aws/events/presence/connected/{event.client_id}", {
            "clientId": event.client_id,
            "timestamp": int(event.timestamp * 1000),
            "eventType": "connected",
            "sessionIdentifier": event.session_id,
            "principalIdentifier": event.certificate_id,
            "ipAddress": event.source_ip,
            "versionNumber": version,
        })

    def _disconnected(self, event: ClientDisconnected) -> None:
        if not self._eligible(event.client_id):
            return
        self._send(f"$aws/events/presence/disconnected/{event.client_id}", {
            "clientId": event.client_id,
            "timestamp": int(event.timestamp * 1000),
            "eventType": "disconnected",
            "sessionIdentifier": event.session_id,
            "principalIdentifier": event.certificate_id,
            "clientInitiatedDisconnect": event.client_initiated,
            "disconnectReason": event.reason.value,
            "versionNumber": self._versions.get(event.client_id, 0),
        })

    def _subscribed(self, event: Subscribed) -> None:
        self._subscription_event("subscribed", event)

    def _unsubscribed(self, event: Unsubscribed) -> None:
        self._subscription_event("unsubscribed", event)

    def _subscription_event(self, kind: str, event: Subscribed | Unsubscribed) -> None:
        if not self._eligible(event.client_id):
            return
        self._send(f"$aws/events/subscriptions/{kind}/{event.client_id}", {
            "clientId": event.client_id,
            "timestamp": int(event.timestamp * 1000),
            "eventType": kind,
            "sessionIdentifier": event.session_id,
            "principalIdentifier": event.certificate_id,
            "topics": list(event.topic_filters),
        })
