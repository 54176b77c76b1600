"""The Device Shadow service on the broker: ``$aws/things/<thing>/shadow/…`` requests.

Theory of operation
-------------------
The broker has already authorized the client's PUBLISH to the request topic with its
policies (``iot:Publish`` on ``$aws/things/<thing>/shadow/update``, …); a device whose
least-privilege policy covers only ``$aws/things/<own name>/*`` is refused there and
never reaches this handler. Replies are ordinary broker publications, so each
subscriber's session checks ``iot:Receive`` before delivery, exactly like any message.

:meth:`ShadowTopics.on_publish` runs on the broker's event loop and must not block. It
routes the request itself like any other message (rules and monitoring clients may
subscribe to request topics; it is never retained), then spawns the service call in a
worker thread and returns. When the call finishes:

* get — ``…/get/accepted`` with the shadow, published here;
* update / delete — the service publishes :class:`~bastion.shadow.ShadowUpdated` /
  :class:`~bastion.shadow.ShadowDeleted` after its commit; :meth:`ShadowTopics.announce`
  sends their ``/update/accepted``, ``/update/delta``, ``/update/documents`` and
  ``/delete/accepted`` messages. The REST API uses the same service (and so the same
  announcements), as AWS does for HTTP updates;
* a refusal — the error document on the request's ``/rejected`` topic.

A connection may have at most :data:`MAX_IN_FLIGHT` requests in progress (as in AWS);
more are rejected at once with 429. Will messages published to shadow topics are routed
to subscribers but do not reach the service (AWS ignores LWTs on reserved topics).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from bastion.broker import Broker, Message, Session
from bastion.clock import Clock, SystemClock
from bastion.events import EventBus
from bastion.shadow import (
    ShadowDeleted,
    ShadowError,
    ShadowInternalError,
    ShadowOperation,
    ShadowRequestTopic,
    ShadowService,
    ShadowThrottledError,
    ShadowUpdated,
    encode_document,
    parse_request_topic,
    read_client_token,
)

log = logging.getLogger("bastion.reserved.shadow")

MAX_IN_FLIGHT: Final = 10
"""Shadow requests one client may have in progress at once."""
REPLY_QOS: Final = 1
"""QoS of the service's messages (each delivery gets the lower of it and the
subscription's)."""


class ShadowTopics:
    """A :class:`~bastion.broker.ReservedTopicHandler` serving the shadow topics.

    :param broker: the broker the replies are published on.
    :param service: the shadow service (the REST API calls the same one).
    :param bus: where the service publishes its changes; this handler announces them.
    :param clock: the error replies' timestamps.
    """

    def __init__(self, broker: Broker, service: ShadowService, bus: EventBus, *,
                 clock: Clock | None = None,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._broker = broker
        self._max_in_flight = max_in_flight
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._in_flight: dict[str, int] = {}
        self.service = service
        self._unsubscribe = [bus.subscribe(ShadowUpdated, self.announce),
                             bus.subscribe(ShadowDeleted, self.announce)]

    def close(self) -> None:
        """Stop announcing the service's changes."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # -- ReservedTopicHandler -----------------------------------------------------------

    def handles(self, topic: str) -> bool:
        return parse_request_topic(topic) is not None

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        request = parse_request_topic(message.topic)
        if request is None or session.connection is None:
            # No live connection: a will message. As in AWS IoT, the shadow service
            # ignores wills sent to its topics; subscribers still get them.
            return False
        # The request is an ordinary message too (no sender: it does not come back here).
        broker.publish(Message(message.topic, message.payload, message.qos, False,
                               message.properties, message.origin, message.expires_at))
        client_id = session.client_id
        payload = bytes(message.payload)
        count = self._in_flight.get(client_id, 0)
        if count >= self._max_in_flight:
            error = ShadowThrottledError("Too Many Requests", client_token=_token(payload))
            error.timestamp = int(self._clock.time())
            self._send(request.rejected, encode_document(error.document()))
            return True
        self._in_flight[client_id] = count + 1
        broker.spawn(self._serve(request, payload, client_id))
        return True

    # -- serving ------------------------------------------------------------------------

    async def _serve(self, request: ShadowRequestTopic, payload: bytes, client_id: str) -> None:
        service = self.service
        thing, name = request.thing_name, request.shadow_name
        try:
            if request.operation is ShadowOperation.GET:
                reply = await asyncio.to_thread(service.get, thing, name, payload)
                self._send(request.accepted, reply.payload)
            elif request.operation is ShadowOperation.UPDATE:
                await asyncio.to_thread(service.update, thing, name, payload)
            else:
                await asyncio.to_thread(service.delete, thing, name, payload)
        except ShadowError as error:
            self._send(request.rejected, encode_document(error.document()))
        except Exception:  # our fault; the device still gets its answer (500)
            log.exception("shadow %s of %r (shadow %r) failed", request.operation.value,
                          thing, name)
            failure = ShadowInternalError("Internal service failure",
                                          client_token=_token(payload))
            failure.timestamp = int(self._clock.time())
            self._send(request.rejected, encode_document(failure.document()))
        finally:
            left = self._in_flight.get(client_id, 1) - 1
            if left > 0:
                self._in_flight[client_id] = left
            else:
                self._in_flight.pop(client_id, None)

    def announce(self, event: ShadowUpdated | ShadowDeleted) -> None:
        """Send a change's messages to MQTT subscribers (the bus calls it on the loop)."""
        self._send_all(event)

    def _send_all(self, event: ShadowUpdated | ShadowDeleted) -> None:
        for topic, payload in event.messages():
            self._send(topic, payload)

    def _send(self, topic: str, payload: bytes) -> None:
        self._broker.publish(Message(topic, payload, REPLY_QOS, False))


def _token(payload: bytes) -> str | None:
    try:
        return read_client_token(payload)
    except ShadowError:
        return None

