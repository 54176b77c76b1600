"""MQTT-based file delivery on the broker: ``$aws/things/<thing>/streams/<streamId>/…``.

Theory of operation
-------------------
A device asks on ``…/describe/<json|cbor>`` or ``…/get/<json|cbor>`` and is answered on
``…/description/<format>``, ``…/data/<format>`` (one message per block) or
``…/rejected/<format>``, in the request's format (see :mod:`bastion.ota._stream_messages`
for the short keys).

The broker has already authorized the client's PUBLISH on the request topic with its
policies: a device whose least-privilege policy covers only ``$aws/things/<own
name>/*`` cannot ask under another thing's name (MQTT 3.1.1: disconnected; MQTT 5:
PUBACK 0x87) and never reaches this handler. Requests are consumed (never routed to other
subscribers), and a client's own PUBLISH on an answer topic is dropped: nobody may forge
the service's answers. Answers go to the requesting connection alone, and only when it
subscribed to the answer's topic and may receive it (:func:`answer_requester`), as AWS
does.

:meth:`StreamsTopics.on_publish` runs on the broker's event loop and must not block: it
parses and checks the request there, then reads the stream and the blocks in a worker
thread (at most 128 KB per request) and delivers the answers back on the loop. A client
may have at most :data:`MAX_IN_FLIGHT` requests in progress; more are refused at once
(``InvalidRequest``), so one client holds at most ``MAX_IN_FLIGHT`` × 128 KB of blocks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from bastion.broker import Broker, Message, Session
from bastion.ota import (
    GetStreamRequest,
    StreamErrorCode,
    StreamRequestRefused,
    StreamService,
    client_token_of,
    data_message,
    decode_request,
    description_message,
    encode,
    parse_get_request,
    rejection_message,
)

from ._answers import InFlight, answer_requester

log = logging.getLogger("bastion.reserved.streams")

MAX_IN_FLIGHT: Final = 4
"""Streams requests one client may have in progress at once."""
ANSWER_QOS: Final = 1
_PREFIX: Final = "$aws/things/"
_FORMATS: Final = ("json", "cbor")
_ANSWERS: Final = ("data", "description", "rejected")


class StreamsRequest(str, Enum):
    GET = "get"
    DESCRIBE = "describe"
    ANSWER = "answer"  # an answer topic published by a client: dropped
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StreamsTopic:
    kind: StreamsRequest
    thing_name: str
    stream_id: str
    payload_format: str
    """``json`` or ``cbor`` (``json`` for a topic whose format is unknown)."""
    base: str
    """``$aws/things/<thing>/streams/<streamId>``."""

    def answer(self, kind: str) -> str:
        return f"{self.base}/{kind}/{self.payload_format}"


def parse_streams_topic(topic: str) -> StreamsTopic | None:
    """Which streams API ``topic`` addresses; ``None`` outside
    ``$aws/things/<thing>/streams/<streamId>/``."""
    if not topic.startswith(_PREFIX) or "/streams/" not in topic:
        return None
    parts = topic[len(_PREFIX):].split("/")
    if len(parts) < 4 or not parts[0] or parts[1] != "streams" or not parts[2]:
        return None
    thing, stream_id, rest = parts[0], parts[2], parts[3:]
    base = f"{_PREFIX}{thing}/streams/{stream_id}"
    if len(rest) == 2 and rest[1] in _FORMATS:
        if rest[0] in ("get", "describe"):
            return StreamsTopic(StreamsRequest(rest[0]), thing, stream_id, rest[1], base)
        if rest[0] in _ANSWERS:
            return StreamsTopic(StreamsRequest.ANSWER, thing, stream_id, rest[1], base)
    return StreamsTopic(StreamsRequest.UNKNOWN, thing, stream_id,
                        rest[-1] if rest[-1] in _FORMATS else "json", base)


class StreamsTopics:
    """A :class:`~bastion.broker.ReservedTopicHandler` serving the streams topics with
    the :class:`~bastion.ota.StreamService` (the REST API manages the same streams).

    :param service: the stream service.
    """

    def __init__(self, service: StreamService, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.service = service
        self._in_flight = InFlight(max_in_flight)

    # -- ReservedTopicHandler -------------------------------------------------------

    def handles(self, topic: str) -> bool:
        return parse_streams_topic(topic) is not None

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        request = parse_streams_topic(message.topic)
        if request is None:
            return False
        if request.kind is StreamsRequest.ANSWER:
            log.info("client %r published on the answer topic %r: dropped",
                     session.client_id, message.topic)
            return True
        try:
            if request.kind is StreamsRequest.UNKNOWN:
                raise StreamRequestRefused(StreamErrorCode.INVALID_TOPIC,
                                           f"{message.topic} is not a streams API topic")
            data = decode_request(bytes(message.payload), request.payload_format)
            token = client_token_of(data)
            get = parse_get_request(data) if request.kind is StreamsRequest.GET else None
            if not self._in_flight.enter(session.client_id):
                raise StreamRequestRefused(StreamErrorCode.INVALID_REQUEST,
                                           "Too many stream requests in progress", token)
        except StreamRequestRefused as refused:
            self._send(session, request.answer("rejected"), rejection_message(refused),
                       request.payload_format)
            return True
        broker.spawn(self._serve(request, session, get, token))
        return True

    # -- serving --------------------------------------------------------------------

    async def _serve(self, request: StreamsTopic, session: Session,
                     get: GetStreamRequest | None, token: str | None) -> None:
        connection = session.connection
        try:
            answers = await self._answers(request, get, token)
        finally:
            self._in_flight.leave(session.client_id)
        if connection is None or session.connection is not connection:
            log.info("client %r left before its stream answer", session.client_id)
            return
        for topic, document in answers:
            if not self._send(session, topic, document, request.payload_format):
                return

    async def _answers(self, request: StreamsTopic, get: GetStreamRequest | None,
                       token: str | None) -> list[tuple[str, dict[str, Any]]]:
        service = self.service
        try:
            if get is None:
                stream = await asyncio.to_thread(service.describe_for_device,
                                                 request.stream_id, token)
                return [(request.answer("description"), description_message(
                    version=stream.version, description=stream.description,
                    files=[(item.file_id, item.size) for item in stream.files],
                    client_token=token))]
            blocks = await asyncio.to_thread(service.read_blocks, request.stream_id, get)
            return [(request.answer("data"), data_message(
                file_id=get.file_id, block_id=block_id, data=data, client_token=token))
                for block_id, data in blocks]
        except StreamRequestRefused as refused:
            return [(request.answer("rejected"), rejection_message(refused))]
        except Exception:  # our fault; the device still gets its answer
            log.exception("stream %s %s of %r failed", request.stream_id, request.kind.value,
                          request.thing_name)
            return [(request.answer("rejected"), rejection_message(StreamRequestRefused(
                StreamErrorCode.INTERNAL_ERROR, "Internal service failure", token)))]

    @staticmethod
    def _send(session: Session, topic: str, document: dict[str, Any],
              payload_format: str) -> bool:
        return answer_requester(session, topic, encode(document, payload_format), ANSWER_QOS)
