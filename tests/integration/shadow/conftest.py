"""The AWS IoT Device SDK for Python v2 (``awsiotsdk``) pointed at a running Bastion.

Devices connect exactly as they would to AWS IoT: mutual TLS to ``localhost`` (a name on
Bastion's server certificate) with Bastion's root CA, the thing name as client id, and
the SDK's own MQTT clients — ``awscrt.mqtt`` (3.1.1) with the V1 ``IotShadowClient``, and
``awscrt.mqtt5`` with the request-response ``IotShadowClientV2``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import awsiot
import boto3
import pytest
from awscrt import mqtt5, mqtt_request_response
from awsiot import iotshadow, mqtt5_client_builder, mqtt_connection_builder
from botocore.config import Config as BotoConfig

from bastion.api import Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig
from bastion.datadir import DataDir
from support.clients import DeviceFiles
from support.running import RunningBastion

ENDPOINT = "localhost"
TIMEOUT = 10.0


class Inbox:
    """Messages delivered to SDK callbacks (SDK threads), read with a deadline."""

    def __init__(self) -> None:
        self._items: queue.Queue[Any] = queue.Queue()

    def __call__(self, item: Any) -> None:
        self._items.put(item)

    def next(self, timeout: float = TIMEOUT) -> Any:
        try:
            return self._items.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing arrived within {timeout} s") from None

    def empty(self) -> bool:
        return self._items.empty()


class Mqtt311:
    """An ``awscrt.mqtt.Connection`` built by ``mqtt_connection_builder.mtls_from_path``."""

    def __init__(self, device: DeviceFiles, port: int, client_id: str | None = None) -> None:
        self.interrupted = threading.Event()
        self.close_error: Exception | None = None
        self.connection = mqtt_connection_builder.mtls_from_path(
            endpoint=ENDPOINT, port=port, cert_filepath=str(device.cert),
            pri_key_filepath=str(device.key), ca_filepath=str(device.ca),
            client_id=client_id or device.name, clean_session=True, keep_alive_secs=30,
            on_connection_interrupted=lambda connection, error, **kw: self.interrupted.set(),
            enable_metrics_collection=False)
        self.connection.connect().result(TIMEOUT)
        self.shadow = iotshadow.IotShadowClient(self.connection)

    def close(self) -> None:
        try:
            self.connection.disconnect().result(TIMEOUT)
        except Exception as error:  # noqa: BLE001 - the server may have closed it already
            self.close_error = error


class Mqtt5:
    """An ``awscrt.mqtt5.Client`` built by ``mqtt5_client_builder.mtls_from_path``."""

    def __init__(self, device: DeviceFiles, port: int, client_id: str | None = None) -> None:
        self.connected: Future[mqtt5.LifecycleConnectSuccessData] = Future()
        self.stopped = threading.Event()
        self.client = mqtt5_client_builder.mtls_from_path(
            endpoint=ENDPOINT, port=port, cert_filepath=str(device.cert),
            pri_key_filepath=str(device.key), ca_filepath=str(device.ca),
            client_id=client_id or device.name, enable_metrics_collection=False,
            on_lifecycle_connection_success=self._connected,
            on_lifecycle_connection_failure=self._failed,
            on_lifecycle_stopped=lambda data: self.stopped.set())
        self.client.start()
        self.connected.result(TIMEOUT)

    def _connected(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        if not self.connected.done():
            self.connected.set_result(data)

    def _failed(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        if not self.connected.done():
            self.connected.set_exception(AssertionError(f"connection failed: {data.exception}"))

    def shadow_v2(self) -> iotshadow.IotShadowClientV2:
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=4, max_streaming_subscriptions=4,
            operation_timeout_in_seconds=int(TIMEOUT))
        return iotshadow.IotShadowClientV2(self.client, options)

    def close(self) -> None:
        self.client.stop()
        self.stopped.wait(TIMEOUT)


@pytest.fixture
def open_311() -> Iterator[Callable[..., Mqtt311]]:
    opened: list[Mqtt311] = []

    def make(device: DeviceFiles, port: int, client_id: str | None = None) -> Mqtt311:
        client = Mqtt311(device, port, client_id)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


@pytest.fixture
def open_5() -> Iterator[Callable[..., Mqtt5]]:
    opened: list[Mqtt5] = []

    def make(device: DeviceFiles, port: int, client_id: str | None = None) -> Mqtt5:
        client = Mqtt5(device, port, client_id)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def open_stream(shadow: iotshadow.IotShadowClientV2, create: Callable[..., Any],
                request: Any, inbox: Inbox) -> Any:
    """Open a V2 streaming operation and wait until its subscription is established."""
    established: Future[None] = Future()

    def status(event: mqtt_request_response.SubscriptionStatusEvent) -> None:
        kind = event.type
        if established.done():
            return
        if kind == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
            established.set_result(None)
        elif kind == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_HALTED:
            established.set_exception(AssertionError(f"stream halted: {event.error}"))

    stream = create(request, awsiot.ServiceStreamOptions(inbox, status))
    stream.open()
    established.result(TIMEOUT)
    return stream


def subscribe_311(connection_future: tuple[Future[Any], str]) -> Any:
    """Wait for a V1 ``subscribe_to_…`` call's SUBACK."""
    future, _topic = connection_future
    return future.result(TIMEOUT)


# -- the REST API (boto3 ``iot-data``) ------------------------------------------------

KEYS = {
    Role.OPERATOR: ("AKIASHADOWOPERATOR01", "shadow-operator-secret/abcdefghijklmnopqr"),
    Role.AUDITOR: ("AKIASHADOWAUDITOR001", "shadow-auditor-secret/abcdefghijklmnopqrs"),
}
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                        read_timeout=10)


class ApiBastion:
    """A running Bastion with its REST API (HTTPS, Bastion's server certificate) on the
    session's data directory, so ``make_device`` devices connect to it."""

    def __init__(self, datadir: DataDir) -> None:
        config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                        limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                        api=ApiConfig(host="127.0.0.1", port=0))
        self.datadir = datadir
        self.running = RunningBastion(config, datadir, credentials=StaticCredentials(
            {key: (secret, role) for role, (key, secret) in KEYS.items()}))
        self.running.start()
        api = self.running.app.api
        assert api is not None
        self.url = api.url

    @property
    def port(self) -> int:
        return self.running.port

    def iot_data(self, role: Role = Role.OPERATOR) -> Any:
        key, secret = KEYS[role]
        return boto3.client("iot-data", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            verify=str(self.datadir.ca_cert_path), config=NO_RETRIES)


@pytest.fixture(scope="module")
def api_bastion(datadir: DataDir) -> Iterator[ApiBastion]:
    running = ApiBastion(datadir)
    try:
        yield running
    finally:
        running.running.stop()
