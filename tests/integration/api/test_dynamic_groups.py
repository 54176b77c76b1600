"""Dynamic thing groups through boto3 against a real Bastion, on SQLite and PostgreSQL:
the operations and AWS's restrictions, membership that follows registry and shadow
changes within a second, a policy attached to a dynamic group that starts and stops
applying on a device's live MQTT session (paho over mutual TLS), and a Detect security
profile targeting a dynamic group that follows its members."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.clients import V5, Client, wait_for

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api

FOLLOW = 1.0
DENIED = 0x87  # PUBACK: not authorized
ALLOWED = {0x00, 0x10}  # PUBACK: success, or success without matching subscribers
CONNECT_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
    {"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive", "iot:Publish"],
     "Resource": [f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/$aws/things/*",
                  f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/$aws/things/*"]}]})


@pytest.fixture
def iot(indexed: ApiBastion) -> Any:
    return indexed.client()


def _error(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


def _enable(iot: Any) -> None:
    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW", "thingConnectivityIndexingMode": "STATUS"})
    deadline = time.monotonic() + 10
    while iot.describe_index(indexName="AWS_Things")["indexStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _members(iot: Any, group: str) -> set[str]:
    return set(iot.list_things_in_thing_group(thingGroupName=group)["things"])


def _eventually_members(iot: Any, group: str, expected: set[str],
                        within: float = FOLLOW) -> None:
    """Membership as ListThingsInThingGroup answers it — no query is made meanwhile, so
    only the index's own keeper can bring it there."""
    deadline = time.monotonic() + within
    while (found := _members(iot, group)) != expected:
        assert time.monotonic() < deadline, f"{group}: {found} != {expected}"
        time.sleep(0.02)


def _thing(iot: Any, name: str, **attributes: str) -> None:
    iot.create_thing(thingName=name, attributePayload={"attributes": attributes})


def _set(iot: Any, name: str, **attributes: str) -> None:
    iot.update_thing(thingName=name, attributePayload={"attributes": attributes, "merge": True})


def test_with_indexing_off_a_dynamic_group_cannot_be_made(iot: Any) -> None:
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    assert _error(lambda: iot.create_dynamic_thing_group(
        thingGroupName=f"off-{uuid.uuid4().hex[:6]}", queryString="thingName:*")) == (
        "ResourceNotFoundException", 404)


def test_a_dynamic_group_follows_its_query(indexed: ApiBastion, iot: Any) -> None:
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    a, b, c = (f"{x}-{batch}" for x in "abc")
    _thing(iot, a, batch=batch, tier="gold")
    _thing(iot, b, batch=batch, tier="silver")
    _thing(iot, c, batch=batch, tier="gold")
    group = f"gold-{batch}"
    created = iot.create_dynamic_thing_group(
        thingGroupName=group, queryString=f"attributes.batch:{batch} attributes.tier:gold",
        thingGroupProperties={"thingGroupDescription": "gold devices"})
    assert created["thingGroupName"] == group
    assert created["thingGroupArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}"
    assert (created["indexName"], created["queryVersion"]) == ("AWS_Things", "2017-09-30")
    assert created["queryString"] == f"attributes.batch:{batch} attributes.tier:gold"
    described = iot.describe_thing_group(thingGroupName=group)
    assert described["queryString"] == created["queryString"]
    assert (described["indexName"], described["queryVersion"], described["status"]) == (
        "AWS_Things", "2017-09-30", "ACTIVE")
    assert described["thingGroupProperties"]["thingGroupDescription"] == "gold devices"
    assert _members(iot, group) == {a, c}  # in place when the create returns

    _set(iot, b, tier="gold")
    _eventually_members(iot, group, {a, b, c})
    _set(iot, a, tier="bronze")
    _eventually_members(iot, group, {b, c})
    assert group in [g["groupName"] for g in
                     iot.list_thing_groups_for_thing(thingName=b)["thingGroups"]]
    assert {t["thingName"] for t in iot.search_index(
        queryString=f"thingGroupNames:{group}")["things"]} == {b, c}

    version = iot.update_dynamic_thing_group(
        thingGroupName=group, thingGroupProperties={},
        queryString=f"attributes.batch:{batch} attributes.tier:bronze")["version"]
    assert version == 2
    assert _members(iot, group) == {a}
    assert iot.describe_thing_group(thingGroupName=group)["queryString"].endswith("bronze")

    iot.delete_dynamic_thing_group(thingGroupName=group)
    assert _error(lambda: iot.describe_thing_group(thingGroupName=group))[0] == (
        "ResourceNotFoundException")
    assert iot.list_thing_groups_for_thing(thingName=a)["thingGroups"] == []
    iot.delete_dynamic_thing_group(thingGroupName=group)  # deleting again succeeds


def test_shadow_and_connectivity_queries_drive_membership(indexed: ApiBastion,
                                                          iot: Any) -> None:
    _enable(iot)
    data = indexed.client("iot-data")
    batch = uuid.uuid4().hex[:8]
    name = f"battery-{batch}"
    _thing(iot, name, batch=batch)
    group = f"low-battery-{batch}"
    iot.create_dynamic_thing_group(
        thingGroupName=group,
        queryString=f"attributes.batch:{batch} shadow.reported.battery<20")
    assert _members(iot, group) == set()
    data.update_thing_shadow(thingName=name,
                             payload=b'{"state":{"reported":{"battery":12}}}')
    _eventually_members(iot, group, {name})
    data.update_thing_shadow(thingName=name,
                             payload=b'{"state":{"reported":{"battery":90}}}')
    _eventually_members(iot, group, set())
    iot.delete_dynamic_thing_group(thingGroupName=group)


def test_aws_restrictions(iot: Any) -> None:
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    name, group, static = f"r-{batch}", f"dyn-{batch}", f"static-{batch}"
    _thing(iot, name, batch=batch)
    iot.create_thing_group(thingGroupName=static)
    iot.create_dynamic_thing_group(thingGroupName=group,
                                   queryString=f"attributes.batch:{batch}")
    assert _members(iot, group) == {name}
    refused = {
        "add by hand": lambda: iot.add_thing_to_thing_group(thingGroupName=group,
                                                            thingName=name),
        "remove by hand": lambda: iot.remove_thing_from_thing_group(thingGroupName=group,
                                                                    thingName=name),
        "child group": lambda: iot.create_thing_group(thingGroupName=f"child-{batch}",
                                                      parentGroupName=group),
        "static update": lambda: iot.update_thing_group(
            thingGroupName=group, thingGroupProperties={"thingGroupDescription": "x"}),
        "static delete": lambda: iot.delete_thing_group(thingGroupName=group),
        "dynamic update of a static group": lambda: iot.update_dynamic_thing_group(
            thingGroupName=static, thingGroupProperties={}, queryString="thingName:x"),
        "dynamic delete of a static group": lambda: iot.delete_dynamic_thing_group(
            thingGroupName=static),
        "indexing off while dynamic groups exist": lambda: iot.update_indexing_configuration(
            thingIndexingConfiguration={"thingIndexingMode": "OFF"}),
        "another index": lambda: iot.create_dynamic_thing_group(
            thingGroupName=f"other-{batch}", queryString="thingName:*",
            indexName="AWS_ThingGroups"),
        "another query version": lambda: iot.create_dynamic_thing_group(
            thingGroupName=f"other-{batch}", queryString="thingName:*",
            queryVersion="2099-01-01"),
    }
    for what, call in refused.items():
        assert _error(call) == ("InvalidRequestException", 400), what
    assert _error(lambda: iot.create_dynamic_thing_group(
        thingGroupName=group, queryString="thingName:*")) == (
        "ResourceAlreadyExistsException", 409)
    for query in ("thingName:(", "attributes.x:[1 TO", "nope:1", "a@b"):
        assert _error(lambda q=query: iot.create_dynamic_thing_group(
            thingGroupName=f"bad-{batch}", queryString=q)) == ("InvalidQueryException", 400)
        assert _error(lambda q=query: iot.update_dynamic_thing_group(
            thingGroupName=group, thingGroupProperties={}, queryString=q)) == (
            "InvalidQueryException", 400)
    assert _error(lambda: iot.describe_thing_group(thingGroupName=f"bad-{batch}"))[0] == (
        "ResourceNotFoundException")
    assert "queryString" not in iot.describe_thing_group(thingGroupName=static)
    iot.delete_dynamic_thing_group(thingGroupName=group)


def test_a_dynamic_group_policy_applies_and_stops_applying_on_a_live_session(
        indexed: ApiBastion, iot: Any, tmp_path: Path) -> None:
    """The device's own certificate policy lets it connect only; publishing under
    ``fleet/<name>/`` comes from a policy attached to a dynamic group. The device's
    attribute moves it into the group and out again while its session stays up."""
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    name = f"dev-{batch}"
    device = device_through_api(indexed, iot, name, tmp_path, CONNECT_ONLY)
    iot.update_thing(thingName=name, attributePayload={"attributes": {
        "batch": batch, "tier": "silver"}})
    group = f"gold-{batch}"
    iot.create_dynamic_thing_group(
        thingGroupName=group, queryString=f"attributes.batch:{batch} attributes.tier:gold")
    policy = f"gold-publish-{batch}"
    iot.create_policy(policyName=policy, policyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "iot:Publish",
            "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/fleet/${{iot:ClientId}}/*"}]}))
    iot.attach_policy(policyName=policy, target=created_arn(group))
    topic = f"fleet/{name}/status"
    client = Client(device, indexed.mqtt_port, client_id=name, version=V5).connect()
    try:
        assert _ack(client, topic) == DENIED  # not a member yet
        iot.update_thing(thingName=name, attributePayload={"attributes": {"tier": "gold"},
                                                           "merge": True})
        _until_ack(client, topic, ALLOWED, "the group's policy never applied")
        iot.update_thing(thingName=name, attributePayload={"attributes": {"tier": "silver"},
                                                           "merge": True})
        _until_ack(client, topic, {DENIED}, "the group's policy still applies after leaving")
        assert not client.disconnected.is_set(), "the session should have stayed up"
    finally:
        client.disconnect()
    iot.detach_policy(policyName=policy, target=created_arn(group))
    iot.delete_dynamic_thing_group(thingGroupName=group)


def created_arn(group: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}"


def _ack(client: Client, topic: str) -> int:
    code: int = client.acks[client.publish(topic, b"x", qos=1).mid].value
    return code


def _until_ack(client: Client, topic: str, wanted: set[int], failure: str) -> None:
    deadline = time.monotonic() + FOLLOW
    while _ack(client, topic) not in wanted:
        assert time.monotonic() < deadline, failure


PORTS = {"name": "ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set",
                      "value": {"ports": [443]}}}


def test_a_detect_profile_on_a_dynamic_group_follows_its_members(
        indexed: ApiBastion, iot: Any, tmp_path: Path) -> None:
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    name = f"dd-{batch}"
    device = device_through_api(indexed, iot, name, tmp_path)
    iot.update_thing(thingName=name, attributePayload={"attributes": {"batch": batch,
                                                                      "watch": "no"}})
    group = f"watched-{batch}"
    iot.create_dynamic_thing_group(
        thingGroupName=group, queryString=f"attributes.batch:{batch} attributes.watch:yes")
    profile = f"sp-{batch}"
    iot.create_security_profile(securityProfileName=profile, behaviors=[PORTS])
    iot.attach_security_profile(securityProfileName=profile,
                                securityProfileTargetArn=created_arn(group))
    client = Client(device, indexed.mqtt_port, client_id=name).connect()
    topic = f"$aws/things/{name}/defender/metrics/json"
    client.subscribe(topic + "/accepted", qos=1)

    def report(report_id: int) -> None:
        client.publish(topic, json.dumps({
            "header": {"report_id": report_id, "version": "1.0"},
            "metrics": {"listening_tcp_ports": {"ports": [{"port": 443}, {"port": 23}]}}}),
            qos=1)
        assert json.loads(client.expect()[0].payload)["reportId"] == report_id

    def violations() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = iot.list_active_violations(
            thingName=name)["activeViolations"]
        return found

    try:
        assert violations() == []
        # One report only: a thing may report once per period. It joins the group first.
        iot.update_thing(thingName=name, attributePayload={"attributes": {"watch": "yes"},
                                                           "merge": True})
        _eventually_members(iot, group, {name})
        report(1)
        wait_for(violations, what="a violation once the thing joined the dynamic group")
        assert violations()[0]["securityProfileName"] == profile
    finally:
        client.disconnect()


def test_a_group_made_through_another_node_is_followed_after_a_refresh(
        indexed: ApiBastion, iot: Any) -> None:
    """Another node's CreateDynamicThingGroup reaches this node's index only through the
    store: the keeper re-reads the dynamic groups periodically."""
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    name, group = f"n-{batch}", f"elsewhere-{batch}"
    _thing(iot, name, batch=batch)
    services = indexed.running.app.services
    services.plane.registry.create_dynamic_thing_group(  # as another node's registry would
        group, query_string=f"attributes.batch:{batch}", index_name="AWS_Things",
        query_version="2017-09-30")
    assert _members(iot, group) == set()
    services.index.refresh_dynamic_groups()
    assert _members(iot, group) == {name}
    _set(iot, name, batch="moved")
    _eventually_members(iot, group, set())
    iot.delete_dynamic_thing_group(thingGroupName=group)


def test_a_thing_in_ten_groups_joins_a_dynamic_group_once_it_has_room(iot: Any) -> None:
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    name = f"busy-{batch}"
    _thing(iot, name, batch=batch)
    statics = [f"s{i}-{batch}" for i in range(10)]
    for group in statics:
        iot.create_thing_group(thingGroupName=group)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
    dynamic = f"full-{batch}"
    iot.create_dynamic_thing_group(thingGroupName=dynamic,
                                   queryString=f"attributes.batch:{batch}")
    assert _members(iot, dynamic) == set()  # AWS: AddThingToDynamicThingGroupsFailed
    iot.remove_thing_from_thing_group(thingGroupName=statics[0], thingName=name)
    _eventually_members(iot, dynamic, {name})
    iot.delete_dynamic_thing_group(thingGroupName=dynamic)


def test_override_dynamic_groups_makes_room_for_a_static_group(iot: Any) -> None:
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    name = f"crowded-{batch}"
    _thing(iot, name, batch=batch)
    dynamic = f"dyn-{batch}"
    iot.create_dynamic_thing_group(thingGroupName=dynamic,
                                   queryString=f"attributes.batch:{batch}")
    statics = [f"s{i}-{batch}" for i in range(10)]
    for group in statics:
        iot.create_thing_group(thingGroupName=group)
    for group in statics[:9]:
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
    assert _members(iot, dynamic) == {name}  # 10 groups now, one dynamic
    assert _error(lambda: iot.add_thing_to_thing_group(
        thingGroupName=statics[9], thingName=name)) == ("InvalidRequestException", 400)
    iot.add_thing_to_thing_group(thingGroupName=statics[9], thingName=name,
                                 overrideDynamicGroups=True)
    groups = {g["groupName"] for g in
              iot.list_thing_groups_for_thing(thingName=name)["thingGroups"]}
    assert groups == set(statics)
    iot.search_index(queryString=f"thingName:{name}")  # a query applies what is noted first
    assert _members(iot, dynamic) == set()  # the index did not push it back in
    iot.delete_dynamic_thing_group(thingGroupName=dynamic)


def test_a_connectivity_query_follows_a_real_device(indexed: ApiBastion, iot: Any,
                                                    tmp_path: Path) -> None:
    _enable(iot)
    batch = uuid.uuid4().hex[:8]
    name, group = f"online-{batch}", f"online-{batch}"
    device = device_through_api(indexed, iot, name, tmp_path)
    iot.create_dynamic_thing_group(
        thingGroupName=group, queryString=f"thingName:{name} connectivity.connected:true")
    assert _members(iot, group) == set()
    client = Client(device, indexed.mqtt_port, client_id=name, version=V5).connect()
    try:
        _eventually_members(iot, group, {name})
    finally:
        client.disconnect()
    _eventually_members(iot, group, set())
    iot.delete_dynamic_thing_group(thingGroupName=group)
