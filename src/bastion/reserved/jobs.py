"""The Jobs service on the broker: ``$aws/things/<thing>/jobs/…`` requests and
notifications.

Theory of operation
-------------------
The broker has already authorized the client's PUBLISH to the request topic with its
policies; a device whose least-privilege policy covers only ``$aws/things/<own name>/*``
is refused there (MQTT 3.1.1: disconnected; MQTT 5: PUBACK 0x87) and never reaches this
handler. Requests (``get``, ``start-next``, ``<jobId>/get`` — ``$next`` included —, and
``<jobId>/update``) are consumed: they are not routed to subscribers.

:meth:`JobsTopics.on_publish` runs on the broker's event loop and must not block: it
parses the payload, then spawns the service call in a worker thread. The answer goes to
``<request>/accepted`` or ``<request>/rejected`` **directly to the requesting client**, as
AWS IoT does: the client gets it without subscribing, no other client or subscriber sees
it, and it still needs ``iot:Receive`` on the reply topic. A client subscribed to the reply
topic gets it once, at its subscription's QoS (at most 1); otherwise at the request's QoS.

Notifications are ordinary publications (any subscriber allowed ``iot:Receive`` gets
them): the service publishes :class:`~bastion.jobs.JobExecutionsChanged` and
:class:`~bastion.jobs.NextJobExecutionChanged` after its commits — whichever door made
the change — and :meth:`JobsTopics.announce` sends them on ``…/jobs/notify`` and
``…/jobs/notify-next``.

A client may have at most :data:`MAX_IN_FLIGHT` requests in progress; more are rejected
at once (``RequestThrottled``).

Every request answered is announced on the bus as a :class:`JobsRequestServed` (what the
request was, accepted or rejected and why): AWS IoT logs it (``bastion.iotlogs``).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final

from bastion.broker import Action, Broker, Message, Session
from bastion.clock import Clock, SystemClock
from bastion.events import EventBus
from bastion.jobs import (
    JobExecution,
    JobExecutionsChanged,
    JobExecutionState,
    JobsError,
    JobService,
    NextJobExecutionChanged,
)
from bastion.mqtt import parse_shared_subscription, topic_matches

log = logging.getLogger("bastion.reserved.jobs")

MAX_IN_FLIGHT: Final = 10
"""Jobs requests one client may have in progress at once."""
NOTIFY_QOS: Final = 1
MAX_CLIENT_TOKEN: Final = 64
_PREFIX: Final = "$aws/things/"


class JobsRequest(str, Enum):
    GET_PENDING = "get"
    START_NEXT = "start-next"
    DESCRIBE = "describe"
    UPDATE = "update"
    REPLY = "reply"  # a response or notification topic published by a client: dropped
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class JobsTopic:
    kind: JobsRequest
    thing_name: str
    job_id: str | None
    topic: str

    @property
    def accepted(self) -> str:
        return self.topic + "/accepted"

    @property
    def rejected(self) -> str:
        return self.topic + "/rejected"


def parse_jobs_topic(topic: str) -> JobsTopic | None:
    """Which jobs API ``topic`` addresses; ``None`` outside ``$aws/things/<thing>/jobs/``."""
    if not topic.startswith(_PREFIX):
        return None
    thing, _, tail = topic[len(_PREFIX):].partition("/")
    if not thing or not tail.startswith("jobs/"):
        return None
    rest = tail[len("jobs/"):]
    if rest == "get":
        return JobsTopic(JobsRequest.GET_PENDING, thing, None, topic)
    if rest == "start-next":
        return JobsTopic(JobsRequest.START_NEXT, thing, None, topic)
    if rest in ("notify", "notify-next"):
        return JobsTopic(JobsRequest.REPLY, thing, None, topic)
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] and parts[1] in ("get", "update"):
        kind = JobsRequest.DESCRIBE if parts[1] == "get" else JobsRequest.UPDATE
        return JobsTopic(kind, thing, parts[0], topic)
    if parts[-1] in ("accepted", "rejected"):
        return JobsTopic(JobsRequest.REPLY, thing, None, topic)
    return JobsTopic(JobsRequest.UNKNOWN, thing, None, topic)


_EVENT_TYPES: Final = {
    JobsRequest.GET_PENDING: "GetPendingJobExecution",
    JobsRequest.START_NEXT: "StartNextPendingJobExecution",
    JobsRequest.DESCRIBE: "DescribeJobExecution",
    JobsRequest.UPDATE: "UpdateJobExecution",
}


@dataclass(frozen=True, slots=True)
class JobsRequestServed:
    """A device's jobs request over MQTT was answered.

    :ivar event_type: AWS IoT's log event type (``UpdateJobExecution`` …).
    :ivar status: the status an update asked for (``IN_PROGRESS`` …), else ``None``.
    :ivar error_code: the rejection's ``code`` (``None``: accepted).
    """

    client_id: str
    event_type: str
    thing_name: str
    job_id: str | None
    topic: str
    client_token: str | None
    status: str | None
    error_code: str | None
    error_message: str | None
    timestamp: float


# -- wire format -----------------------------------------------------------------------------


def epoch(moment: datetime) -> int:
    return calendar.timegm(moment.utctimetuple())


def _document(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def execution_json(execution: JobExecution, *, with_document: bool) -> dict[str, Any]:
    """A ``JobExecution`` as the MQTT API spells it (document as an object)."""
    data: dict[str, Any] = {
        "jobId": execution.job_id,
        "thingName": execution.thing_name,
        "status": execution.status.value,
        "queuedAt": epoch(execution.queued_at),
        "lastUpdatedAt": epoch(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }
    if execution.status_details:
        data["statusDetails"] = dict(execution.status_details)
    if execution.started_at is not None:
        data["startedAt"] = epoch(execution.started_at)
    if execution.approximate_seconds_before_timed_out is not None:
        data["approximateSecondsBeforeTimedOut"] = execution.approximate_seconds_before_timed_out
    if with_document and execution.job_document is not None:
        data["jobDocument"] = _document(execution.job_document)
    return data


def summary_json(execution: JobExecution) -> dict[str, Any]:
    """A ``JobExecutionSummary``."""
    data: dict[str, Any] = {
        "jobId": execution.job_id,
        "queuedAt": epoch(execution.queued_at),
        "lastUpdatedAt": epoch(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }
    if execution.started_at is not None:
        data["startedAt"] = epoch(execution.started_at)
    return data


def state_json(state: JobExecutionState) -> dict[str, Any]:
    data: dict[str, Any] = {"status": state.status.value,
                            "versionNumber": state.version_number}
    if state.status_details:
        data["statusDetails"] = dict(state.status_details)
    return data


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


class _Rejected(Exception):
    """A request refused before reaching the service (bad payload); ``mqtt_code`` is the
    ``code`` of the ``…/rejected`` payload, as :attr:`bastion.jobs.JobsError.mqtt_code`."""

    def __init__(self, mqtt_code: str, message: str) -> None:
        super().__init__(message)
        self.mqtt_code = mqtt_code
        self.message = message


# -- request fields ----------------------------------------------------------------------------


def _request(payload: bytes) -> dict[str, Any]:
    if not payload.strip():
        return {}
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise _Rejected("InvalidJson", "The request payload is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise _Rejected("InvalidRequest", "The request payload must be a JSON object")
    return data


def _client_token(data: Mapping[str, Any]) -> str | None:
    token = data.get("clientToken")
    if token is None:
        return None
    if not isinstance(token, str) or len(token) > MAX_CLIENT_TOKEN:
        raise _Rejected("InvalidRequest",
                        f"clientToken must be a string of at most {MAX_CLIENT_TOKEN} characters")
    return token


def _integer(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Rejected("InvalidRequest", f"{key} must be an integer")
    return value


def _boolean(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _Rejected("InvalidRequest", f"{key} must be true or false")
    return value


def _details(data: Mapping[str, Any]) -> Mapping[str, str] | None:
    value = data.get("statusDetails")
    if value is not None and not isinstance(value, dict):
        raise _Rejected("InvalidRequest", "statusDetails must be an object of strings")
    return value


# -- the handler --------------------------------------------------------------------------------


class JobsTopics:
    """A :class:`~bastion.broker.ReservedTopicHandler` serving the jobs topics with the
    :class:`~bastion.jobs.JobService` (the REST API calls the same one). Timers, rollouts
    and group-driven continuous jobs are the :class:`~bastion.jobs.JobScheduler`'s,
    a component of its own.

    :param broker: the broker the replies and notifications are published on.
    :param service: the jobs service.
    :param bus: where the service publishes its changes; this handler notifies devices.
    :param clock: the replies' timestamps.
    """

    def __init__(self, broker: Broker, service: JobService, bus: EventBus, *,
                 clock: Clock | None = None, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._broker = broker
        self._max_in_flight = max_in_flight
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._in_flight: dict[str, int] = {}
        self._bus = bus
        self.service = service
        self._unsubscribe = [bus.subscribe(JobExecutionsChanged, self.announce),
                             bus.subscribe(NextJobExecutionChanged, self.announce)]

    def close(self) -> None:
        """Stop notifying the service's changes."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # -- ReservedTopicHandler -----------------------------------------------------------------

    def handles(self, topic: str) -> bool:
        return parse_jobs_topic(topic) is not None

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        request = parse_jobs_topic(message.topic)
        if request is None:
            return False
        if request.kind is JobsRequest.REPLY:
            log.info("client %r published on the reply topic %r: dropped", session.client_id,
                     message.topic)
            return True
        client_id = session.client_id
        qos = min(message.qos, 1)
        payload = bytes(message.payload)
        try:
            data = _request(payload)
            token = _client_token(data)
        except _Rejected as refused:
            self._reply(client_id, request.rejected, self._rejection(
                refused.mqtt_code, refused.message, None), qos)
            return True
        if request.kind is JobsRequest.UNKNOWN:
            self._reply(client_id, request.rejected, self._rejection(
                "InvalidTopic", f"{message.topic} is not a jobs API topic", token), qos)
            return True
        count = self._in_flight.get(client_id, 0)
        if count >= self._max_in_flight:
            self._reply(client_id, request.rejected, self._rejection(
                "RequestThrottled", "Too many requests in progress", token), qos)
            return True
        self._in_flight[client_id] = count + 1
        broker.spawn(self._serve(request, data, token, client_id, qos))
        return True

    # -- serving --------------------------------------------------------------------------------

    async def _serve(self, request: JobsTopic, data: dict[str, Any], token: str | None,
                     client_id: str, qos: int) -> None:
        failure: tuple[str, str] | None = None
        try:
            answer = await self._call(request, data)
            answer["timestamp"] = int(self._clock.time())
            if token is not None:
                answer["clientToken"] = token
            self._reply(client_id, request.accepted, answer, qos)
        except _Rejected as refused:
            failure = (refused.mqtt_code, refused.message)
            self._reply(client_id, request.rejected,
                        self._rejection(refused.mqtt_code, refused.message, token), qos)
        except JobsError as error:
            failure = (error.mqtt_code, error.message)
            self._reply(client_id, request.rejected,
                        self._rejection(error.mqtt_code, error.message, token,
                                        error.execution_state), qos)
        except Exception:  # our fault; the device still gets its answer
            failure = ("InternalError", "Internal service failure")
            log.exception("jobs %s of %r failed", request.kind.value, request.thing_name)
            self._reply(client_id, request.rejected, self._rejection(
                "InternalError", "Internal service failure", token), qos)
        finally:
            left = self._in_flight.get(client_id, 1) - 1
            if left > 0:
                self._in_flight[client_id] = left
            else:
                self._in_flight.pop(client_id, None)
        status = data.get("status") if request.kind is JobsRequest.UPDATE else None
        self._bus.publish(JobsRequestServed(
            client_id, _EVENT_TYPES.get(request.kind, request.kind.value), request.thing_name,
            request.job_id, request.topic, token, status if isinstance(status, str) else None,
            failure[0] if failure else None, failure[1] if failure else None,
            self._clock.time()))

    async def _call(self, request: JobsTopic, data: dict[str, Any]) -> dict[str, Any]:
        service = self.service
        thing = request.thing_name
        if request.kind is JobsRequest.GET_PENDING:
            pending = await asyncio.to_thread(service.get_pending_job_executions, thing)
            return {"inProgressJobs": [summary_json(e) for e in pending.in_progress],
                    "queuedJobs": [summary_json(e) for e in pending.queued]}
        if request.kind is JobsRequest.START_NEXT:
            details = _details(data)
            step = _integer(data, "stepTimeoutInMinutes")
            started = await asyncio.to_thread(
                lambda: service.start_next_pending_job_execution(
                    thing, status_details=details, step_timeout_in_minutes=step))
            return {} if started is None else {
                "execution": execution_json(started, with_document=True)}
        assert request.job_id is not None
        job_id = request.job_id
        if request.kind is JobsRequest.DESCRIBE:
            number = _integer(data, "executionNumber")
            include = _boolean(data, "includeJobDocument", True)
            found = await asyncio.to_thread(
                lambda: service.describe_job_execution(
                    job_id, thing, execution_number=number, include_job_document=include))
            return {} if found is None else {
                "execution": execution_json(found, with_document=include)}
        status = data.get("status")
        if status is None:
            raise _Rejected("InvalidRequest", "status is required")
        details = _details(data)
        expected = _integer(data, "expectedVersion")
        number = _integer(data, "executionNumber")
        step = _integer(data, "stepTimeoutInMinutes")
        with_state = _boolean(data, "includeJobExecutionState", False)
        with_document = _boolean(data, "includeJobDocument", False)
        updated = await asyncio.to_thread(
            lambda: service.update_job_execution(
                job_id, thing, status, status_details=details, expected_version=expected,
                execution_number=number, step_timeout_in_minutes=step))
        answer: dict[str, Any] = {}
        if with_state:
            answer["executionState"] = state_json(updated.execution_state)
        if with_document and updated.job_document is not None:
            answer["jobDocument"] = _document(updated.job_document)
        return answer

    def _rejection(self, code: str, message: str, token: str | None,
                   state: JobExecutionState | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {"code": code, "message": message,
                                    "timestamp": int(self._clock.time())}
        if token is not None:
            document["clientToken"] = token
        if state is not None:
            document["executionState"] = state_json(state)
        return document

    def _reply(self, client_id: str, topic: str, document: Mapping[str, Any],
               request_qos: int) -> None:
        """Deliver a response to the requesting client only (see the module docstring)."""
        session = self._broker.sessions.get(client_id)
        if session is None:
            return
        if not session.allowed(Action.RECEIVE, topic):
            log.info("client %r: iot:Receive denied on %r; jobs response dropped", client_id,
                     topic)
            return
        qos: int | None = None
        sub_ids: list[int] = []
        for topic_filter, options in session.subscriptions.items():
            if parse_shared_subscription(topic_filter) is not None:
                continue
            if topic_matches(topic_filter, topic):
                qos = max(qos or 0, options.qos)
                if options.subscription_id:
                    sub_ids.append(options.subscription_id)
        delivery_qos = min(1, request_qos if qos is None else qos)
        session.deliver(Message(topic, _encode(document), delivery_qos, False), delivery_qos,
                        False, tuple(sub_ids))

    # -- notifications --------------------------------------------------------------------------

    def announce(self, event: JobExecutionsChanged | NextJobExecutionChanged) -> None:
        """Publish a change's notifications (the bus calls it on the loop)."""
        self._notify(event)

    def _notify(self, event: JobExecutionsChanged | NextJobExecutionChanged) -> None:
        base = f"{_PREFIX}{event.thing_name}/jobs/"
        if isinstance(event, JobExecutionsChanged):
            jobs: dict[str, Any] = {}
            if event.in_progress:
                jobs["IN_PROGRESS"] = [summary_json(e) for e in event.in_progress]
            if event.queued:
                jobs["QUEUED"] = [summary_json(e) for e in event.queued]
            document: dict[str, Any] = {"timestamp": epoch(event.timestamp), "jobs": jobs}
            topic = base + "notify"
        else:
            document = {"timestamp": epoch(event.timestamp)}
            if event.execution is not None:
                document["execution"] = execution_json(event.execution, with_document=True)
            topic = base + "notify-next"
        self._broker.publish(Message(topic, _encode(document), NOTIFY_QOS, False))

