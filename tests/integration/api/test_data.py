"""iot-data: Publish reaches real MQTT subscribers; retained messages read back."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.clients import V5, Client

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api

Unique = Callable[[str], str]
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


def test_publish_reaches_a_paho_subscriber(api_bastion: ApiBastion, iot: Any, iot_data: Any,
                                           unique: Unique, tmp_path: Path) -> None:
    device = device_through_api(api_bastion, iot, unique("subscriber"), tmp_path)
    client = Client(device, api_bastion.mqtt_port, version=V5,
                    client_id=device.name).connect()
    try:
        client.subscribe(f"{device.name}/#", qos=1)
        iot_data.publish(
            topic=f"{device.name}/hello world", qos=1, payload=b'{"temp": 21}',
            contentType="application/json", responseTopic=f"{device.name}/reply",
            correlationData=base64.b64encode(b"\x01\x02").decode(), messageExpiry=60,
            payloadFormatIndicator="UTF8_DATA",
            userProperties='[{"deviceName": "alpha"}, {"deviceCnt": "45"}]')
        [message] = client.expect(1)
        assert message.topic == f"{device.name}/hello world"
        assert message.payload == b'{"temp": 21}'
        assert message.qos == 1
        props = message.properties
        assert props.ContentType == "application/json"
        assert props.ResponseTopic == f"{device.name}/reply"
        assert props.CorrelationData == b"\x01\x02"
        assert props.PayloadFormatIndicator == 1
        assert 0 < props.MessageExpiryInterval <= 60
        assert props.UserProperty == [("deviceName", "alpha"), ("deviceCnt", "45")]
    finally:
        client.disconnect()


def test_delivery_is_policy_checked(api_bastion: ApiBastion, iot: Any, iot_data: Any,
                                    unique: Unique, tmp_path: Path) -> None:
    name = unique("limited")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{name}"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": f"{ARN}:topicfilter/{name}/*"},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/{name}/allowed"},
    ]})
    device = device_through_api(api_bastion, iot, name, tmp_path, policy)
    client = Client(device, api_bastion.mqtt_port, client_id=name).connect()
    try:
        client.subscribe(f"{name}/#")
        iot_data.publish(topic=f"{name}/denied", payload=b"no")
        iot_data.publish(topic=f"{name}/allowed", payload=b"yes")
        [message] = client.expect(1)
        assert (message.topic, message.payload) == (f"{name}/allowed", b"yes")
        client.expect_none()
    finally:
        client.disconnect()


def test_retained_messages(api_bastion: ApiBastion, iot_data: Any, unique: Unique) -> None:
    prefix = unique("retained")
    before = int(time.time() * 1000)
    topics = [f"{prefix}/r{index}" for index in range(5)]
    for index, topic in enumerate(topics):
        iot_data.publish(topic=topic, payload=f"v{index}".encode(), qos=index % 2, retain=True,
                         userProperties='[{"k": "v"}]')
    got = iot_data.get_retained_message(topic=topics[1])
    assert (got["topic"], got["payload"], got["qos"]) == (topics[1], b"v1", 1)
    assert before <= got["lastModifiedTime"] <= int(time.time() * 1000)
    assert json.loads(got["userProperties"]) == [{"k": "v"}]

    seen: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"maxResults": 2}
    pages = 0
    while True:
        page = iot_data.list_retained_messages(**kwargs)
        pages += 1
        assert len(page["retainedTopics"]) <= 2
        seen.extend(s for s in page["retainedTopics"] if s["topic"].startswith(prefix))
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert pages >= 3
    assert [s["topic"] for s in seen] == topics
    assert seen[3] == {"topic": topics[3], "payloadSize": 2, "qos": 1,
                       "lastModifiedTime": seen[3]["lastModifiedTime"]}

    iot_data.publish(topic=topics[0], payload=b"", retain=True)  # empty: delete
    with pytest.raises(iot_data.exceptions.ResourceNotFoundException):
        iot_data.get_retained_message(topic=topics[0])
    with pytest.raises(iot_data.exceptions.InvalidRequestException):
        iot_data.list_retained_messages(nextToken="garbage")


def test_publish_errors(iot_data: Any) -> None:
    with pytest.raises(iot_data.exceptions.InvalidRequestException):
        iot_data.publish(topic="a/#", payload=b"x")
    with pytest.raises(iot_data.exceptions.InvalidRequestException):
        iot_data.publish(topic="/".join("abcdefghij"), payload=b"x")  # 9 levels
    with pytest.raises(iot_data.exceptions.InvalidRequestException):
        iot_data.publish(topic="a", payload=b"x", userProperties='{"not": "a list"}')
    with pytest.raises(iot_data.exceptions.InvalidRequestException):
        iot_data.publish(topic="a", payload=b"\xff", payloadFormatIndicator="UTF8_DATA")
    with pytest.raises(iot_data.exceptions.InvalidRequestException):
        iot_data.publish(topic="a", payload=b"x", qos=2)
    with pytest.raises(iot_data.exceptions.RequestEntityTooLargeException):
        iot_data.publish(topic="a", payload=b"x" * (128 * 1024 + 1))
