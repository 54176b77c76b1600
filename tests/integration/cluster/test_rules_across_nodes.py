"""Topic rules in a cluster: a rule created through one node's API runs on every node; a
message triggers its rules once, on the node it was published to, and the rule's
republished message reaches subscribers on any node; a rule disabled through another
node's API stops everywhere. Real ``bastion serve`` processes, boto3 with SigV4, real
mutual-TLS paho clients."""

from __future__ import annotations

import json
import queue
import time
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bastion.access import AccessKeyService, Role
from bastion.store import Store
from support.clients import Client
from support.cluster import ServedFleet
from support.served import ServedBastion

NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})
ROLE = "arn:aws:iam::123456789012:role/rules"


def _iot(node: ServedBastion, key: tuple[str, str]) -> Any:
    return boto3.client("iot", endpoint_url=node.url, region_name="us-east-1",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        verify=str(node.data / "ca" / "root-ca.cert.pem"), config=NO_RETRIES)


def _drain(client: Client, timeout: float) -> list[Any]:
    """Whatever ``client`` receives within ``timeout`` seconds."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            got.append(json.loads(client.messages.get(timeout=left).payload))
        except queue.Empty:
            break
    return got


def _until_republished(listener: Client, sender: Client, first: int) -> list[Any]:
    """Publish ``{"n": first}``, ``first + 1``, ... until the rule's outputs arrive (a
    node learns of a new rule through the cluster's relay, and starts its rules process,
    a moment after the API answered; what was published meanwhile is evaluated too), then
    everything that arrives within a second more."""
    deadline = time.monotonic() + 15
    n = first
    while True:
        sender.publish("plant/press-1/telemetry", json.dumps({"n": n}), qos=1)
        got = _drain(listener, 0.3)
        if got:
            return got + _drain(listener, 1.0)
        if time.monotonic() > deadline:
            raise AssertionError(f"no republished message for n={first}..{n}")
        n += 1


def _once_each(got: list[Any], first: int) -> None:
    doubled = [item["doubled"] for item in got]
    assert all(item["press"] == "press-1" for item in got)
    assert len(doubled) == len(set(doubled)), f"a message triggered the rule twice: {got}"
    assert all(value % 2 == 0 and value >= 2 * first for value in doubled), got


def test_a_rule_runs_on_every_node_once_per_message(served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    first, second = one.devices("press-1", "dashboard")
    with Store.open(served_fleet.database_url) as store:
        key = AccessKeyService(store, one.datadir.open_keystore()).create_access_key(
            Role.OPERATOR, "cluster rules test")
    one.start()
    two.start()
    listener = Client(second, two.port, client_id="dashboard").connect()
    listener.subscribe("alerts/#", qos=1)
    on_one = Client(first, one.port, client_id="press-1").connect()
    try:
        _iot(one, key).create_topic_rule(ruleName="doubled", topicRulePayload={
            "sql": "SELECT n * 2 AS doubled, topic(2) AS press FROM 'plant/+/telemetry'",
            "awsIotSqlVersion": "2016-03-23",
            "actions": [{"republish": {"roleArn": ROLE, "topic": "alerts/${topic(2)}",
                                       "qos": 1}}]})
        # Published on node-1 (whose API made the rule), heard on node-2.
        _once_each(_until_republished(listener, on_one, 1), 1)
        on_one.disconnect()

        # The same device on node-2: the rule runs there too, once per message.
        on_two = Client(first, two.port, client_id="press-1").connect()
        try:
            _once_each(_until_republished(listener, on_two, 100), 100)
            on_two.publish("plant/press-1/telemetry", json.dumps({"n": 500}), qos=1)
            # once: not a second time from the other node
            assert _drain(listener, 1.0) == [{"doubled": 1000, "press": "press-1"}]

            # Disabled through node-2's API: node-2 (where the device is) stops too.
            _iot(two, key).disable_topic_rule(ruleName="doubled")
            deadline = time.monotonic() + 10
            while True:
                on_two.publish("plant/press-1/telemetry", json.dumps({"n": 7}), qos=1)
                if not _drain(listener, 1.0):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("the disabled rule still runs")
            on_two.publish("plant/press-1/telemetry", json.dumps({"n": 8}), qos=1)
            assert _drain(listener, 1.0) == []
        finally:
            on_two.disconnect()
    finally:
        listener.disconnect()
