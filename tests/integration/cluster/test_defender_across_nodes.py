"""Detect and audit on two nodes sharing the machine's PostgreSQL and NATS (JetStream):
one evaluator for the fleet, a device's metrics counted wherever it is connected,
violations listed through either node's API, the evaluator handed on when its node
stops, and a scheduled audit started once. Real nodes, real mutual-TLS paho devices,
boto3 against each node's REST API.

Evaluations are driven by the tests (``FleetDetect.tick`` on the evaluating node); the
nodes' own detect interval is an hour."""

from __future__ import annotations

import dataclasses
import gc
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.cluster import FleetDetect
from bastion.config import ApiConfig, ClusterConfig, Config, DetectConfig, MQTTConfig, StoreConfig
from bastion.datadir import DataDir
from bastion.defender.audit import AuditScheduler
from support.clients import V5, Client, DeviceFiles, wait_for
from support.cluster import NATS_URL, drop_nats_state, provision_fleet
from support.databases import require_postgres
from support.running import RunningBastion

ADMIN = ("AKIACLUSTERDETECT001", "cluster-detect-secret/abcdefghijklmnopqrs")
REGION = "us-east-1"
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                        read_timeout=20)
SENT = "aws:num-messages-sent"


@dataclasses.dataclass
class Fleet:
    datadir: DataDir
    config: Config
    devices: dict[str, DeviceFiles]
    nodes: dict[str, RunningBastion]

    def start(self, node_id: str) -> RunningBastion:
        config = dataclasses.replace(
            self.config, cluster=dataclasses.replace(self.config.cluster, node_id=node_id))
        node = RunningBastion(config, self.datadir, trail=MemoryTrail(),
                              credentials=StaticCredentials({ADMIN[0]: (ADMIN[1], Role.ADMIN)}))
        node.start()
        self.nodes[node_id] = node
        return node

    def iot(self, node: RunningBastion) -> Any:
        """boto3's ``iot`` client on ``node``'s API."""
        api = node.app.api
        assert api is not None
        return boto3.client("iot", endpoint_url=api.url, region_name=REGION,
                            aws_access_key_id=ADMIN[0], aws_secret_access_key=ADMIN[1],
                            verify=str(self.datadir.ca_cert_path), config=NO_RETRIES)

    def evaluator(self) -> RunningBastion:
        """The node that evaluates now (waits until one does)."""
        found: list[RunningBastion] = []

        def one() -> bool:
            found[:] = [n for n in self.nodes.values()
                        if n.call(lambda n=n: n.app.component(FleetDetect).evaluating)]
            return len(found) == 1
        wait_for(one, 15, "exactly one detect evaluator")
        return found[0]

    def tick(self) -> list[Any]:
        """One evaluation of the fleet, on the evaluating node; its violation events."""
        node = self.evaluator()
        return node.run(node.app.component(FleetDetect).tick(), timeout=15)


@pytest.fixture
def fleet(tmp_path: Path, fresh_database_url: Callable[[str], str]) -> Iterator[Fleet]:
    require_postgres()
    url = fresh_database_url("postgresql")
    config = Config(
        mqtt=MQTTConfig(host="127.0.0.1", port=0), store=StoreConfig(database_url=url),
        api=ApiConfig(host="127.0.0.1", port=0), detect=DetectConfig(interval=3600.0),
        cluster=ClusterConfig(nats_url=NATS_URL, name=f"t{uuid.uuid4().hex[:12]}"))
    datadir, devices = provision_fleet(config, tmp_path)
    made = Fleet(datadir, config, devices, {})
    yield made
    for node in made.nodes.values():
        node.stop()
    drop_nats_state(config.cluster.name)
    gc.collect()  # what a test left open is reported against that test


def _profile(iot: Any, node: RunningBastion, *, alarm: int = 1, clear: int = 1) -> str:
    """A profile through ``iot``: fewer than 5 messages sent per interval is normal."""
    name = f"sp-{uuid.uuid4().hex[:8]}"
    iot.create_security_profile(securityProfileName=name, behaviors=[{
        "name": "chatty", "metric": SENT,
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 5},
                     "consecutiveDatapointsToAlarm": alarm,
                     "consecutiveDatapointsToClear": clear}}])
    detect = node.app.services.detect
    assert detect is not None
    iot.attach_security_profile(securityProfileName=name,
                                securityProfileTargetArn=detect.service.target_arn("all/things"))
    return name


def _send(client: Client, count: int) -> None:
    for n in range(count):
        client.publish("fleet/roamer/telemetry", str(n).encode(), qos=1)  # each PUBACKed


def _events(iot: Any, profile: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return list(iot.list_violation_events(
        startTime=now - timedelta(hours=1), endTime=now + timedelta(hours=1),
        securityProfileName=profile)["violationEvents"])


def test_a_device_on_node_2_violating_a_profile_made_on_node_1_is_one_violation(
        fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    iot_one, iot_two = fleet.iot(one), fleet.iot(two)
    profile = _profile(iot_one, one)
    device = Client(fleet.devices["roamer"], two.port, version=V5,
                    client_id="roamer").connect()
    _send(device, 10)
    raised = fleet.tick()
    assert [(e.thing_name, e.event_type.value) for e in raised] == [("roamer", "in-alarm")]
    for iot in (iot_one, iot_two):
        (active,) = iot.list_active_violations(securityProfileName=profile)["activeViolations"]
        assert (active["thingName"], active["behavior"]["name"]) == ("roamer", "chatty")
        assert active["lastViolationValue"] == {"count": 10}
        assert [e["violationEventType"] for e in _events(iot, profile)] == ["in-alarm"]
    device.disconnect()


def test_a_device_report_on_one_node_is_evaluated_at_once_by_the_evaluator(
        fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    assert fleet.evaluator() is one
    iot_two = fleet.iot(two)
    name = f"sp-{uuid.uuid4().hex[:8]}"
    iot_two.create_security_profile(securityProfileName=name, behaviors=[{
        "name": "ports", "metric": "aws:listening-tcp-ports",
        "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22, 443]}}}])
    detect = two.app.services.detect
    assert detect is not None
    iot_two.attach_security_profile(
        securityProfileName=name, securityProfileTargetArn=detect.service.target_arn(
            "all/things"))
    device = Client(fleet.devices["roamer"], two.port, version=V5,
                    client_id="roamer").connect()
    base = "$aws/things/roamer/defender/metrics/json"
    device.subscribe(base + "/+", qos=1)
    device.publish(base, json.dumps({
        "header": {"report_id": 1, "version": "1.0"},
        "metrics": {"listening_tcp_ports": {"ports": [{"port": 22}, {"port": 8080}],
                                            "total": 2}}}), qos=1)
    (reply,) = device.expect()
    assert reply.topic == base + "/accepted"  # answered by node-2, evaluated by node-1
    wait_for(lambda: [e["violationEventType"] for e in _events(iot_two, name)] == [
        "in-alarm"], 10, "the report's violation")
    (active,) = iot_two.list_active_violations(securityProfileName=name)["activeViolations"]
    assert active["lastViolationValue"] == {"ports": [22, 8080]}
    device.disconnect()


def test_a_device_that_moves_is_counted_on_both_nodes_and_evaluated_once(
        fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    iot_one, iot_two = fleet.iot(one), fleet.iot(two)
    profile = _profile(iot_two, two, alarm=2)
    roamer = fleet.devices["roamer"]
    # One interval, half on each node: 3 + 3 is one datapoint of 6, a violation.
    device = Client(roamer, one.port, version=V5, client_id="roamer").connect()
    _send(device, 3)
    device.disconnect()
    device = Client(roamer, two.port, version=V5, client_id="roamer").connect()
    _send(device, 3)
    assert fleet.tick() == []  # the first of two consecutive datapoints
    now = datetime.now(UTC)
    values = iot_one.list_metric_values(
        thingName="roamer", metricName=SENT, startTime=now - timedelta(hours=1),
        endTime=now + timedelta(hours=1))["metricDatumList"]
    assert [v["value"] for v in values] == [{"count": 6}]
    # The next interval on node-1 again: the second one, counted with the first.
    device.disconnect()
    device = Client(roamer, one.port, version=V5, client_id="roamer").connect()
    _send(device, 6)
    raised = fleet.tick()
    assert [(e.thing_name, e.event_type.value) for e in raised] == [("roamer", "in-alarm")]
    for iot in (iot_one, iot_two):
        assert len(iot.list_active_violations(
            securityProfileName=profile)["activeViolations"]) == 1
        assert [e["violationEventType"] for e in _events(iot, profile)] == ["in-alarm"]
    device.disconnect()


def test_the_evaluation_moves_on_when_the_evaluating_node_stops(fleet: Fleet) -> None:
    one = fleet.start("node-1")
    two = fleet.start("node-2")
    assert fleet.evaluator() is one  # the first node took the lease
    iot_two = fleet.iot(two)
    profile = _profile(iot_two, two)
    device = Client(fleet.devices["roamer"], two.port, version=V5,
                    client_id="roamer").connect()
    _send(device, 10)
    (raised,) = fleet.tick()
    # Counted since that tick, then the evaluator stops: node-2 takes over at once.
    _send(device, 7)
    one.stop()
    del fleet.nodes["node-1"]
    assert fleet.evaluator() is two
    # The open violation carries on (no second in-alarm), with what was counted meanwhile.
    assert fleet.tick() == []
    (active,) = iot_two.list_active_violations(securityProfileName=profile)["activeViolations"]
    assert active["violationId"] == raised.violation_id
    assert active["lastViolationValue"] == {"count": 7}
    # A quiet interval clears it, on the new evaluator.
    (cleared,) = fleet.tick()
    assert (cleared.violation_id, cleared.event_type.value) == (raised.violation_id,
                                                                "alarm-cleared")
    assert iot_two.list_active_violations(securityProfileName=profile)["activeViolations"] == []
    assert [e["violationEventType"] for e in _events(iot_two, profile)] == [
        "in-alarm", "alarm-cleared"]
    device.disconnect()


def test_a_due_scheduled_audit_starts_once_on_two_nodes(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    iot = fleet.iot(one)
    iot.update_account_audit_configuration(
        auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": True}})
    iot.create_scheduled_audit(scheduledAuditName="daily", frequency="DAILY",
                               targetCheckNames=["LOGGING_DISABLED_CHECK"])
    audit = one.app.services.audit
    assert audit is not None
    scheduled = audit.audit.describe_scheduled_audit("daily")
    due = datetime.now(UTC) - timedelta(minutes=1)
    with one.app.plane.store.transaction() as uow:  # due a minute ago
        assert uow.audit.claim_scheduled_run("daily", scheduled.next_run_time,
                                             due - timedelta(days=1), due)
    schedulers = [node.app.component(AuditScheduler) for node in (one, two)]
    rounds = [s.rounds for s in schedulers]
    for scheduler in schedulers:  # both look at once
        scheduler.wake()
    wait_for(lambda: all(s.rounds > r for s, r in zip(schedulers, rounds, strict=True)),
             10, "a round of each scheduler")
    tasks = iot.list_audit_tasks(startTime=due - timedelta(hours=1),
                                 endTime=datetime.now(UTC) + timedelta(hours=1),
                                 taskType="SCHEDULED_AUDIT_TASK")["tasks"]
    assert len(tasks) == 1
    assert fleet.iot(two).describe_scheduled_audit(
        scheduledAuditName="daily")["scheduledAuditName"] == "daily"


def test_racing_run_due_on_two_nodes_starts_each_run_once(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    services = [node.app.services.audit for node in (one, two)]
    assert services[0] is not None and services[1] is not None
    audits = [s.audit for s in services if s is not None]
    audits[0].update_account_audit_configuration(
        check_configurations={"LOGGING_DISABLED_CHECK": {"enabled": True}})
    started: list[str] = []
    for round_ in range(5):
        created = audits[0].create_scheduled_audit(
            f"race-{round_}", frequency="DAILY", target_check_names=["LOGGING_DISABLED_CHECK"])
        due = created.next_run_time + timedelta(seconds=1)
        results = _race([lambda a=a, due=due: a.run_due(due) for a in audits])
        assert sorted(len(r) for r in results) == [0, 1], results
        started += [task for r in results for task in r]
    assert len(set(started)) == 5


def _race(calls: list[Callable[[], list[str]]]) -> list[list[str]]:
    """Run ``calls`` in threads released at once; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[list[str]] = []

    def run(call: Callable[[], list[str]]) -> None:
        barrier.wait()
        results.append(call())
    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results
