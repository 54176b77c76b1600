"""The rules engine end to end: boto3 creates the rules, real devices publish over mutual
TLS (paho), and each action's effect is observed where it lands: an MQTT subscriber, a
JSON-lines file, PostgreSQL rows, an HTTPS receiver, a NATS JetStream stream, an
S3-compatible store (moto's server, a local stand-in: see the conftest), and the error
action."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import sqlalchemy as sa
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.reasoncodes import ReasonCode

from support.clients import V5, Client, wait_for
from support.receivers import Webhook

from .conftest import NATS_URL, OBJECT_STORE_KEY, RulesBastion


def _rule(sql: str, *actions: dict[str, Any], error_action: dict[str, Any] | None = None,
          version: str = "2016-03-23") -> dict[str, Any]:
    payload: dict[str, Any] = {"sql": sql, "actions": list(actions),
                               "awsIotSqlVersion": version}
    if error_action is not None:
        payload["errorAction"] = error_action
    return payload


def _republish(topic: str, qos: int = 0) -> dict[str, Any]:
    return {"republish": {"roleArn": "arn:aws:iam::123456789012:role/rules", "topic": topic,
                          "qos": qos}}


def test_republish_reaches_a_subscriber(rules_bastion: RulesBastion,
                                        unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("republish")
    area = unique("area")
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT temp * 2 AS doubled, topic(3) AS device, clientid() AS client "
        f"FROM 'sensors/{area}/+' WHERE temp > 10",
        _republish(f"derived/{area}/${{topic(3)}}", qos=1)))
    rules_bastion.wait_enabled(name)
    device = rules_bastion.make_device()
    listener = Client(device, rules_bastion.port).connect()
    sender = Client(device, rules_bastion.port).connect()
    try:
        listener.subscribe(f"derived/{area}/#", qos=1)
        sender.publish(f"sensors/{area}/press-1", json.dumps({"temp": 5}), qos=1)
        sender.publish(f"sensors/{area}/press-1", json.dumps({"temp": 21}), qos=1)
        [message] = listener.expect(1)
        assert message.topic == f"derived/{area}/press-1"
        assert message.qos == 1
        # the first publish did not pass WHERE: the first republish is the second one's
        assert json.loads(message.payload) == {"doubled": 42, "device": "press-1",
                                               "client": sender.client_id}
        # The rules process reports its counters a few times a second.
        wait_for(lambda: rules_bastion.engine.counters(name).matched == 1,
                 what="the match counted")
    finally:
        listener.stop()
        sender.stop()


def test_disabled_rule_does_not_fire_and_enabled_again_does(
        rules_bastion: RulesBastion, unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("toggle")
    area = unique("area")
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT n FROM 'in/{area}'", _republish(f"out/{area}")))
    rules_bastion.wait_enabled(name)
    iot.disable_topic_rule(ruleName=name)
    rules_bastion.wait_enabled(name, present=False)
    device = rules_bastion.make_device()
    client = Client(device, rules_bastion.port).connect()
    try:
        client.subscribe(f"out/{area}", qos=1)
        client.publish(f"in/{area}", json.dumps({"n": 1}), qos=1)
        iot.enable_topic_rule(ruleName=name)
        rules_bastion.wait_enabled(name)
        client.publish(f"in/{area}", json.dumps({"n": 2}), qos=1)
        [message] = client.expect(1)
        assert json.loads(message.payload) == {"n": 2}
        client.expect_none(0.2)
    finally:
        client.stop()


def test_file_sink_writes_json_lines(rules_bastion: RulesBastion,
                                     unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("logs")
    group = unique("plant") + "/line-1"
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT state.reported.heat AS heat FROM 'plant/{name}/#'",
        {"cloudwatchLogs": {"roleArn": "arn:aws:iam::123456789012:role/r",
                            "logGroupName": group}}))
    rules_bastion.wait_enabled(name)
    device = rules_bastion.make_device()
    client = Client(device, rules_bastion.port).connect()
    path = rules_bastion.engine.files.path_of(group)
    try:
        for heat in (71, 72):
            client.publish(f"plant/{name}/oven", json.dumps(
                {"state": {"reported": {"heat": heat}}}), qos=1)
        wait_for(lambda: path.exists() and len(path.read_text().splitlines()) == 2,
                 what="two lines in the log file")
    finally:
        client.stop()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["message"] for line in lines] == [{"heat": 71}, {"heat": 72}]
    assert {line["ruleName"] for line in lines} == {name}
    assert lines[0]["topic"] == f"plant/{name}/oven"


def test_rows_land_in_postgresql(rules_bastion: RulesBastion,
                                 unique: Callable[[str], str]) -> None:
    table = unique("readings")
    with rules_bastion.table(table, "device TEXT, heat INTEGER, tags TEXT, received BIGINT"
                             ) as database:
        iot = rules_bastion.client()
        name = unique("table")
        iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
            f"SELECT topic(2) AS device, heat, tags, timestamp() AS received, "
            f"'ignored' AS not_a_column FROM 'rows/{name}/+'",
            {"dynamoDBv2": {"roleArn": "arn:aws:iam::123456789012:role/r",
                            "putItem": {"tableName": table}}}))
        rules_bastion.wait_enabled(name)
        device = rules_bastion.make_device()
        client = Client(device, rules_bastion.port).connect()
        try:
            client.publish(f"rows/{name}/kiln", json.dumps({"heat": 900, "tags": ["a"]}),
                           qos=1)
            client.publish(f"rows/{name}/kiln", json.dumps({"heat": 905}), qos=1)

            def rows() -> list[Any]:
                with database.connect() as conn:
                    return list(conn.execute(sa.text(
                        f"SELECT device, heat, tags, received FROM {table} ORDER BY heat")))
            wait_for(lambda: len(rows()) == 2, what="two rows in PostgreSQL")
        finally:
            client.stop()
        first, second = rows()
        assert (first.device, first.heat, first.tags) == (name, 900, '["a"]')
        assert (second.device, second.heat, second.tags) == (name, 905, None)
        assert first.received > 1_700_000_000_000


def test_keyed_rows_are_written_replaced_and_deleted(rules_bastion: RulesBastion,
                                                     unique: Callable[[str], str]) -> None:
    """The dynamoDB action: key columns from templates, the result in a JSONB payload
    column; INSERT, UPDATE (replacing the payload) and DELETE chosen per message."""
    table = unique("by_key")
    with rules_bastion.table(table, "device TEXT, seq BIGINT, body JSONB, "
                             "PRIMARY KEY (device, seq)") as database:
        iot = rules_bastion.client()
        name = unique("keyed")
        iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
            f"SELECT heat, state FROM 'keyed/{name}/+'",
            {"dynamoDB": {"roleArn": "arn:aws:iam::123456789012:role/r", "tableName": table,
                          "operation": "${op}", "hashKeyField": "device",
                          "hashKeyValue": "${topic(3)}", "rangeKeyField": "seq",
                          "rangeKeyValue": "${seq}", "rangeKeyType": "NUMBER",
                          "payloadField": "body"}}))
        rules_bastion.wait_enabled(name)

        def rows() -> list[Any]:
            with database.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(
                    f"SELECT device, seq, body FROM {table} ORDER BY device, seq"))]

        device = rules_bastion.make_device()
        client = Client(device, rules_bastion.port).connect()
        try:
            def send(kiln: str, **body: Any) -> None:
                client.publish(f"keyed/{name}/{kiln}", json.dumps(body), qos=1)

            send("kiln-1", op="INSERT", seq=1, heat=900, state={"door": "shut"})
            send("kiln-1", op="INSERT", seq=2, heat=910)
            send("kiln-2", op="INSERT", seq=1, heat=300)
            wait_for(lambda: len(rows()) == 3, what="three rows")
            send("kiln-1", op="UPDATE", seq=1, heat=950)
            send("kiln-2", op="DELETE", seq=1)
            wait_for(lambda: rows() == [("kiln-1", 1, {"heat": 950}),
                                        ("kiln-1", 2, {"heat": 910})],
                     what="one row replaced, one deleted")
        finally:
            client.stop()
        assert rules_bastion.engine.counters(name).actions_failed == 0


def test_failing_action_triggers_the_error_action(rules_bastion: RulesBastion,
                                                  unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("failing")
    errors = f"errors/{name}"
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT * FROM 'fail/{name}'",
        {"dynamoDBv2": {"roleArn": "arn:aws:iam::123456789012:role/r",
                        "putItem": {"tableName": "no_such_table_here"}}},
        error_action=_republish(errors, qos=1)))
    rules_bastion.wait_enabled(name)
    device = rules_bastion.make_device()
    client = Client(device, rules_bastion.port).connect()
    try:
        client.subscribe(errors, qos=1)
        client.publish(f"fail/{name}", b'{"x": 1}', qos=1)
        [message] = client.expect(1)
    finally:
        client.stop()
    report = json.loads(message.payload)
    assert report["ruleName"] == name
    assert report["topic"] == f"fail/{name}"
    assert report["clientId"] == client.client_id
    assert base64.b64decode(report["base64OriginalPayload"]) == b'{"x": 1}'
    [failure] = report["failures"]
    assert failure["failedAction"] == "DynamoDBv2Action"
    assert failure["failedResource"] == "no_such_table_here"
    assert "no_such_table_here" in failure["errorMessage"]
    wait_for(lambda: (rules_bastion.engine.counters(name).actions_failed,
                      rules_bastion.engine.counters(name).error_actions_succeeded) == (1, 1),
             what="one failure and one error action counted")


def test_http_action_after_destination_confirmation(rules_bastion: RulesBastion,
                                                    webhook: Webhook,
                                                    unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    created = iot.create_topic_rule_destination(
        destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": webhook.url}})
    destination = created["topicRuleDestination"]
    assert destination["status"] == "IN_PROGRESS"
    assert destination["arn"].startswith("arn:aws:iot:us-east-1:")
    # the handshake: Bastion POSTs the token to the URL ...
    assert webhook.arrived.wait(5), "no confirmation request arrived"
    confirmation = webhook.received[0].document
    assert confirmation["messageType"] == "DestinationConfirmation"
    assert confirmation["arn"] == destination["arn"]
    assert confirmation["enableUrl"] == (f"{rules_bastion.url}/confirmdestination/"
                                         f"{confirmation['confirmationToken']}")
    webhook.arrived.clear()

    name = unique("http")
    errors = f"errors/{name}"
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT reading, topic() AS t FROM 'hooks/{name}'",
        {"http": {"url": webhook.url + "/${topic()}", "confirmationUrl": webhook.url,
                  "headers": [{"key": "x-device", "value": "${clientid()}"}]}},
        error_action=_republish(errors)))
    rules_bastion.wait_enabled(name)
    device = rules_bastion.make_device()
    client = Client(device, rules_bastion.port).connect()
    try:
        client.subscribe(errors, qos=1)
        # ... and until it is confirmed, the http action fails (to the error action)
        client.publish(f"hooks/{name}", b'{"reading": 1}', qos=1)
        [refused] = client.expect(1)
        assert "ENABLED" in json.loads(refused.payload)["failures"][0]["errorMessage"]
        assert not webhook.arrived.is_set()

        # the endpoint opens the enableUrl as it is, as an AWS endpoint would
        context = ssl.create_default_context(cafile=rules_bastion.ca)
        with urllib.request.urlopen(confirmation["enableUrl"], context=context,
                                    timeout=5) as answer:
            assert answer.status == 200
        got = iot.get_topic_rule_destination(arn=destination["arn"])["topicRuleDestination"]
        assert got["status"] == "ENABLED"
        wait_for(lambda: webhook.url in rules_bastion.engine.enabled_destinations(),
                 what="the destination enabled in the engine")
        client.publish(f"hooks/{name}", b'{"reading": 2}', qos=1)
        assert webhook.arrived.wait(5), "the http action never arrived"
    finally:
        client.stop()
    delivered = webhook.received[-1]
    assert delivered.path == f"/hooks/bastion/hooks/{name}"
    assert delivered.document == {"reading": 2, "t": f"hooks/{name}"}
    assert delivered.headers["x-device"] == client.client_id
    summaries = iot.list_topic_rule_destinations()["destinationSummaries"]
    assert destination["arn"] in [summary["arn"] for summary in summaries]
    iot.delete_topic_rule(ruleName=name)
    iot.delete_topic_rule_destination(arn=destination["arn"])


def test_basic_ingest_reaches_the_rule_and_no_subscriber(
        rules_bastion: RulesBastion, unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("ingest")
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        "SELECT v, topic() AS t FROM 'never/used'", _republish(f"ingested/{name}")))
    rules_bastion.wait_enabled(name)
    device = rules_bastion.make_device()
    client = Client(device, rules_bastion.port).connect()
    try:
        client.subscribe(f"ingested/{name}", qos=1)
        client.subscribe(f"$aws/rules/{name}/#", qos=1)
        client.publish(f"$aws/rules/{name}/line/4", b'{"v": 7}', qos=1)
        [message] = client.expect(1)
        assert message.topic == f"ingested/{name}"
        assert json.loads(message.payload) == {"v": 7, "t": "line/4"}
        client.expect_none(0.2)
    finally:
        client.stop()


def test_rules_see_only_messages_the_broker_accepted(rules_bastion: RulesBastion,
                                                    unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    area = unique("guarded")
    policy = unique("narrow")
    iot.create_policy(policyName=policy, policyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Publish",
             "Resource": f"arn:aws:iot:*:*:topic/{area}/open"}]}))
    name = unique("guard")
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT n, topic(2) AS via FROM '{area}/+'", _republish(f"seen/{area}", qos=1)))
    rules_bastion.wait_enabled(name)
    narrow = Client(rules_bastion.make_device(policy=policy), rules_bastion.port,
                    version=V5).connect()
    listener = Client(rules_bastion.make_device(), rules_bastion.port).connect()
    try:
        listener.subscribe(f"seen/{area}", qos=1)
        refused = narrow.publish(f"{area}/closed", b'{"n": 1}', qos=1)
        assert narrow.acks[refused.mid] == ReasonCode(PacketTypes.PUBACK, "Not authorized")
        narrow.publish(f"{area}/open", b'{"n": 2}', qos=1)
        [message] = listener.expect(1)
        assert json.loads(message.payload) == {"n": 2, "via": "open"}
        listener.expect_none(0.2)
    finally:
        narrow.stop()
        listener.stop()


def test_stream_action_publishes_to_jetstream(rules_bastion: RulesBastion,
                                              unique: Callable[[str], str]) -> None:
    import asyncio

    import nats
    import nats.js.errors

    name = unique("streamed")
    stream = name.upper()
    root = f"telemetry.{name}"

    async def jetstream(work: Callable[[Any], Any]) -> Any:
        nc = await nats.connect(NATS_URL)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(jetstream(lambda js: js.add_stream(name=stream, subjects=[f"{root}.>"])))
    try:
        iot = rules_bastion.client()
        errors = f"errors/{name}"
        iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
            f"SELECT heat, topic(3) AS oven FROM 'streamed/{name}/+'",
            {"kinesis": {"roleArn": "arn:aws:iam::123456789012:role/r",
                         "streamName": f"{root}.${{topic(3)}}",
                         "partitionKey": "${clientid()}"}},
            {"kinesis": {"roleArn": "arn:aws:iam::123456789012:role/r",
                         "streamName": f"nowhere.{name}"}},
            error_action=_republish(errors, qos=1)))
        rules_bastion.wait_enabled(name)
        client = Client(rules_bastion.make_device(), rules_bastion.port).connect()
        try:
            client.subscribe(errors, qos=1)
            client.publish(f"streamed/{name}/oven-9", b'{"heat": 300}', qos=1)
            # the second action's subject has no stream: it fails, to the error action
            [refused] = client.expect(1)
        finally:
            client.stop()
        [failure] = json.loads(refused.payload)["failures"]
        assert failure["failedAction"] == "KinesisAction"
        assert "no JetStream stream" in failure["errorMessage"]
        # the first action runs beside the second: wait for its message in the stream
        found: list[Any] = []

        def stored_yet() -> bool:
            async def last(js: Any) -> Any:
                try:
                    return await js.get_last_msg(stream, f"{root}.oven-9")
                except nats.js.errors.NotFoundError:
                    return None
            message = asyncio.run(jetstream(last))
            found.extend([message] if message is not None else [])
            return bool(found)

        wait_for(stored_yet, what="the message in the JetStream stream")
        stored = found[0]
        assert json.loads(stored.data) == {"heat": 300, "oven": "oven-9"}
        assert stored.headers["Bastion-Partition-Key"] == client.client_id
    finally:
        asyncio.run(jetstream(lambda js: js.delete_stream(stream)))


def test_objects_land_in_an_s3_compatible_store(rules_bastion: RulesBastion,
                                                unique: Callable[[str], str]) -> None:
    store = boto3.client("s3", endpoint_url=rules_bastion.object_store,
                         region_name="us-east-1", aws_access_key_id=OBJECT_STORE_KEY[0],
                         aws_secret_access_key=OBJECT_STORE_KEY[1])
    name = unique("objects")
    bucket = name.replace("_", "-")
    store.create_bucket(Bucket=bucket)
    iot = rules_bastion.client()
    errors = f"errors/{name}"
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT frame, topic(3) AS camera FROM 'frames/{name}/+'",
        {"s3": {"roleArn": "arn:aws:iam::123456789012:role/r", "bucketName": bucket,
                "key": "${topic(3)}/${timestamp()}.json"}},
        {"s3": {"roleArn": "arn:aws:iam::123456789012:role/r",
                "bucketName": f"{bucket}-missing", "key": "x.json"}},
        error_action=_republish(errors, qos=1)))
    rules_bastion.wait_enabled(name)
    client = Client(rules_bastion.make_device(), rules_bastion.port).connect()
    try:
        client.subscribe(errors, qos=1)
        client.publish(f"frames/{name}/cam-2", b'{"frame": 17}', qos=1)
        [refused] = client.expect(1)  # the second action: no such bucket
    finally:
        client.stop()
    [failure] = json.loads(refused.payload)["failures"]
    assert failure["failedAction"] == "S3Action"
    assert failure["failedResource"] == f"{bucket}-missing/x.json"
    assert "NoSuchBucket" in failure["errorMessage"]

    def keys() -> list[str]:
        listing = store.list_objects_v2(Bucket=bucket)
        return [item["Key"] for item in listing.get("Contents", [])]

    wait_for(lambda: len(keys()) == 1, what="the object in the bucket")
    [key] = keys()
    assert key.startswith("cam-2/") and key.endswith(".json")
    body = store.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert json.loads(body) == {"frame": 17, "camera": "cam-2"}


def test_republish_carries_mqtt5_headers(rules_bastion: RulesBastion,
                                         unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("headers")
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT v FROM 'asked/{name}'",
        {"republish": {"roleArn": "arn:aws:iam::123456789012:role/r",
                       "topic": f"answered/{name}", "qos": 1, "headers": {
                           "payloadFormatIndicator": "UTF8_DATA",
                           "contentType": "application/json",
                           "responseTopic": "replies/${clientid()}",
                           "correlationData": "${request}",
                           "messageExpiry": "60",
                           "userProperties": [{"key": "site", "value": "${site}"}]}}}))
    rules_bastion.wait_enabled(name)
    client = Client(rules_bastion.make_device(), rules_bastion.port, version=V5).connect()
    try:
        client.subscribe(f"answered/{name}", qos=1)
        client.publish(f"asked/{name}", b'{"v": 1, "request": "r-17", "site": "oslo"}',
                       qos=1)
        [message] = client.expect(1)
    finally:
        client.stop()
    props = message.properties
    assert json.loads(message.payload) == {"v": 1}
    assert props.PayloadFormatIndicator == 1
    assert props.ContentType == "application/json"
    assert props.ResponseTopic == f"replies/{client.client_id}"
    assert props.CorrelationData == b"r-17"
    assert 0 < props.MessageExpiryInterval <= 60
    assert props.UserProperty == [("site", "oslo")]


def test_http_batches(rules_bastion: RulesBastion, webhook: Webhook,
                      unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    destination = iot.create_topic_rule_destination(destinationConfiguration={
        "httpUrlConfiguration": {"confirmationUrl": webhook.url}})["topicRuleDestination"]
    assert webhook.arrived.wait(5), "no confirmation request arrived"
    enable_url = webhook.received[0].document["enableUrl"]
    context = ssl.create_default_context(cafile=rules_bastion.ca)
    urllib.request.urlopen(enable_url, context=context, timeout=5).close()
    wait_for(lambda: webhook.url in rules_bastion.engine.enabled_destinations(),
             what="the destination enabled in the engine")
    webhook.received.clear()
    name = unique("batched")
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        f"SELECT n FROM 'batched/{name}'",
        {"http": {"url": webhook.url, "enableBatching": True,
                  "batchConfig": {"maxBatchSize": 3, "maxBatchOpenMs": 200}}}))
    rules_bastion.wait_enabled(name)
    client = Client(rules_bastion.make_device(), rules_bastion.port).connect()
    try:
        for n in range(4):  # back to back: three fill a batch, the fourth waits 200 ms
            client.publish(f"batched/{name}", json.dumps({"n": n}), qos=1, wait=False)
        wait_for(lambda: sum(len(item.document) for item in webhook.received) == 4,
                 what="four results in batches")
    finally:
        client.stop()
    batches = [item.document for item in webhook.received]
    assert [result for batch in batches for result in batch] == [{"n": n} for n in range(4)]
    assert all(1 <= len(batch) <= 3 for batch in batches)
    assert max(len(batch) for batch in batches) > 1  # (as 3 + 1 unless the machine stalls)
    wait_for(lambda: rules_bastion.engine.counters(name).actions_succeeded == 4,
             what="four deliveries counted")
    iot.delete_topic_rule(ruleName=name)
    iot.delete_topic_rule_destination(arn=destination["arn"])


def test_rules_read_a_publishers_mqtt5_properties(rules_bastion: RulesBastion,
                                                  unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("props")
    iot.create_topic_rule(ruleName=name, topicRulePayload=_rule(
        "SELECT get_mqtt_property('content_type') AS type, "
        "get_mqtt_property('correlation_data') AS correlation, "
        f"get_user_properties('site') AS sites FROM 'props/{name}'",
        _republish(f"props-out/{name}", qos=1)))
    rules_bastion.wait_enabled(name)
    client = Client(rules_bastion.make_device(), rules_bastion.port, version=V5).connect()
    try:
        client.subscribe(f"props-out/{name}", qos=1)
        properties = PahoProperties(PacketTypes.PUBLISH)
        properties.ContentType = "text/csv"
        properties.CorrelationData = b"\x07\x08"
        properties.UserProperty = [("site", "oslo"), ("site", "rome")]
        client.publish(f"props/{name}", b"1,2,3", qos=1, properties=properties)
        [message] = client.expect(1)
    finally:
        client.stop()
    assert json.loads(message.payload) == {"type": "text/csv", "correlation": "Bwg=",
                                           "sites": ["oslo", "rome"]}
