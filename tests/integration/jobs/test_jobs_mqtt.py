"""The jobs topics' MQTT behaviour with plain clients (paho): direct replies, refusals of
another thing's topics, malformed requests, notifications, continuous jobs live."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from awscrt import mqtt
from awsiot import iotjobs

from bastion.jobs import ExecutionStatus, JobService
from support.clients import V5, V311, Client, DeviceFiles, wait_for
from support.running import RunningBastion

from .conftest import QOS1, SdkDevice, take, token

MakeDevice = Callable[..., DeviceFiles]


def payload(message: Any) -> dict[str, Any]:
    document = json.loads(message.payload)
    assert isinstance(document, dict)
    return document


def jobs_topic(thing: str, rest: str) -> str:
    return f"$aws/things/{thing}/jobs/{rest}"


def test_replies_go_to_the_requester_only_and_need_no_subscription(
        bastion: RunningBastion, make_device: MakeDevice, jobs: JobService) -> None:
    device = make_device(policy=None)
    jobs.create_job(f"direct-{token()}", targets=[jobs.thing_arn(device.name)], document="{}")
    requester = Client(device, bastion.port, client_id=device.name).connect()
    # A monitoring client allowed everything, subscribed to the reply topics.
    watcher = Client(make_device(), bastion.port).connect()
    watcher.subscribe(jobs_topic(device.name, "get/#"), qos=1)
    try:
        requester.publish(jobs_topic(device.name, "get"), '{"clientToken": "t-1"}', qos=1)
        (reply,) = requester.expect(1)
        assert reply.topic == jobs_topic(device.name, "get/accepted")
        document = payload(reply)
        assert document["clientToken"] == "t-1" and isinstance(document["timestamp"], int)
        assert len(document["queuedJobs"]) == 1 and document["inProgressJobs"] == []
        watcher.expect_none()  # the request and its reply bypass the other subscribers
    finally:
        requester.disconnect()
        watcher.disconnect()


def test_a_subscribed_requester_gets_one_reply(bastion: RunningBastion,
                                               make_device: MakeDevice) -> None:
    device = make_device(policy=None)
    client = Client(device, bastion.port, client_id=device.name, version=V5).connect()
    try:
        client.subscribe(jobs_topic(device.name, "get/+"), qos=1)
        client.publish(jobs_topic(device.name, "get"), b"", qos=1)
        (reply,) = client.expect(1)
        assert reply.topic.endswith("/get/accepted") and reply.qos == 1
        client.expect_none()
    finally:
        client.disconnect()


@pytest.mark.parametrize(("topic", "body", "code"), [
    ("get", b"{not json", "InvalidJson"),
    ("get", b"[1, 2]", "InvalidRequest"),
    ("start-next", b'{"stepTimeoutInMinutes": "soon"}', "InvalidRequest"),
    ("no-such-job/get", b"{}", "ResourceNotFound"),
    ("no-such-job/update", b'{"status": "SUCCEEDED"}', "ResourceNotFound"),
    ("some-job/update", b"{}", "InvalidRequest"),
    ("some-job/update", b'{"status": "QUEUED"}', "InvalidRequest"),
    ("some-job/frobnicate", b"{}", "InvalidTopic"),
    ("bad job id/get", b"{}", "InvalidRequest"),
], ids=["invalid-json", "not-object", "bad-field", "unknown-job", "update-unknown-job",
        "update-without-status", "update-to-queued", "unknown-topic", "bad-job-id"])
def test_rejections(bastion: RunningBastion, make_device: MakeDevice, topic: str,
                    body: bytes, code: str) -> None:
    device = make_device(policy=None)
    client = Client(device, bastion.port, client_id=device.name).connect()
    try:
        client.publish(jobs_topic(device.name, topic), body, qos=1)
        (reply,) = client.expect(1)
        assert reply.topic == jobs_topic(device.name, topic) + "/rejected"
        document = payload(reply)
        assert document["code"] == code and document["message"]
        assert isinstance(document["timestamp"], int)
    finally:
        client.disconnect()


def test_notify_lists_pending_executions(bastion: RunningBastion, make_device: MakeDevice,
                                         jobs: JobService) -> None:
    device = make_device(policy=None)
    client = Client(device, bastion.port, client_id=device.name).connect()
    try:
        client.subscribe(jobs_topic(device.name, "notify"), qos=1)
        client.subscribe(jobs_topic(device.name, "notify-next"), qos=1)
        first, second = f"n1-{token()}", f"n2-{token()}"
        jobs.create_job(first, targets=[jobs.thing_arn(device.name)], document='{"k": "v"}')
        messages = {m.topic: payload(m) for m in client.expect(2)}
        listed = messages[jobs_topic(device.name, "notify")]
        assert [j["jobId"] for j in listed["jobs"]["QUEUED"]] == [first]
        assert set(listed["jobs"]["QUEUED"][0]) == {
            "jobId", "queuedAt", "lastUpdatedAt", "versionNumber", "executionNumber"}
        nxt = messages[jobs_topic(device.name, "notify-next")]["execution"]
        assert (nxt["jobId"], nxt["status"], nxt["jobDocument"]) == (first, "QUEUED",
                                                                     {"k": "v"})
        jobs.create_job(second, targets=[jobs.thing_arn(device.name)], document="{}")
        (only,) = client.expect(1)  # the head did not change: no notify-next
        assert only.topic.endswith("/notify")
        assert [j["jobId"] for j in payload(only)["jobs"]["QUEUED"]] == [first, second]
        client.expect_none()
    finally:
        client.disconnect()


@pytest.mark.parametrize("version", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_a_device_cannot_touch_another_things_jobs(
        bastion: RunningBastion, make_device: MakeDevice, jobs: JobService,
        version: int) -> None:
    victim = make_device(policy=None)
    intruder = make_device(policy=None)
    job_id = f"victim-{token()}"
    jobs.create_job(job_id, targets=[jobs.thing_arn(victim.name)], document='{"secret": 1}')
    client = Client(intruder, bastion.port, client_id=intruder.name, version=version).connect()
    try:
        # Subscribing to the victim's notifications and replies is refused.
        codes = client.subscribe(jobs_topic(victim.name, "notify-next"), qos=1)
        assert all(getattr(c, "is_failure", c == 128) for c in codes)
        client.subscribe(jobs_topic(victim.name, "#"), qos=1)
        # Starting the victim's job is refused at PUBLISH.
        info = client.publish(jobs_topic(victim.name, "start-next"), b"{}", qos=1, wait=False)
        client.publish(jobs_topic(victim.name, f"{job_id}/update"),
                       b'{"status": "SUCCEEDED"}', qos=1, wait=False)
        if version == V311:
            assert client.disconnected.wait(5), "a 3.1.1 client publishing where it may " \
                                                "not is disconnected"
        else:
            wait_for(lambda: info.mid in client.acks, what="PUBACK")
            assert client.acks[info.mid].value == 0x87  # Not authorized
            client.expect_none()
    finally:
        client.disconnect()
    execution = jobs.describe_job_execution(job_id, victim.name)
    assert execution is not None
    assert (execution.status, execution.version_number) == (ExecutionStatus.QUEUED, 1)


def test_the_sdk_client_of_another_thing_is_refused(
        bastion: RunningBastion, make_device: MakeDevice, jobs: JobService,
        sdk_devices: list[Any]) -> None:
    victim = make_device(policy=None)
    intruder = make_device(policy=None)
    job_id = f"sdk-victim-{token()}"
    jobs.create_job(job_id, targets=[jobs.thing_arn(victim.name)], document="{}")
    sdk = SdkDevice(intruder, bastion.port)
    sdk_devices.append(sdk)
    future, _ = sdk.client.subscribe_to_next_job_execution_changed_events(
        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=victim.name), QOS1,
        lambda event: None)
    with pytest.raises(mqtt.SubscribeError):  # SUBACK 0x80
        future.result(10)
    # Its own topics still work.
    sdk.subscribe_all("unused")
    sdk.publish(sdk.client.publish_get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=intruder.name), QOS1))
    own = take(sdk.accepted, "its own get/accepted")
    assert own.queued_jobs == []
    execution = jobs.describe_job_execution(job_id, victim.name)
    assert execution is not None and execution.status is ExecutionStatus.QUEUED


def test_continuous_job_reaches_a_device_that_joins_the_group_later(
        bastion: RunningBastion, make_device: MakeDevice, jobs: JobService) -> None:
    plane = bastion.app.plane  # registry changes through the running app reach the jobs
    group = f"fleet-{token()}"
    plane.registry.create_thing_group(group)
    job_id = f"continuous-{token()}"
    jobs.create_job(job_id, targets=[plane.account.arn(f"thinggroup/{group}")],
                    document='{"welcome": true}', target_selection="CONTINUOUS")
    device = make_device(policy=None)
    client = Client(device, bastion.port, client_id=device.name).connect()
    try:
        client.subscribe(jobs_topic(device.name, "notify-next"), qos=1)
        plane.registry.add_thing_to_thing_group(thing_group_name=group,
                                                thing_name=device.name)
        (message,) = client.expect(1)
        execution = payload(message)["execution"]
        assert (execution["jobId"], execution["jobDocument"]) == (job_id, {"welcome": True})
    finally:
        client.disconnect()
