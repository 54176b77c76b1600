"""MQTT-based file delivery against a running Bastion: boto3's ``iot`` client manages
streams (CreateStream … DeleteStream, the auditor reading only), and real mutual-TLS
devices with the least-privilege device policy read them over
``$aws/things/<thing>/streams/<streamId>/…`` in JSON and CBOR with AWS's short keys. A
bad request is answered on ``…/rejected`` with AWS's error code; a device cannot ask
under another thing's name, cannot forge an answer, and gets nothing its policy does not
let it receive."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from botocore.exceptions import ClientError

from bastion.account import Account
from bastion.controlplane import device_policy_document
from support.clients import Client, DeviceFiles

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api
from .test_signing import error_code, upload

ROLE = f"arn:aws:iam::{ACCOUNT}:role/streams"
LEAST_PRIVILEGE = device_policy_document(Account(REGION, ACCOUNT))


def stream_files(*names: str) -> list[dict[str, Any]]:
    return [{"fileId": index * 3, "s3Location": {"bucket": "firmware", "key": name}}
            for index, name in enumerate(names)]


@pytest.fixture
def firmware(api_bastion: ApiBastion, unique: Callable[[str], str],
             tmp_path: Path) -> tuple[str, bytes]:
    data = os.urandom(10_000)
    name = unique("stream") + ".bin"
    upload(api_bastion, data, name, tmp_path)
    return name, data


@pytest.fixture
def device(api_bastion: ApiBastion, unique: Callable[[str], str],
           tmp_path: Path) -> Iterator[tuple[DeviceFiles, Client]]:
    """A device with the least-privilege policy, connected (client id = thing name)."""
    files = device_through_api(api_bastion, api_bastion.client(), unique("reader"),
                               tmp_path / "device", LEAST_PRIVILEGE)
    client = Client(files, api_bastion.mqtt_port, client_id=files.name).connect()
    try:
        yield files, client
    finally:
        client.disconnect()


def topic(thing: str, stream_id: str, kind: str, payload_format: str = "json") -> str:
    return f"$aws/things/{thing}/streams/{stream_id}/{kind}/{payload_format}"


def test_streams_are_managed_through_the_iot_api(api_bastion: ApiBastion,
                                                 unique: Callable[[str], str],
                                                 firmware: tuple[str, bytes],
                                                 tmp_path: Path) -> None:
    iot, auditor = api_bastion.client(), api_bastion.client("iot", "auditor")
    name, data = firmware
    digest = hashlib.sha256(data).hexdigest()
    other = unique("other") + ".bin"
    upload(api_bastion, b"second file", other, tmp_path)
    stream_id = unique("stream")
    created = iot.create_stream(streamId=stream_id, description="firmware 2.1",
                                files=stream_files(name, other), roleArn=ROLE)
    assert created["streamId"] == stream_id and created["streamVersion"] == 1
    assert created["streamArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:stream/{stream_id}"
    info = auditor.describe_stream(streamId=stream_id)["streamInfo"]
    assert info["files"] == [
        {"fileId": 0, "s3Location": {"bucket": "firmware", "key": name, "version": digest}},
        {"fileId": 3, "s3Location": {"bucket": "firmware", "key": other,
                                     "version": hashlib.sha256(b"second file").hexdigest()}}]
    assert info["roleArn"] == ROLE and info["description"] == "firmware 2.1"
    assert info["createdAt"] == info["lastUpdatedAt"]
    listed = auditor.list_streams(maxResults=250)["streams"]
    assert {"streamId": stream_id, "streamArn": created["streamArn"], "streamVersion": 1,
            "description": "firmware 2.1"} in listed
    updated = iot.update_stream(streamId=stream_id, files=stream_files(other))
    assert updated["streamVersion"] == 2
    assert [f["fileId"] for f in iot.describe_stream(streamId=stream_id)["streamInfo"][
        "files"]] == [0]

    refusals: list[tuple[Callable[[], Any], tuple[str, int]]] = [
        (lambda: iot.create_stream(streamId=stream_id, files=stream_files(name),
                                   roleArn=ROLE),
         ("ResourceAlreadyExistsException", 409)),
        (lambda: iot.create_stream(streamId=unique("s"), files=stream_files("absent.bin"),
                                   roleArn=ROLE), ("ResourceNotFoundException", 404)),
        (lambda: iot.create_stream(streamId=unique("s"), roleArn=ROLE, files=[
            {"fileId": 0, "s3Location": {"bucket": "b", "key": name, "version": "0" * 64}}]),
         ("InvalidRequestException", 400)),
        (lambda: iot.create_stream(streamId=unique("s"), roleArn=ROLE,
                                   files=stream_files(name) * 2),
         ("InvalidRequestException", 400)),
        (lambda: auditor.create_stream(streamId=unique("s"), files=stream_files(name),
                                       roleArn=ROLE), ("AccessDeniedException", 403)),
        (lambda: auditor.delete_stream(streamId=stream_id), ("AccessDeniedException", 403)),
        (lambda: iot.update_stream(streamId=unique("absent"), description="x"),
         ("ResourceNotFoundException", 404)),
    ]
    for call, expected in refusals:
        with pytest.raises(ClientError) as error:
            call()
        assert error_code(error) == expected
    iot.delete_stream(streamId=stream_id)
    with pytest.raises(ClientError) as error:
        iot.describe_stream(streamId=stream_id)
    assert error_code(error) == ("ResourceNotFoundException", 404)


def test_a_device_reads_a_stream_in_json_and_cbor(
        api_bastion: ApiBastion, unique: Callable[[str], str], firmware: tuple[str, bytes],
        device: tuple[DeviceFiles, Client]) -> None:
    name, data = firmware
    stream_id = unique("stream")
    api_bastion.client().create_stream(streamId=stream_id, description="fw",
                                       files=stream_files(name), roleArn=ROLE)
    thing, client = device[0].name, device[1]
    for kind in ("description", "data", "rejected"):
        for payload_format in ("json", "cbor"):
            client.subscribe(topic(thing, stream_id, kind, payload_format), qos=1)

    client.publish(topic(thing, stream_id, "describe"), json.dumps({"c": "d1"}), qos=1)
    [described] = client.expect()
    assert described.topic == topic(thing, stream_id, "description")
    assert json.loads(described.payload) == {"c": "d1", "s": 1, "d": "fw",
                                             "r": [{"f": 0, "z": len(data)}]}

    # JSON: three blocks of 4096 bytes from the start, base64 in "p".
    client.publish(topic(thing, stream_id, "get"),
                   json.dumps({"c": "g1", "s": 1, "f": 0, "l": 4096, "o": 0, "n": 3}), qos=1)
    blocks = [json.loads(m.payload) for m in client.expect(3)]
    assert [(b["c"], b["f"], b["i"], b["l"]) for b in blocks] == [
        ("g1", 0, 0, 4096), ("g1", 0, 1, 4096), ("g1", 0, 2, len(data) - 8192)]
    assert b"".join(base64.b64decode(b["p"]) for b in blocks) == data
    client.expect_none()

    # CBOR with a bitmap: blocks 3 and 5 of 1024 bytes (offset 2: bits 1 and 3).
    request = {"c": "g2", "f": 0, "l": 1024, "o": 2, "b": bytes([0b1010])}
    client.publish(topic(thing, stream_id, "get", "cbor"), cbor2.dumps(request), qos=1)
    answers = client.expect(2)
    assert {m.topic for m in answers} == {topic(thing, stream_id, "data", "cbor")}
    decoded = [cbor2.loads(m.payload) for m in answers]
    assert [(b["i"], b["p"]) for b in decoded] == [(3, data[3072:4096]), (5, data[5120:6144])]
    assert all(b["l"] == 1024 and b["c"] == "g2" for b in decoded)
    # The same bitmap as hexadecimal text, in JSON.
    client.publish(topic(thing, stream_id, "get"),
                   json.dumps({"f": 0, "l": 1024, "o": 2, "b": "0x0a"}), qos=1)
    assert [json.loads(m.payload)["i"] for m in client.expect(2)] == [3, 5]


def test_bad_requests_get_aws_error_codes(api_bastion: ApiBastion,
                                          unique: Callable[[str], str],
                                          firmware: tuple[str, bytes],
                                          device: tuple[DeviceFiles, Client],
                                          tmp_path: Path) -> None:
    name, data = firmware
    stream_id = unique("stream")
    api_bastion.client().create_stream(streamId=stream_id, files=stream_files(name),
                                       roleArn=ROLE)
    thing, client = device[0].name, device[1]
    client.subscribe(topic(thing, stream_id, "rejected", "+"), qos=1)
    client.subscribe(topic(thing, unique("absent"), "rejected"), qos=1)
    good = {"f": 0, "l": 1024, "n": 1}
    cases: list[tuple[str, bytes, str]] = [
        ("get", json.dumps(dict(good, c="t1", l=100)).encode(), "BlockSizeOutOfBounds"),
        ("get", json.dumps(dict(good, c="t2", l=131_073)).encode(), "BlockSizeOutOfBounds"),
        ("get", json.dumps(dict(good, c="t3", s=7)).encode(), "VersionMismatch"),
        ("get", json.dumps(dict(good, c="t4", f=9)).encode(), "ResourceNotFound"),
        ("get", json.dumps(dict(good, c="t5", o=10)).encode(), "OffsetOutOfBounds"),
        ("get", json.dumps(dict(good, c="t6", n=98_305)).encode(), "BlockCountLimitExceeded"),
        ("get", json.dumps(dict(good, c="t7", b="ff" * 12_288)).encode(),
         "BlockBitmapLimitExceeded"),
        ("get", b"{not json", "InvalidJson"),
        ("get", json.dumps({"c": "x" * 65, "f": 0, "l": 1024}).encode(), "InvalidRequest"),
        ("fetch", b"{}", "InvalidTopic"),
    ]
    for kind, payload, code in cases:
        client.publish(topic(thing, stream_id, kind), payload, qos=1)
        [answer] = client.expect()
        assert answer.topic == topic(thing, stream_id, "rejected"), code
        document = json.loads(answer.payload)
        assert document["o"] == code, document
        if code in ("InvalidJson", "InvalidRequest"):  # no valid token to echo
            assert "c" not in document
        elif kind == "get":
            assert document["c"] == json.loads(payload)["c"]
    client.publish(topic(thing, stream_id, "get", "cbor"), b"\xbf\x61", qos=1)
    [answer] = client.expect()
    assert answer.topic == topic(thing, stream_id, "rejected", "cbor")
    assert cbor2.loads(answer.payload)["o"] == "InvalidCbor"
    # An unknown stream; then a file replaced since the stream was made (ETag).
    absent = unique("absent")
    client.subscribe(topic(thing, absent, "rejected"), qos=1)
    client.publish(topic(thing, absent, "describe"), b"{}", qos=1)
    assert json.loads(client.expect()[0].payload)["o"] == "ResourceNotFound"
    upload(api_bastion, data[::-1], name, tmp_path)
    client.publish(topic(thing, stream_id, "get"), json.dumps(good), qos=1)
    assert json.loads(client.expect()[0].payload)["o"] == "ETagMismatch"
    # The operator updates the stream: it is served again, at version 2.
    api_bastion.client().update_stream(streamId=stream_id, description="new build")
    client.subscribe(topic(thing, stream_id, "data"), qos=1)
    client.publish(topic(thing, stream_id, "get"), json.dumps(dict(good, s=2)), qos=1)
    [block] = client.expect()
    assert base64.b64decode(json.loads(block.payload)["p"]) == data[::-1][:1024]


def test_a_device_reads_only_through_its_own_things_topics(
        api_bastion: ApiBastion, unique: Callable[[str], str], firmware: tuple[str, bytes],
        device: tuple[DeviceFiles, Client], tmp_path: Path) -> None:
    name, _ = firmware
    stream_id = unique("stream")
    iot = api_bastion.client()
    iot.create_stream(streamId=stream_id, files=stream_files(name), roleArn=ROLE)
    victim = device[0].name
    observer = device[1]
    observer.subscribe(topic(victim, stream_id, "data"), qos=1)
    intruder_files = device_through_api(api_bastion, iot, unique("intruder"),
                                        tmp_path / "intruder", LEAST_PRIVILEGE)
    intruder = Client(intruder_files, api_bastion.mqtt_port,
                      client_id=intruder_files.name).connect()
    try:
        # Subscribing under the victim's name is refused; asking under it disconnects.
        codes = intruder.subscribe(topic(victim, stream_id, "data"), qos=1)
        assert all(getattr(c, "is_failure", c == 128) for c in codes)
        # Forging an answer on the victim's data topic: refused too.
        intruder.publish(topic(victim, stream_id, "get"),
                         json.dumps({"f": 0, "l": 1024, "n": 1}), qos=1, wait=False)
        assert intruder.disconnected.wait(5), "a 3.1.1 client publishing where it may " \
                                              "not is disconnected"
    finally:
        intruder.disconnect()
    observer.expect_none()
    # A device's own answers reach only the connection that asked, and a client's
    # publication on an answer topic reaches nobody.
    observer.publish(topic(victim, stream_id, "data"), json.dumps({"f": 0, "i": 0, "p": ""}),
                     qos=1)
    observer.expect_none()


def test_the_policy_decides_what_a_device_may_receive(
        api_bastion: ApiBastion, unique: Callable[[str], str], firmware: tuple[str, bytes],
        tmp_path: Path) -> None:
    name, _ = firmware
    stream_id = unique("stream")
    iot = api_bastion.client()
    iot.create_stream(streamId=stream_id, files=stream_files(name), roleArn=ROLE)
    document = json.loads(LEAST_PRIVILEGE)
    arn = Account(REGION, ACCOUNT).arn
    document["Statement"].append({
        "Effect": "Deny", "Action": "iot:Receive",
        "Resource": arn("topic/$aws/things/${iot:Connection.Thing.ThingName}/streams/*/data/*")})
    files = device_through_api(api_bastion, iot, unique("denied"), tmp_path / "d",
                               json.dumps(document))
    client = Client(files, api_bastion.mqtt_port, client_id=files.name).connect()
    try:
        client.subscribe(f"$aws/things/{files.name}/streams/{stream_id}/#", qos=1)
        client.publish(topic(files.name, stream_id, "describe"), b"{}", qos=1)
        [described] = client.expect()  # allowed: the description
        assert described.topic.endswith("/description/json")
        client.publish(topic(files.name, stream_id, "get"),
                       json.dumps({"f": 0, "l": 1024, "n": 2}), qos=1)
        client.expect_none(1.0)  # denied: the blocks
    finally:
        client.disconnect()
