"""AWS IoT logs end to end: real devices (paho, MQTT 5 over mutual TLS) against a running
Bastion whose logging options are set with boto3; the entries are read back from the
JSON-lines file, a syslog receiver on loopback and the ERROR listener."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest

from bastion.broker import LOG_DEBUG, LOG_INFO
from support.clients import V5, Client, DeviceFiles, wait_for

from .conftest import ROLE_ARN, Logged

pytestmark = pytest.mark.timeout(60)

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def flow(logged: Logged, device: DeviceFiles, client_id: str | None = None) -> str:
    """Connect, subscribe, publish where allowed (and get it back) and where denied,
    unsubscribe, disconnect; returns the client id once the broker has forgotten the session."""
    client = Client(device, logged.running.port, version=V5,
                    client_id=client_id or device.name).connect()
    client.subscribe("allowed/#", qos=1)
    client.publish("allowed/data", b"hello", qos=1)
    client.expect(1)
    client.publish("denied/data", b"nope", qos=1)
    unsubscribed = threading.Event()
    client.paho.on_unsubscribe = lambda *args: unsubscribed.set()
    client.paho.unsubscribe("allowed/#")
    assert unsubscribed.wait(5), "no UNSUBACK"
    client.disconnect()
    broker = logged.running.app.broker
    wait_for(lambda: logged.running.call(lambda: client.client_id not in broker.sessions),
             what="the session to end")
    return client.client_id


def of(entries: list[dict[str, Any]], client_id: str) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("clientId") == client_id]


def kinds(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["eventType"], e["status"]) for e in entries]


def check_denial(entry: dict[str, Any], device: DeviceFiles, client_id: str) -> None:
    assert entry["eventType"] == "Publish-In"
    assert entry["logLevel"] == "ERROR"
    assert entry["status"] == "Failure"
    assert entry["reason"] == "AUTHORIZATION_FAILURE"
    assert entry["topicName"] == "denied/data"
    assert entry["clientId"] == client_id
    assert entry["principalId"] == device.certificate_id
    assert entry["sourceIp"] == "127.0.0.1"
    assert entry["protocol"] == "MQTT"
    assert entry["accountId"] == "123456789012"
    assert TIMESTAMP.fullmatch(entry["timestamp"])
    assert UUID.fullmatch(entry["traceId"])


def test_by_default_only_the_authorization_failure_is_written(logged: Logged) -> None:
    device = logged.device()
    client_id = flow(logged, device)
    entries = logged.entries()
    assert len(entries) == 1, entries
    check_denial(entries[0], device, client_id)
    assert entries[0]["thingName"] == device.name
    # The ERROR listener (the threat detector's plug point) got the same entry.
    assert logged.errors == entries
    # And syslog got it as one JSON line.
    wait_for(lambda: logged.syslog.datagrams, what="a syslog datagram")
    datagram = logged.syslog.datagrams[0].decode()
    assert datagram.startswith("<11>")  # facility user (1) * 8 + severity error (3)
    assert json.loads(datagram.split(": ", 1)[1]) == entries[0]


def test_default_info_logs_every_event_with_its_fields(logged: Logged) -> None:
    logged.iot.set_v2_logging_options(roleArn=ROLE_ARN, defaultLogLevel="INFO")
    assert logged.iot.get_v2_logging_options()["defaultLogLevel"] == "INFO"
    logged.wait_levels(lambda table: table.default == LOG_INFO, "INFO by default")
    device = logged.device()
    client_id = flow(logged, device)
    entries = of(logged.entries(), client_id)
    assert kinds(entries) == [
        ("Connect", "Success"), ("Subscribe", "Success"), ("Publish-In", "Success"),
        ("Publish-Out", "Success"), ("Publish-In", "Failure"), ("Unsubscribe", "Success"),
        ("Disconnect", "Success"),
    ]
    for entry in entries:
        assert entry["principalId"] == device.certificate_id
        assert entry["sourceIp"] == "127.0.0.1"
        assert isinstance(entry["sourcePort"], int) and entry["sourcePort"] > 0
        assert entry["thingName"] == device.name
    connect, subscribe, publish_in, publish_out, denied, unsubscribe, disconnect = entries
    assert connect["logLevel"] == "INFO"
    assert subscribe["topicName"] == unsubscribe["topicName"] == "allowed/#"
    assert publish_in["topicName"] == publish_out["topicName"] == "allowed/data"
    check_denial(denied, device, client_id)
    assert disconnect["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert [e["eventType"] for e in logged.errors] == ["Publish-In"]
    # [iot_logs] max_bytes: the file was rotated, and no entry was lost in between.
    assert logged.path.with_name("aws-iot.jsonl.1").exists()
    assert all(f.stat().st_size <= 2048 for f in logged.path.parent.glob("aws-iot.jsonl*"))


def test_a_thing_group_level_makes_only_its_devices_verbose(logged: Logged) -> None:
    iot = logged.iot
    iot.set_v2_logging_options(roleArn=ROLE_ARN, defaultLogLevel="ERROR")
    parent = iot.create_thing_group(thingGroupName="verbose-parent")["thingGroupName"]
    child = iot.create_thing_group(thingGroupName="verbose-child",
                                   parentGroupName=parent)["thingGroupName"]
    verbose, quiet = logged.device("verbose"), logged.device("quiet")
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=verbose.name)
    # The level is set on the parent: the device in its child group gets it.
    iot.set_v2_logging_level(logTarget={"targetType": "THING_GROUP", "targetName": parent},
                             logLevel="DEBUG")
    listed = iot.list_v2_logging_levels(targetType="THING_GROUP")["logTargetConfigurations"]
    assert listed == [{"logTarget": {"targetType": "THING_GROUP", "targetName": parent},
                       "logLevel": "DEBUG"}]
    logged.wait_levels(lambda table: table.things.get(verbose.name) == LOG_DEBUG,
                       "the group's level")
    assert quiet.name not in logged.logs.table.things
    flow(logged, verbose)
    flow(logged, quiet)
    entries = logged.entries()
    assert [e["eventType"] for e in of(entries, verbose.name)] == [
        "Connect", "Subscribe", "Publish-In", "Publish-Out", "Publish-In", "Unsubscribe",
        "Disconnect"]
    assert kinds(of(entries, quiet.name)) == [("Publish-In", "Failure")]

    # Deleted, the level no longer applies: the device is back to the default.
    iot.delete_v2_logging_level(targetType="THING_GROUP", targetName=parent)
    assert iot.list_v2_logging_levels()["logTargetConfigurations"] == []
    logged.wait_levels(lambda table: not table.things, "no group level")
    before = len(entries)
    flow(logged, verbose)
    assert kinds(logged.entries()[before:]) == [("Publish-In", "Failure")]


@pytest.mark.parametrize("target", ["CLIENT_ID", "PRINCIPAL_ID", "SOURCE_IP"])
def test_client_id_principal_and_source_ip_targets(logged: Logged, target: str) -> None:
    iot = logged.iot
    iot.set_v2_logging_options(roleArn=ROLE_ARN, defaultLogLevel="ERROR")
    device, other = logged.device(), logged.device()
    name = {"CLIENT_ID": device.name, "PRINCIPAL_ID": device.certificate_id,
            "SOURCE_IP": "127.0.0.1"}[target]
    iot.set_v2_logging_level(logTarget={"targetType": target, "targetName": name},
                             logLevel="INFO")
    assert iot.list_v2_logging_levels(targetType=target)["logTargetConfigurations"] == [
        {"logTarget": {"targetType": target, "targetName": name}, "logLevel": "INFO"}]
    tables = {"CLIENT_ID": "client_ids", "PRINCIPAL_ID": "principals",
              "SOURCE_IP": "source_ips"}
    logged.wait_levels(lambda table: name in getattr(table, tables[target]), target)
    flow(logged, device)
    flow(logged, other)
    entries = logged.entries()
    assert len(of(entries, device.name)) == 7
    # Every client comes from 127.0.0.1 here: a SOURCE_IP target makes both verbose.
    assert len(of(entries, other.name)) == (7 if target == "SOURCE_IP" else 1)


def test_disable_all_logs_writes_nothing(logged: Logged) -> None:
    iot = logged.iot
    iot.set_v2_logging_options(roleArn=ROLE_ARN, defaultLogLevel="DEBUG",
                               disableAllLogs=True)
    device = logged.device()
    iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID", "targetName": device.name},
                             logLevel="DEBUG")
    logged.wait_levels(lambda table: table.disabled, "all logs disabled")
    flow(logged, device)
    assert logged.entries() == []
    assert logged.errors == []
    # Enabled again, the same flow is logged.
    iot.set_v2_logging_options(roleArn=ROLE_ARN, defaultLogLevel="ERROR",
                               disableAllLogs=False)
    logged.wait_levels(lambda table: not table.disabled, "logs enabled")
    flow(logged, device)
    assert len(logged.entries()) == 7  # its CLIENT_ID target (DEBUG) applies again


def test_a_refused_connect_is_an_error_entry(logged: Logged) -> None:
    device = logged.device()
    logged.iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    client = Client(device, logged.running.port, version=V5, client_id=device.name)
    try:
        client.connect(expect_success=False)
        assert client.connack.is_failure
    finally:
        client.stop()
    wait_for(lambda: logged.entries(), what="the entry")
    [entry] = logged.entries()
    assert (entry["eventType"], entry["status"], entry["logLevel"]) == (
        "Connect", "Failure", "ERROR")
    assert entry["reason"] == "AUTHENTICATION_FAILURE"
    assert entry["principalId"] == device.certificate_id
    assert entry["clientId"] == device.name
    assert "INACTIVE" in entry["details"]


def test_jobs_requests_are_logged_at_the_clients_level(logged: Logged) -> None:
    iot = logged.iot
    iot.set_v2_logging_options(roleArn=ROLE_ARN, defaultLogLevel="ERROR")
    verbose, quiet = logged.device(), logged.device()
    iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID",
                                        "targetName": verbose.name}, logLevel="DEBUG")
    logged.wait_levels(lambda table: verbose.name in table.client_ids, "the client's level")
    iot.create_job(jobId="update-firmware", document='{"operation":"update"}',
                   targets=[iot.describe_thing(thingName=d.name)["thingArn"]
                            for d in (verbose, quiet)])
    for device in (verbose, quiet):
        client = Client(device, logged.running.port, version=V5,
                        client_id=device.name).connect()
        topic = f"$aws/things/{device.name}/jobs/update-firmware/update"
        client.publish(topic, json.dumps({"status": "IN_PROGRESS", "clientToken": "t1"}),
                       qos=1)
        assert client.expect(1)[0].topic == topic + "/accepted"
        client.publish(topic, json.dumps({"status": "BOGUS", "clientToken": "t2"}), qos=1)
        assert client.expect(1)[0].topic == topic + "/rejected"
        client.disconnect()
    wait_for(lambda: len([e for e in logged.entries()
                          if e["eventType"] == "UpdateJobExecution"]) == 3,
             what="the jobs entries")
    jobs = [e for e in logged.entries() if e["eventType"] == "UpdateJobExecution"]
    accepted, rejected = of(jobs, verbose.name)
    assert (accepted["logLevel"], accepted["status"]) == ("DEBUG", "Success")
    assert accepted["jobId"] == "update-firmware" and accepted["clientToken"] == "t1"
    assert accepted["details"] == ("The destination status is IN_PROGRESS. "
                                   "The request status is SUCCESS.")
    assert accepted["principalId"] == verbose.certificate_id
    assert (rejected["logLevel"], rejected["status"]) == ("ERROR", "Failure")
    assert rejected["clientToken"] == "t2" and rejected["reason"]
    # At the default level (ERROR) only the rejected request is written.
    assert [e["status"] for e in of(jobs, quiet.name)] == ["Failure"]


def test_a_failed_rule_action_is_an_error_entry(logged: Logged) -> None:
    iot = logged.iot
    iot.create_topic_rule(ruleName="store_readings", topicRulePayload={
        "sql": "SELECT * FROM 'allowed/readings'", "ruleDisabled": False,
        # No [rules] sql_url is configured: every DynamoDBv2 action fails.
        "actions": [{"dynamoDBv2": {"roleArn": ROLE_ARN,
                                    "putItem": {"tableName": "readings"}}}]})
    rules = logged.running.app.rules
    assert rules is not None
    wait_for(lambda: "store_readings" in rules.enabled_rules(), 20.0, "the rule to load")
    device = logged.device()
    client = Client(device, logged.running.port, version=V5, client_id=device.name).connect()
    client.publish("allowed/readings", b'{"temperature": 21}', qos=1)
    client.disconnect()
    wait_for(lambda: any(e["eventType"] == "RuleExecution" for e in logged.entries()), 30.0,
             "the rule's entry")
    [failed] = [e for e in logged.entries() if e["eventType"] == "RuleExecution"]
    assert (failed["logLevel"], failed["status"]) == ("ERROR", "Failure")
    assert failed["ruleName"] == "store_readings"
    assert failed["ruleAction"] == "DynamoDBv2Action"
    assert failed["topicName"] == "allowed/readings"
    assert failed["clientId"] == device.name
    assert failed["principalId"] == device.certificate_id
    assert failed["details"]
    assert failed in logged.errors
