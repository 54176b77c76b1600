"""Reserved topics and the REST API through any node: a shadow changed through one node's
API reaches the device's delta subscription on another, a device's own shadow update on
one node is what the other node's API reads, and a job created through one node notifies
the device on the other. Real ``bastion serve`` processes, boto3 with SigV4, real
mutual-TLS paho clients."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bastion.access import AccessKeyService, Role
from bastion.store import Store
from support.clients import V5, Client
from support.cluster import ServedFleet
from support.served import ServedBastion

NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


def _client(service: str, node: ServedBastion, key: tuple[str, str]) -> Any:
    return boto3.client(service, endpoint_url=node.url, region_name="us-east-1",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        verify=str(node.data / "ca" / "root-ca.cert.pem"), config=NO_RETRIES)


def test_shadows_and_jobs_work_through_any_node(served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    (roamer,) = one.devices("roamer")
    with Store.open(served_fleet.database_url) as store:
        key = AccessKeyService(store, one.datadir.open_keystore()).create_access_key(
            Role.OPERATOR, "cluster test")
    one.start()
    two.start()
    device = Client(roamer, two.port, version=V5, client_id="roamer").connect()
    shadow = "$aws/things/roamer/shadow"
    device.subscribe(f"{shadow}/update/delta", qos=1)
    device.subscribe(f"{shadow}/update/accepted", qos=1)
    device.subscribe("$aws/things/roamer/jobs/notify-next", qos=1)

    # An application changes the desired state through node-1's API ...
    data = _client("iot-data", one, key)
    data.update_thing_shadow(thingName="roamer", payload=json.dumps(
        {"state": {"desired": {"led": "on"}}}).encode())
    got = {m.topic: json.loads(m.payload) for m in device.expect(2)}
    # ... the device on node-2 hears of it
    assert got[f"{shadow}/update/delta"]["state"] == {"led": "on"}
    assert got[f"{shadow}/update/accepted"]["state"]["desired"] == {"led": "on"}

    # The device reports through node-2; node-1's API reads it.
    device.publish(f"{shadow}/update", json.dumps({"state": {"reported": {"led": "on"}}}),
                   qos=1)
    assert device.expect(1)[0].topic == f"{shadow}/update/accepted"
    document = json.loads(data.get_thing_shadow(thingName="roamer")["payload"].read())
    assert document["state"]["reported"] == {"led": "on"}
    assert "delta" not in document["state"]

    # A job created through node-1 notifies the device on node-2.
    iot = _client("iot", one, key)
    arn = iot.describe_thing(thingName="roamer")["thingArn"]
    iot.create_job(jobId="blink", targets=[arn], document=json.dumps({"do": "blink"}))
    notified = json.loads(device.expect(1)[0].payload)
    assert notified["execution"]["jobId"] == "blink"
    assert notified["execution"]["jobDocument"] == {"do": "blink"}
    # ... and node-2's API sees the execution the device is told about.
    jobs_data = _client("iot-jobs-data", two, key)
    pending = jobs_data.get_pending_job_executions(thingName="roamer")
    assert [e["jobId"] for e in pending["queuedJobs"]] == ["blink"]
    device.disconnect()
