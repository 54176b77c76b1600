"""Devices running AWS's own SDK (``awsiotsdk``) for the jobs tests.

:class:`SdkDevice` is the SDK's ``IotJobsClient`` over the SDK's MQTT 3.1.1 connection
(or over its MQTT 5 client); :class:`SdkDeviceV2` is the request-response
``IotJobsClientV2`` over the MQTT 5 client. Both connect with mutual TLS to
``localhost`` with the device's certificate, the thing name as client id, and Bastion's
root CA — as a device written for AWS IoT does. SDK callbacks run on the CRT's threads;
they put what arrives into queues the test reads with a deadline (:func:`take`).
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from awscrt import mqtt, mqtt5, mqtt_request_response
from awsiot import ServiceStreamOptions, iotjobs, mqtt5_client_builder, mqtt_connection_builder

from support.clients import DeviceFiles

T = TypeVar("T")
TIMEOUT = 10.0
QOS1 = mqtt.QoS.AT_LEAST_ONCE


def take(source: queue.Queue[T], what: str, timeout: float = TIMEOUT) -> T:
    try:
        return source.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"timed out waiting for {what}") from None


def take_matching(source: queue.Queue[T], predicate: Callable[[T], bool], what: str,
                  timeout: float = TIMEOUT) -> T:
    """The first item satisfying ``predicate`` (earlier ones are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        try:
            item = source.get(timeout=remaining)
        except queue.Empty:
            continue
        if predicate(item):
            return item


class SdkDevice:
    """``awsiot.iotjobs.IotJobsClient`` over the SDK's MQTT 3.1.1 connection (or its MQTT 5
    client with ``mqtt5_client=True``)."""

    def __init__(self, device: DeviceFiles, port: int, *, mqtt5_client: bool = False) -> None:
        self.thing = device.name
        self.next_events: queue.Queue[iotjobs.NextJobExecutionChangedEvent] = queue.Queue()
        self.list_events: queue.Queue[iotjobs.JobExecutionsChangedEvent] = queue.Queue()
        self.accepted: queue.Queue[Any] = queue.Queue()
        self.rejected: queue.Queue[iotjobs.RejectedError] = queue.Queue()
        self._client5: mqtt5.Client | None = None
        self._connection: mqtt.Connection | None = None
        if mqtt5_client:
            connected: Future[None] = Future()
            self._client5 = mqtt5_client_builder.mtls_from_path(
                endpoint="localhost", port=port, ca_filepath=str(device.ca),
                cert_filepath=str(device.cert), pri_key_filepath=str(device.key),
                client_id=device.name,
                on_lifecycle_connection_success=lambda data: _resolve(connected),
                on_lifecycle_connection_failure=lambda data: _fail(connected, data))
            self._client5.start()
            connected.result(TIMEOUT)
            self.client = iotjobs.IotJobsClient(self._client5)
        else:
            self._connection = mqtt_connection_builder.mtls_from_path(
                endpoint="localhost", port=port, ca_filepath=str(device.ca),
                cert_filepath=str(device.cert), pri_key_filepath=str(device.key),
                client_id=device.name, clean_session=True, keep_alive_secs=30)
            self._connection.connect().result(TIMEOUT)
            self.client = iotjobs.IotJobsClient(self._connection)

    def subscribe_all(self, job_id: str) -> None:
        """Subscribe to the notifications and to every response topic for ``job_id``."""
        c, thing = self.client, self.thing
        subscriptions: list[tuple[Any, Any, Callable[..., Any]]] = [
            (c.subscribe_to_next_job_execution_changed_events,
             iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
             self.next_events.put),
            (c.subscribe_to_job_executions_changed_events,
             iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing),
             self.list_events.put),
            (c.subscribe_to_start_next_pending_job_execution_accepted,
             iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing),
             self.accepted.put),
            (c.subscribe_to_start_next_pending_job_execution_rejected,
             iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing),
             self.rejected.put),
            (c.subscribe_to_update_job_execution_accepted,
             iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id=job_id),
             self.accepted.put),
            (c.subscribe_to_update_job_execution_rejected,
             iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id=job_id),
             self.rejected.put),
            (c.subscribe_to_get_pending_job_executions_accepted,
             iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing),
             self.accepted.put),
            (c.subscribe_to_describe_job_execution_accepted,
             iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id=job_id),
             self.accepted.put),
        ]
        for subscribe, request, callback in subscriptions:
            future, _ = subscribe(request, QOS1, callback)
            future.result(TIMEOUT)

    def publish(self, future: Future[Any]) -> None:
        future.result(TIMEOUT)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.disconnect().result(TIMEOUT)
        if self._client5 is not None:
            self._client5.stop()


class SdkDeviceV2:
    """``awsiot.iotjobs.IotJobsClientV2`` (request-response) over the MQTT 5 client."""

    def __init__(self, device: DeviceFiles, port: int) -> None:
        self.thing = device.name
        self.next_events: queue.Queue[iotjobs.NextJobExecutionChangedEvent] = queue.Queue()
        connected: Future[None] = Future()
        self._client = mqtt5_client_builder.mtls_from_path(
            endpoint="localhost", port=port, ca_filepath=str(device.ca),
            cert_filepath=str(device.cert), pri_key_filepath=str(device.key),
            client_id=device.name,
            on_lifecycle_connection_success=lambda data: _resolve(connected),
            on_lifecycle_connection_failure=lambda data: _fail(connected, data))
        self._client.start()
        connected.result(TIMEOUT)
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=4, max_streaming_subscriptions=2,
            operation_timeout_in_seconds=int(TIMEOUT))
        self.client = iotjobs.IotJobsClientV2(self._client, options)
        subscribed: queue.Queue[Any] = queue.Queue()
        self.stream = self.client.create_next_job_execution_changed_stream(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=self.thing),
            ServiceStreamOptions(self.next_events.put, subscribed.put))
        self.stream.open()
        status = take(subscribed, "the notify-next stream's subscription")
        assert status.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED

    def close(self) -> None:
        self._client.stop()


def _resolve(future: Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: Future[None], data: Any) -> None:
    if not future.done():
        future.set_exception(AssertionError(f"connection failed: {data.exception}"))


def token() -> str:
    return uuid.uuid4().hex[:16]
