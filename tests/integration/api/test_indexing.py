"""Fleet indexing through boto3 with SigV4 against a real Bastion, on SQLite and on
PostgreSQL: the configuration, SearchIndex with AWS's query syntax, pagination, the
aggregations, DescribeIndex/ListIndices, the thing-group index, every refusal — and an
index that follows registry, shadow and connection changes within a second (a real
paho client over mutual TLS for the connections)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.clients import V5, Client

from .conftest import ApiBastion, device_through_api
from .test_cli import AWS, aws_env

FOLLOW = 1.0  # seconds: the index shows a change within a second


@pytest.fixture
def iot(indexed: ApiBastion) -> Any:
    """The admin client of this module's own Bastion (``indexed``, in conftest)."""
    return indexed.client()


def _error(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"],
            error["Error"]["Message"])


def _enable(iot: Any, **things: Any) -> None:
    """Turn thing indexing on (as asked) and wait until the index is built."""
    settings = {"thingIndexingMode": "REGISTRY_AND_SHADOW",
                "thingConnectivityIndexingMode": "STATUS", **things}
    iot.update_indexing_configuration(
        thingIndexingConfiguration=settings,
        thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"})
    deadline = time.monotonic() + 10
    while iot.describe_index(indexName="AWS_Things")["indexStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "the index was never built"
        time.sleep(0.02)


def _names(iot: Any, query: str) -> set[str]:
    return {thing["thingName"] for thing in iot.search_index(queryString=query)["things"]}


def _eventually(iot: Any, query: str, expected: set[str], within: float = FOLLOW) -> None:
    deadline = time.monotonic() + within
    while (found := _names(iot, query)) != expected:
        assert time.monotonic() < deadline, f"{query}: {found} != {expected}"
        time.sleep(0.02)


@pytest.fixture
def batch(iot: Any) -> str:
    """A tag no other test's things carry (their attribute ``batch``)."""
    _enable(iot)
    return uuid.uuid4().hex[:10]


def test_with_indexing_off_search_answers_resource_not_found(iot: Any) -> None:
    iot.update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "OFF"},
        thingGroupIndexingConfiguration={"thingGroupIndexingMode": "OFF"})
    config = iot.get_indexing_configuration()
    assert config["thingIndexingConfiguration"]["thingIndexingMode"] == "OFF"
    assert config["thingGroupIndexingConfiguration"]["thingGroupIndexingMode"] == "OFF"
    code, status, message = _error(lambda: iot.search_index(queryString="thingName:*"))
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert "AWS_Things does not exist" in message
    assert _error(lambda: iot.get_statistics(queryString="*"))[:2] == (
        "ResourceNotFoundException", 404)
    assert _error(lambda: iot.describe_index(indexName="AWS_Things"))[0] == (
        "ResourceNotFoundException")
    assert iot.list_indices()["indexNames"] == []


def test_the_configuration_round_trips_and_bad_ones_are_refused(iot: Any) -> None:
    _enable(iot, namedShadowIndexingMode="ON",
            filter={"namedShadowNames": ["config", "battery"]})
    config = iot.get_indexing_configuration()
    things = config["thingIndexingConfiguration"]
    assert things["thingIndexingMode"] == "REGISTRY_AND_SHADOW"
    assert things["thingConnectivityIndexingMode"] == "STATUS"
    assert things["namedShadowIndexingMode"] == "ON"
    assert things["filter"]["namedShadowNames"] == ["config", "battery"]
    assert {"name": "thingName", "type": "String"} in things["managedFields"]
    assert config["thingGroupIndexingConfiguration"]["thingGroupIndexingMode"] == "ON"
    assert sorted(iot.list_indices()["indexNames"]) == ["AWS_ThingGroups", "AWS_Things"]
    described = iot.describe_index(indexName="AWS_Things")
    assert (described["indexStatus"], described["schema"]) == ("ACTIVE",
                                                               "MULTI_INDEXING_MODE")
    assert _error(lambda: iot.describe_index(indexName="Nope"))[0] == (
        "ResourceNotFoundException")
    refused = [
        {"thingIndexingMode": "OFF", "thingConnectivityIndexingMode": "STATUS"},
        {"thingIndexingMode": "REGISTRY", "namedShadowIndexingMode": "ON"},
        {"thingIndexingMode": "REGISTRY", "deviceDefenderIndexingMode": "VIOLATIONS"},
    ]
    for settings in refused:
        assert _error(lambda s=settings: iot.update_indexing_configuration(
            thingIndexingConfiguration=s))[:2] == ("InvalidRequestException", 400)
    after = iot.get_indexing_configuration()
    del after["ResponseMetadata"], config["ResponseMetadata"]
    assert after == config  # a refused update changes nothing


def test_search_with_aws_query_syntax(indexed: ApiBastion, iot: Any, batch: str) -> None:
    data = indexed.client("iot-data")
    iot.create_thing_type(thingTypeName=f"tv-{batch}")
    iot.create_thing_group(thingGroupName=f"screens-{batch}")
    specs = {
        "tv-plasma": ("plasma", 40, f"tv-{batch}"),
        "tv-oled": ("oled", 55, f"tv-{batch}"),
        "radio": ("am", 3, None),
    }
    names = {}
    for short, (kind, size, thing_type) in specs.items():
        name = f"{short}-{batch}"
        names[short] = name
        args: dict[str, Any] = {"thingName": name, "attributePayload": {"attributes": {
            "batch": batch, "kind": kind, "size": str(size)}}}
        if thing_type:
            args["thingTypeName"] = thing_type
        iot.create_thing(**args)
    iot.add_thing_to_thing_group(thingGroupName=f"screens-{batch}", thingName=names["tv-oled"])
    data.update_thing_shadow(thingName=names["tv-oled"], payload=json.dumps(
        {"state": {"reported": {"temp": 41.5, "on": True, "fw": {"major": 2}},
                   "desired": {"on": False}}}).encode())
    data.update_thing_shadow(thingName=names["tv-plasma"], shadowName="battery",
                             payload=json.dumps({"state": {"reported": {"level": 17}}}).encode())
    tv, radio, oled, plasma = ({names["tv-plasma"], names["tv-oled"]}, {names["radio"]},
                               {names["tv-oled"]}, {names["tv-plasma"]})
    everyone = tv | radio
    b = f"attributes.batch:{batch}"
    _eventually(iot, f"{b} shadow.reported.temp:41.5", oled)
    _enable(iot, namedShadowIndexingMode="ON", filter={"namedShadowNames": ["battery"]})
    cases = {
        b: everyone,
        f"thingName:{names['radio']}": radio,
        f"{b} thingName:tv*": tv,
        f"{b} thingName:tv-?led*": oled,
        f"{b} thingName:(tv* AND -*plasma*)": oled,
        f"{b} AND NOT attributes.kind:plasma": {names["tv-oled"], names["radio"]},
        f"{b} (attributes.kind:am OR attributes.kind:oled)": radio | oled,
        f"{b} attributes.size:[10 TO 50]": plasma,
        f"{b} attributes.size>40": oled,
        f"{b} attributes.size>=40": tv,
        f"{b} attributes.size<40": radio,
        f"{b} attributes.size<=3": radio,
        f"{b} attributes.size:{{3 TO 55}}": plasma,
        f'{b} attributes.kind:"OLED"': oled,
        f"{b} thingTypeName:tv-{batch}": tv,
        f"thingGroupNames:screens-{batch}": oled,
        f"{b} registry.version:1": everyone,
        f"{b} registry.version:2": set(),
        f"{b} shadow.reported.temp>40 shadow.reported.on:true": oled,
        f"{b} shadow.reported.fw.major:2": oled,
        f"{b} shadow.desired.on:false": oled,
        f"{b} shadow.hasDelta:true": oled,
        f"{b} shadow.name.battery.reported.level<20": plasma,
        f"{b} connectivity.connected:false": everyone,
        f"{b} NOT connectivity.connected:true": everyone,
    }
    for query, expected in cases.items():
        assert _names(iot, query) == expected, query
    thing_id = iot.describe_thing(thingName=names["tv-oled"])["thingId"]
    assert _names(iot, f"thingId:{thing_id}") == oled

    found = iot.search_index(indexName="AWS_Things", queryString=f"thingName:{names['tv-oled']}",
                             queryVersion="2017-09-30")["things"]
    assert len(found) == 1
    document = found[0]
    assert document["thingName"] == names["tv-oled"]
    assert document["thingId"] == thing_id
    assert document["thingTypeName"] == f"tv-{batch}"
    assert document["thingGroupNames"] == [f"screens-{batch}"]
    assert document["attributes"] == {"batch": batch, "kind": "oled", "size": "55"}
    shadow = json.loads(document["shadow"])
    assert shadow["reported"] == {"temp": 41.5, "on": True, "fw": {"major": 2}}
    assert shadow["desired"] == {"on": False} and shadow["hasDelta"] is True
    assert document["connectivity"] == {"connected": False}
    named = json.loads(iot.search_index(queryString=f"thingName:{names['tv-plasma']}")
                       ["things"][0]["shadow"])
    assert named["name"]["battery"]["reported"] == {"level": 17}


def test_an_auditor_may_search_but_not_configure(indexed: ApiBastion, batch: str) -> None:
    auditor = indexed.client(role="auditor")
    assert auditor.search_index(queryString=f"attributes.batch:{batch}")["things"] == []
    assert auditor.get_statistics(queryString="thingName:*")["statistics"]["count"] >= 0
    code, status, _ = _error(lambda: auditor.update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "OFF"}))
    assert (code, status) == ("AccessDeniedException", 403)
    assert indexed.client().describe_index(indexName="AWS_Things")["indexStatus"] == "ACTIVE"


def test_pages_follow_the_next_token(iot: Any, batch: str) -> None:
    created = sorted(f"page-{batch}-{i}" for i in range(7))
    for name in created:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"batch": batch}})
    query = f"attributes.batch:{batch}"
    _eventually(iot, query, set(created))
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        args: dict[str, Any] = {"queryString": query, "maxResults": 3}
        if token:
            args["nextToken"] = token
        answer = iot.search_index(**args)
        pages += 1
        assert len(answer["things"]) <= 3
        seen += [thing["thingName"] for thing in answer["things"]]
        token = answer.get("nextToken")
        if not token:
            break
    assert (seen, pages) == (created, 3)
    first = iot.search_index(queryString=query, maxResults=3)["nextToken"]
    assert _error(lambda: iot.search_index(queryString="thingName:*", nextToken=first))[:2] == (
        "InvalidRequestException", 400)
    assert _error(lambda: iot.search_index(queryString=query, nextToken="garbage"))[:2] == (
        "InvalidRequestException", 400)


@pytest.mark.parametrize("query", [
    "thingName:",
    "(thingName:a",
    "thingName:a)",
    "attributes.size:[1 TO",
    "thingName:a AND",
    'thingName:"open',
    "attributes.mail:a@b.c",
    "thingName:*a thingGroupNames:*b",
    "noSuchField:x",
    "shadow.name.unlisted.reported.x:1",
    "shadow.bogus.x:1",
    " ".join(f"attributes.a:{n}" for n in range(13)),
])
def test_a_bad_query_is_an_invalid_query_exception(iot: Any, batch: str, query: str) -> None:
    code, status, _ = _error(lambda: iot.search_index(queryString=query))
    assert (code, status) == ("InvalidQueryException", 400)
    assert _error(lambda: iot.get_statistics(queryString=query))[0] == "InvalidQueryException"


def test_shadow_fields_need_shadow_indexing(iot: Any) -> None:
    _enable(iot, thingIndexingMode="REGISTRY", thingConnectivityIndexingMode="OFF")
    try:
        for query in ("shadow.reported.temp:1", "connectivity.connected:true"):
            assert _error(lambda q=query: iot.search_index(queryString=q))[0] == (
                "InvalidQueryException")
        assert iot.describe_index(indexName="AWS_Things")["schema"] == "REGISTRY"
    finally:
        _enable(iot)


def test_a_configuration_changed_through_another_node_is_followed(indexed: ApiBastion,
                                                                  iot: Any) -> None:
    _enable(iot)
    services = indexed.running.app.services
    other = type(services.index)(services.store)  # another node's index, same store
    other.update_configuration(things={"thingIndexingMode": "REGISTRY"})
    schema = "REGISTRY_AND_SHADOW_AND_CONNECTIVITY_STATUS"
    assert iot.describe_index(indexName="AWS_Things")["schema"] == schema
    try:
        services.index.refresh()  # what the keeper does every 30 seconds
        deadline = time.monotonic() + 10
        while (described := iot.describe_index(indexName="AWS_Things")) != described | {
                "schema": "REGISTRY", "indexStatus": "ACTIVE"}:
            assert time.monotonic() < deadline, described
            time.sleep(0.02)
        assert _error(lambda: iot.search_index(queryString="shadow.reported.x:1"))[0] == (
            "InvalidQueryException")
    finally:
        _enable(iot)


def test_aggregations(indexed: ApiBastion, iot: Any, batch: str) -> None:
    data = indexed.client("iot-data")
    temperatures = {"a": 10, "b": 20, "c": 30, "d": 40}
    for short, temp in temperatures.items():
        name = f"agg-{short}-{batch}"
        iot.create_thing(thingName=name, attributePayload={"attributes": {
            "batch": batch, "color": "red" if temp < 35 else "blue"}})
        data.update_thing_shadow(thingName=name, payload=json.dumps(
            {"state": {"reported": {"temp": temp}}}).encode())
    query = f"attributes.batch:{batch}"
    _eventually(iot, f"{query} shadow.reported.temp:*", {f"agg-{s}-{batch}" for s in "abcd"})
    assert iot.get_statistics(queryString=query)["statistics"] == {"count": 4}
    stats = iot.get_statistics(queryString=query, aggregationField="shadow.reported.temp")
    assert stats["statistics"] == {"count": 4, "average": 25.0, "sum": 100.0, "minimum": 10.0,
                                   "maximum": 40.0, "sumOfSquares": 3000.0, "variance": 125.0,
                                   "stdDeviation": pytest.approx(11.1803, abs=1e-3)}
    assert iot.get_cardinality(queryString=query,
                               aggregationField="attributes.color")["cardinality"] == 2
    percentiles = iot.get_percentiles(queryString=query, aggregationField="shadow.reported.temp",
                                      percents=[0, 50, 100])["percentiles"]
    assert percentiles == [{"percent": 0.0, "value": 10.0}, {"percent": 50.0, "value": 25.0},
                           {"percent": 100.0, "value": 40.0}]
    buckets = iot.get_buckets_aggregation(
        queryString=query, aggregationField="attributes.color",
        bucketsAggregationType={"termsAggregation": {"maxBuckets": 5}})
    assert buckets["totalCount"] == 4
    assert buckets["buckets"] == [{"keyValue": "red", "count": 3},
                                  {"keyValue": "blue", "count": 1}]
    assert _error(lambda: iot.get_statistics(queryString=query,
                                             aggregationField="attributes.color"))[:2] == (
        "InvalidAggregationException", 400)
    assert _error(lambda: iot.get_percentiles(queryString=query,
                                              aggregationField="noSuch.field"))[:2] == (
        "InvalidAggregationException", 400)


def test_the_thing_group_index(iot: Any, batch: str) -> None:
    iot.create_thing_group(thingGroupName=f"site-{batch}", thingGroupProperties={
        "thingGroupDescription": "north site",
        "attributePayload": {"attributes": {"region": "north"}}})
    iot.create_thing_group(thingGroupName=f"floor-{batch}", parentGroupName=f"site-{batch}")
    found = iot.search_index(indexName="AWS_ThingGroups",
                             queryString=f"parentGroupNames:site-{batch}")
    assert found["things"] == []
    assert [g["thingGroupName"] for g in found["thingGroups"]] == [f"floor-{batch}"]
    assert found["thingGroups"][0]["parentGroupNames"] == [f"site-{batch}"]
    site = iot.search_index(indexName="AWS_ThingGroups",
                            queryString=f"thingGroupName:*-{batch} attributes.region:north")
    assert [(g["thingGroupName"], g["thingGroupDescription"]) for g in site["thingGroups"]] == [
        (f"site-{batch}", "north site")]
    assert _error(lambda: iot.search_index(indexName="AWS_ThingGroups",
                                           queryString="thingName:x"))[0] == (
        "InvalidQueryException")


def test_the_index_follows_registry_and_shadow_changes_within_a_second(
        indexed: ApiBastion, iot: Any, batch: str) -> None:
    data = indexed.client("iot-data")
    name = f"follow-{batch}"
    query = f"attributes.batch:{batch} attributes.state:ready"
    iot.create_thing(thingName=name, attributePayload={"attributes": {"batch": batch,
                                                                      "state": "new"}})
    _eventually(iot, f"attributes.batch:{batch}", {name})
    assert _names(iot, query) == set()
    iot.update_thing(thingName=name, attributePayload={"attributes": {"state": "ready"},
                                                       "merge": True})
    _eventually(iot, query, {name})
    _eventually(iot, f"attributes.batch:{batch} registry.version:2", {name})
    data.update_thing_shadow(thingName=name, payload=b'{"state":{"reported":{"load":7}}}')
    _eventually(iot, f"attributes.batch:{batch} shadow.reported.load>5", {name})
    data.delete_thing_shadow(thingName=name)
    _eventually(iot, f"attributes.batch:{batch} shadow.reported.load:*", set())
    iot.create_thing_group(thingGroupName=f"g-{batch}")
    iot.add_thing_to_thing_group(thingGroupName=f"g-{batch}", thingName=name)
    _eventually(iot, f"thingGroupNames:g-{batch}", {name})
    iot.delete_thing(thingName=name)
    _eventually(iot, f"attributes.batch:{batch}", set())


def test_connectivity_follows_a_real_device(indexed: ApiBastion, iot: Any, batch: str,
                                            tmp_path: Path) -> None:
    name = f"device-{batch}"
    device = device_through_api(indexed, iot, name, tmp_path)
    query = f"thingName:{name} connectivity.connected:true"
    assert _names(iot, query) == set()
    client = Client(device, indexed.mqtt_port, client_id=name, version=V5).connect()
    try:
        _eventually(iot, query, {name})
        live = iot.search_index(queryString=query)["things"][0]["connectivity"]
        assert live["connected"] is True
        assert abs(live["timestamp"] / 1000 - time.time()) < 10
    finally:
        client.disconnect()
    _eventually(iot, f"thingName:{name} "
                     "connectivity.disconnectReason:CLIENT_INITIATED_DISCONNECT", {name})
    assert _names(iot, f"thingName:{name} connectivity.timestamp>{int(time.time() * 1000) - 60_000}"
                  ) == {name}


def test_a_restarted_index_is_rebuilt_from_the_store(indexed: ApiBastion, iot: Any,
                                                     batch: str) -> None:
    name = f"rebuilt-{batch}"
    iot.create_thing(thingName=name, attributePayload={"attributes": {"batch": batch}})
    _eventually(iot, f"attributes.batch:{batch}", {name})
    index = indexed.running.app.services.index
    fresh = type(index)(indexed.running.app.services.store)
    assert not fresh.ready  # thing indexing was on when it started: it must be built
    fresh.rebuild()
    assert [t["thingName"] for t in fresh.search(f"attributes.batch:{batch}").things] == [name]


@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_the_aws_cli(indexed: ApiBastion, iot: Any, batch: str, tmp_path: Path) -> None:
    """``aws iot search-index`` and ``create-dynamic-thing-group`` as an operator types
    them, the invalid query answered as AWS answers it."""
    assert AWS is not None
    name = f"cli-{batch}"
    iot.create_thing(thingName=name, attributePayload={"attributes": {"batch": batch}})
    common = ["--endpoint-url", indexed.url, "--ca-bundle", str(indexed.verify),
              "--output", "json"]

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AWS, "iot", *args, *common], capture_output=True, text=True,
                              env=aws_env(tmp_path), timeout=60, check=False)

    found = aws("search-index", "--query-string", f"attributes.batch:{batch}")
    assert found.returncode == 0, found.stderr
    assert [t["thingName"] for t in json.loads(found.stdout)["things"]] == [name]
    bad = aws("search-index", "--query-string", "thingName:(")
    assert bad.returncode != 0 and "InvalidQueryException" in bad.stderr
    group = f"cli-group-{batch}"
    made = aws("create-dynamic-thing-group", "--thing-group-name", group,
               "--query-string", f"attributes.batch:{batch}")
    assert made.returncode == 0, made.stderr
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == [name]
    iot.delete_dynamic_thing_group(thingGroupName=group)
