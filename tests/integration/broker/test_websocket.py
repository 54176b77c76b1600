"""MQTT over WebSocket Secure (``[mqtt] websocket_port``): the AWS IoT Device SDK's SigV4
websocket builders against Bastion, IoT policies attached to access keys, and every
refusal at the upgrade or at CONNECT, on real TLS sockets with Bastion's own CA."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from awscrt import auth, mqtt, mqtt5
from awscrt import http as crt_http
from awscrt.exceptions import AwsCrtError
from awsiot import mqtt5_client_builder, mqtt_connection_builder
from botocore.config import Config as BotoConfig
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)

from bastion.access import Role
from bastion.config import ApiConfig
from bastion.datadir import DataDir
from conftest import start_bastion
from support.clients import V311, Client, DeviceFiles, wait_for
from support.running import RunningBastion

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT = "localhost"
TIMEOUT = 10.0
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def key_arn(access_key_id: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:accesskey/{access_key_id}"


class Wss:
    """A running Bastion with its WSS listener and REST API, and an operator's boto3."""

    def __init__(self, datadir: DataDir) -> None:
        self.ws_port = free_port()
        self.running: RunningBastion = start_bastion(
            datadir, api=ApiConfig(host="127.0.0.1", port=0), websocket_port=self.ws_port)
        self.datadir = datadir
        services = self.running.app.services
        self.access = services.access
        operator = self.access.create_access_key(Role.OPERATOR, "wss tests")
        api = self.running.app.api
        assert api is not None
        self.iot = boto3.client("iot", endpoint_url=api.url, region_name=REGION,
                                aws_access_key_id=operator[0],
                                aws_secret_access_key=operator[1],
                                verify=str(datadir.ca_cert_path), config=NO_RETRIES)

    @property
    def port(self) -> int:
        return self.running.port

    def key(self, *statements: dict[str, Any]) -> tuple[str, str]:
        """A new access key; with ``statements``, a policy of them attached to it."""
        key_id, secret = self.access.create_access_key(Role.AUDITOR, "a websocket client")
        if statements:
            name = f"wss-{uuid.uuid4().hex[:8]}"
            self.iot.create_policy(policyName=name, policyDocument=policy(*statements))
            self.iot.attach_policy(policyName=name, target=key_arn(key_id))
        return key_id, secret


@pytest.fixture(scope="module")
def wss(datadir: DataDir) -> Iterator[Wss]:
    bastion = Wss(datadir)
    try:
        yield bastion
    finally:
        bastion.running.stop()


ALL = {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}


# -- the AWS IoT Device SDK (awscrt) -----------------------------------------------------------


class Sdk311:
    """``mqtt_connection_builder.websockets_with_default_aws_signing`` (MQTT 3.1.1)."""

    def __init__(self, wss: Wss, key: tuple[str, ...], client_id: str) -> None:
        self.interrupted = threading.Event()
        self.close_error: Exception | None = None
        credentials = auth.AwsCredentialsProvider.new_static(*key)
        self.connection = mqtt_connection_builder.websockets_with_default_aws_signing(
            endpoint=ENDPOINT, port=wss.ws_port, region=REGION,
            credentials_provider=credentials, ca_filepath=str(wss.datadir.ca_cert_path),
            client_id=client_id, clean_session=True, keep_alive_secs=30,
            enable_metrics_collection=False, reconnect_min_timeout_secs=60,
            reconnect_max_timeout_secs=60,
            on_connection_interrupted=lambda connection, error, **kw: self.interrupted.set())

    def connect(self) -> Sdk311:
        self.connection.connect().result(TIMEOUT)
        return self

    def close(self) -> None:
        try:
            self.connection.disconnect().result(TIMEOUT)
        except (AwsCrtError, RuntimeError, TimeoutError) as error:  # closed or refused
            self.close_error = error


@pytest.fixture
def sdk(wss: Wss) -> Iterator[Callable[..., Sdk311]]:
    opened: list[Sdk311] = []

    def make(key: tuple[str, ...], client_id: str | None = None) -> Sdk311:
        client = Sdk311(wss, key, client_id or f"wss-{uuid.uuid4().hex[:8]}")
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def test_sdk_over_websocket_and_a_tcp_device_exchange_messages(wss, sdk, make_device):
    topic = f"wss/{uuid.uuid4().hex[:8]}"
    client = sdk(wss.key(ALL)).connect()
    device = Client(make_device(), wss.port, version=V311).connect()
    device.subscribe(f"{topic}/up", 1)
    inbox: Future[bytes] = Future()
    subscribed, _ = client.connection.subscribe(
        f"{topic}/down", mqtt.QoS.AT_LEAST_ONCE,
        lambda topic, payload, **kw: inbox.set_result(payload))
    subscribed.result(TIMEOUT)
    # device (TCP, certificate) -> SDK (WebSocket, access key)
    device.publish(f"{topic}/down", b"to the browser", qos=1)
    assert inbox.result(TIMEOUT) == b"to the browser"
    # SDK -> device
    published, _ = client.connection.publish(f"{topic}/up", b"to the device",
                                             mqtt.QoS.AT_LEAST_ONCE)
    published.result(TIMEOUT)
    assert device.expect(1)[0].payload == b"to the device"
    device.disconnect()


def test_sdk_mqtt5_over_websocket(wss, make_device):
    topic = f"wss5/{uuid.uuid4().hex[:8]}"
    key_id, secret = wss.key(ALL)
    connected: Future[None] = Future()
    stopped = threading.Event()
    inbox: Future[bytes] = Future()
    client = mqtt5_client_builder.websockets_with_default_aws_signing(
        endpoint=ENDPOINT, port=wss.ws_port, region=REGION,
        credentials_provider=auth.AwsCredentialsProvider.new_static(key_id, secret),
        ca_filepath=str(wss.datadir.ca_cert_path), client_id=f"wss5-{uuid.uuid4().hex[:6]}",
        enable_metrics_collection=False,
        on_lifecycle_connection_success=lambda data: connected.set_result(None),
        on_lifecycle_connection_failure=lambda data: connected.set_exception(
            AssertionError(str(data.exception))),
        on_lifecycle_stopped=lambda data: stopped.set(),
        on_publish_received=lambda data: inbox.set_result(bytes(data.publish_packet.payload)))
    client.start()
    try:
        connected.result(TIMEOUT)
        client.subscribe(mqtt5.SubscribePacket([mqtt5.Subscription(
            topic, mqtt5.QoS.AT_LEAST_ONCE)])).result(TIMEOUT)
        device = Client(make_device(), wss.port, version=V311).connect()
        device.publish(topic, b"over mqtt5", qos=1)
        assert inbox.result(TIMEOUT) == b"over mqtt5"
        device.disconnect()
    finally:
        client.stop()
        stopped.wait(TIMEOUT)


def test_policy_of_the_key_decides_publish_and_subscribe(wss, sdk, make_device):
    topic = f"scoped/{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}"
    client = sdk(wss.key(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arn}:topic/{topic}/ok"},
    )).connect()
    device = Client(make_device(), wss.port, version=V311).connect()
    device.subscribe(f"{topic}/#", 1)
    suback, _ = client.connection.subscribe(f"{topic}/#", mqtt.QoS.AT_LEAST_ONCE,
                                            lambda **kw: None)
    with pytest.raises(mqtt.SubscribeError):  # SUBACK 0x80: not allowed
        suback.result(TIMEOUT)
    client.connection.publish(f"{topic}/ok", b"allowed", mqtt.QoS.AT_LEAST_ONCE)[0].result(
        TIMEOUT)
    assert device.expect(1)[0].payload == b"allowed"
    device.disconnect()


def test_detaching_the_policy_drops_the_live_session(wss, sdk):
    key_id, secret = wss.key()
    wss.iot.create_policy(policyName=f"live-{key_id}", policyDocument=policy(ALL))
    wss.iot.attach_policy(policyName=f"live-{key_id}", target=key_arn(key_id))
    client = sdk((key_id, secret)).connect()
    assert not client.interrupted.is_set()
    wss.iot.detach_policy(policyName=f"live-{key_id}", target=key_arn(key_id))
    assert client.interrupted.wait(5.0), "the session outlived its policy"


def test_temporary_credentials_with_a_security_token(wss, sdk, make_device):
    device = make_device()
    alias = f"wss-alias-{uuid.uuid4().hex[:6]}"
    wss.iot.create_role_alias(roleAlias=alias,
                              roleArn=f"arn:aws:iam::{ACCOUNT}:role/bastion-auditor")
    issued = wss.running.app.services.temporary_credentials.issue(
        role=Role.AUDITOR, role_alias=alias, thing_name=device.name,
        certificate_id=device.certificate_id, duration_seconds=900)
    key = (issued.access_key_id, issued.secret_access_key, issued.session_token)
    # No policy on the role alias yet: the upgrade passes, CONNECT does not.
    with pytest.raises(AwsCrtError, match="REFUSED|NOT_AUTHORIZED|HANGUP|PROTOCOL"):
        sdk(key).connect()
    name = f"alias-{uuid.uuid4().hex[:6]}"
    wss.iot.create_policy(policyName=name, policyDocument=policy(ALL))
    wss.iot.attach_policy(policyName=name,
                          target=f"arn:aws:iot:{REGION}:{ACCOUNT}:rolealias/{alias}")
    client = sdk(key).connect()
    client.connection.publish("alias/hello", b"x", mqtt.QoS.AT_LEAST_ONCE)[0].result(TIMEOUT)
    # A token that is not the one issued is refused at the upgrade.
    forged = (issued.access_key_id, issued.secret_access_key, issued.session_token[:-4] + "AAAA")
    status, _ = RawClient.upgrade(wss, presign(wss, forged))
    assert status == 403


def test_attach_policy_to_an_unknown_key_is_not_found(wss):
    wss.iot.create_policy(policyName="wss-nobody", policyDocument=policy(ALL))
    with pytest.raises(wss.iot.exceptions.ResourceNotFoundException):
        wss.iot.attach_policy(policyName="wss-nobody", target=key_arn("AKIANOSUCHKEY0000000"))


# -- a raw WebSocket client (wsproto) for what the SDK never sends ---------------------------


def presign(wss: Wss, key: tuple[str, ...], *, service: str = "iotdevicegateway",
            region: str = REGION, when: datetime | None = None, expires: int = 86400,
            path: str = "/mqtt") -> str:
    """A request target presigned by awscrt's SigV4 signer, as the SDK signs it."""
    request = crt_http.HttpRequest("GET", path, crt_http.HttpHeaders(
        [("Host", f"{ENDPOINT}:{wss.ws_port}")]))
    config = auth.AwsSigningConfig(
        algorithm=auth.AwsSigningAlgorithm.V4,
        signature_type=auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS,
        credentials_provider=auth.AwsCredentialsProvider.new_static(*key),
        region=region, service=service, date=when or datetime.now(UTC),
        expiration_in_seconds=expires, omit_session_token=True)
    auth.aws_sign_request(request, config).result(TIMEOUT)
    return str(request.path)


_RAW_OPEN: list[RawClient] = []


@pytest.fixture(autouse=True)
def _close_raw_clients() -> Iterator[None]:
    yield
    while _RAW_OPEN:
        _RAW_OPEN.pop().close()


class RawClient:
    """A WebSocket client on a TLS socket: the upgrade, then MQTT bytes in binary frames.
    Closed after each test."""

    def __init__(self, wss: Wss, target: str, *, subprotocols: tuple[str, ...] = ("mqtt",),
                 device: DeviceFiles | None = None) -> None:
        context = ssl.create_default_context(cafile=str(wss.datadir.ca_cert_path))
        if device is not None:
            context.load_cert_chain(str(device.cert), str(device.key))
        raw = socket.create_connection(("127.0.0.1", wss.ws_port), timeout=TIMEOUT)
        self.sock = context.wrap_socket(raw, server_hostname=ENDPOINT)
        _RAW_OPEN.append(self)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"{ENDPOINT}:{wss.ws_port}",
                                               target=target,
                                               subprotocols=list(subprotocols))))
        self.status = 0
        self.body = b""
        self.closed: CloseConnection | None = None
        self.received = bytearray()
        while not self.status:
            self._read()

    @classmethod
    def upgrade(cls, wss: Wss, target: str, **options: Any) -> tuple[int, bytes]:
        client = cls(wss, target, **options)
        client.sock.close()
        return client.status, client.body

    def _read(self) -> bool:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.status = 101
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif hasattr(event, "data") and isinstance(event.data, bytes | bytearray) and (
                    not isinstance(event, BytesMessage)):
                self.body += event.data  # RejectData
            elif isinstance(event, BytesMessage):
                self.received += event.data
            elif isinstance(event, CloseConnection):
                self.closed = event
        return bool(data)

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def connack(self) -> int:
        """Read until a whole CONNACK; its return code."""
        while len(self.received) < 4:
            assert self._read(), "closed before CONNACK"
        assert self.received[0] == 0x20, bytes(self.received)
        code = self.received[3]
        del self.received[:4]
        return code

    def wait_closed(self) -> None:
        """Until the server ends the connection (a close frame or EOF)."""
        while self.closed is None:
            try:
                if not self._read():
                    return
            except (ConnectionError, ssl.SSLError):
                return

    def close(self) -> None:
        self.sock.close()


def connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT (clean session, keep-alive 60 s)."""
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(body)]) + body


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH."""
    name = topic.encode()
    body = len(name).to_bytes(2, "big") + name + payload
    return b"\x30" + remaining_length(len(body)) + body


def subscribe_packet(packet_id: int, topic_filter: str) -> bytes:
    name = topic_filter.encode()
    body = packet_id.to_bytes(2, "big") + len(name).to_bytes(2, "big") + name + b"\x00"
    return b"\x82" + remaining_length(len(body)) + body


def test_frames_may_split_and_join_packets(wss):
    topic = f"frames/{uuid.uuid4().hex[:8]}"
    client = RawClient(wss, presign(wss, wss.key(ALL)))
    assert client.status == 101
    connect = connect_packet("frames-client")
    client.send(connect[:5])  # part of a packet
    client.send(connect[5:])
    assert client.connack() == 0
    # SUBSCRIBE and a PUBLISH to itself in one frame
    client.send(subscribe_packet(1, topic) + publish_packet(topic, b"looped"))
    wait_for(lambda: client._read() and b"looped" in client.received, TIMEOUT,
             "the message to come back")
    client.close()


@pytest.mark.parametrize(("path", "subprotocols", "status"), [
    ("/other", ("mqtt",), 404),
    ("/mqtt", ("wamp",), 400),
    ("/mqtt", (), 400),
], ids=["wrong-path", "wrong-subprotocol", "no-subprotocol"])
def test_upgrade_refused_for_wrong_path_or_subprotocol(wss, path, subprotocols, status):
    key = wss.key(ALL)
    target = presign(wss, key, path=path)
    assert RawClient.upgrade(wss, target, subprotocols=subprotocols)[0] == status


def test_upgrade_without_signature_or_certificate_is_403(wss):
    assert RawClient.upgrade(wss, "/mqtt")[0] == 403


@pytest.mark.parametrize("case", [
    "bad-signature", "unknown-key", "expired", "future", "wrong-service", "wrong-region",
    "tampered-query",
])
def test_upgrade_refused_403(wss, case):
    key_id, secret = wss.key(ALL)
    options: dict[str, Any] = {}
    key: tuple[str, ...] = (key_id, secret)
    if case == "bad-signature":
        key = (key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    elif case == "unknown-key":
        key = ("AKIAUNKNOWNKEY000000", secret)
    elif case == "expired":
        options = {"when": datetime.now(UTC) - timedelta(minutes=10), "expires": 60}
    elif case == "future":
        options = {"when": datetime.now(UTC) + timedelta(minutes=30)}
    elif case == "wrong-service":
        options = {"service": "iotdata"}
    elif case == "wrong-region":
        options = {"region": "eu-west-1"}
    target = presign(wss, key, **options)
    if case == "tampered-query":
        target = target.replace("X-Amz-Expires=86400", "X-Amz-Expires=86399")
    status, body = RawClient.upgrade(wss, target)
    assert status == 403, body
    assert secret.encode() not in body


def test_a_presigned_url_replayed_after_it_expired_is_refused(wss):
    target = presign(wss, wss.key(ALL), expires=2)
    first = RawClient(wss, target)
    assert first.status == 101
    first.send(connect_packet("replay-1"))
    assert first.connack() == 0
    # The connection outlives its URL (as on AWS IoT); a new upgrade with it does not.
    wait_for(lambda: RawClient.upgrade(wss, target)[0] == 403, 6.0, "the URL to expire")
    first.send(b"\xc0\x00")  # PINGREQ: still served
    while len(first.received) < 2:
        assert first._read()
    assert bytes(first.received[:2]) == b"\xd0\x00"
    first.close()


def test_key_without_an_attached_policy_gets_connack_not_authorized(wss):
    client = RawClient(wss, presign(wss, wss.key()))
    assert client.status == 101  # the signature is good
    client.send(connect_packet("no-policy"))
    assert client.connack() == 5  # not authorized
    client.wait_closed()


def test_oversized_packet_in_one_frame_closes_the_connection(wss, make_device):
    topic = f"big/{uuid.uuid4().hex[:8]}"
    watcher = Client(make_device(), wss.port, version=V311).connect()
    watcher.subscribe(topic, 0)
    client = RawClient(wss, presign(wss, wss.key(ALL)))
    client.send(connect_packet("oversized"))
    assert client.connack() == 0
    limit = wss.running.app.broker.limits.max_packet_bytes
    try:
        client.send(publish_packet(topic, b"x" * (limit + 1024)))
    except (ConnectionError, ssl.SSLError):
        pass  # closed while the frame was still being sent
    else:
        client.wait_closed()
    watcher.expect_none()
    watcher.disconnect()


def test_text_frames_close_the_connection(wss):
    client = RawClient(wss, presign(wss, wss.key(ALL)))
    client.sock.sendall(client.ws.send(TextMessage(data="CONNECT")))
    client.wait_closed()
    assert client.closed is not None and client.closed.code == 1003


def test_client_certificate_on_the_websocket_port(wss, make_device):
    topic = f"mtls-ws/{uuid.uuid4().hex[:8]}"
    device = make_device()
    client = RawClient(wss, "/mqtt", device=device)
    assert client.status == 101
    client.send(connect_packet(device.name))
    assert client.connack() == 0
    client.send(subscribe_packet(1, topic) + publish_packet(topic, b"cert over ws"))
    wait_for(lambda: client._read() and b"cert over ws" in client.received, TIMEOUT,
             "the message to come back")
    client.close()


def test_unregistered_certificate_on_the_websocket_port_is_refused(wss, make_device, plane):
    device = make_device()
    plane.identity.update_certificate(device.certificate_id, "INACTIVE")
    client = RawClient(wss, "/mqtt", device=device)
    assert client.status == 101
    client.send(connect_packet(device.name))
    assert client.connack() == 5
    client.close()


def connect_persistent(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT that keeps its session (clean session 0)."""
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x00\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(body)]) + body


def session_present(wss: Wss, key: tuple[str, str], client_id: str) -> bool:
    client = RawClient(wss, presign(wss, key))
    client.send(connect_persistent(client_id))
    while len(client.received) < 4:
        assert client._read(), "closed before CONNACK"
    assert client.received[:2] == b"\x20\x02" and client.received[3] == 0
    present = bool(client.received[2] & 1)
    client.send(b"\xe0\x00")  # DISCONNECT
    client.wait_closed()
    client.close()
    return present


def test_a_persistent_session_is_resumed_only_by_the_same_key(wss):
    client_id = f"persistent-{uuid.uuid4().hex[:6]}"
    first, second = wss.key(ALL), wss.key(ALL)
    assert not session_present(wss, first, client_id)
    assert session_present(wss, first, client_id)
    # Another key with the same client id starts afresh (and replaces the session) ...
    assert not session_present(wss, second, client_id)
    # ... as a certificate would.
    assert not session_present(wss, first, client_id)


def test_key_sessions_are_not_a_shared_certificate(wss, sdk):
    journal = wss.running.app.journal
    assert journal is not None
    before = journal.shared_certificates_seen
    key = wss.key(ALL)
    sdk(key).connect()
    sdk(key).connect()  # two client ids, one key, no certificate at all
    sdk(wss.key(ALL)).connect()
    assert journal.shared_certificates_seen == before


def test_key_attachments_are_listed_like_certificates(wss):
    key_id, _ = wss.key()
    wss.iot.create_policy(policyName=f"listed-{key_id}", policyDocument=policy(ALL))
    wss.iot.attach_policy(policyName=f"listed-{key_id}", target=key_arn(key_id))
    targets = wss.iot.list_targets_for_policy(policyName=f"listed-{key_id}")["targets"]
    assert targets == [key_arn(key_id)]
    attached = wss.iot.list_attached_policies(target=key_arn(key_id))["policies"]
    assert [p["policyName"] for p in attached] == [f"listed-{key_id}"]
    wss.iot.detach_policy(policyName=f"listed-{key_id}", target=key_arn(key_id))
    assert wss.iot.list_attached_policies(target=key_arn(key_id))["policies"] == []
