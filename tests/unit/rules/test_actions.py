"""Action shapes → specs: what each AWS action becomes, and that any input is either a
spec or the caller's error (never another exception)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.rules import RulesError
from bastion.rules._actions import (
    HttpSpec,
    KeyColumn,
    LogFileSpec,
    ObjectSpec,
    RepublishSpec,
    SqlKeyedSpec,
    SqlTableSpec,
    StreamSpec,
    parse_action,
)

ROLE = "arn:aws:iam::123456789012:role/r"


@pytest.mark.parametrize(("action", "kind"), [
    ({"republish": {"roleArn": ROLE, "topic": "a/${topic(1)}", "qos": 1}}, RepublishSpec),
    ({"http": {"url": "https://h.example/x", "headers": [{"key": "k", "value": "v"}]}},
     HttpSpec),
    ({"cloudwatchLogs": {"roleArn": ROLE, "logGroupName": "plant/line-1"}}, LogFileSpec),
    ({"dynamoDBv2": {"roleArn": ROLE, "putItem": {"tableName": "readings"}}}, SqlTableSpec),
    ({"dynamoDB": {"roleArn": ROLE, "tableName": "readings", "hashKeyField": "device",
                   "hashKeyValue": "${topic(2)}"}}, SqlKeyedSpec),
    ({"kinesis": {"roleArn": ROLE, "streamName": "telemetry.a", "partitionKey": "k"}},
     StreamSpec),
    ({"s3": {"roleArn": ROLE, "bucketName": "frames", "key": "${newuuid()}"}}, ObjectSpec),
], ids=["republish", "http", "cloudwatchLogs", "dynamoDBv2", "dynamoDB", "kinesis", "s3"])
def test_supported_actions(action: dict[str, Any], kind: type) -> None:
    assert isinstance(parse_action(action), kind)


@pytest.mark.parametrize("action", [
    {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:1:function:f"}},
    {"republish": {"roleArn": ROLE, "topic": "$aws/things/t/shadow/update"}},
    {"republish": {"roleArn": ROLE, "topic": "a/+"}},
    {"republish": {"roleArn": ROLE, "topic": "a", "qos": 2}},
    {"republish": {"roleArn": ROLE, "topic": "a"}, "sns": {"targetArn": "x"}},
    {"http": {"url": "ftp://h.example/x"}},
    {"http": {"url": "https://h.example/${topic()}"}},
    {"http": {"url": "https://h.example/x", "confirmationUrl": "https://other.example/"}},
    {"http": {"url": "https://h.example/x", "enableBatching": True,
              "batchConfig": {"maxBatchSize": 11}}},
    {"http": {"url": "https://h.example/x", "auth": {"sigv4": {}}}},
    {"cloudwatchLogs": {"roleArn": ROLE, "logGroupName": "a b"}},
    {"dynamoDBv2": {"roleArn": ROLE, "putItem": {"tableName": "x; DROP TABLE y"}}},
    {"kinesis": {"roleArn": ROLE, "streamName": "a.>"}},
    {"s3": {"roleArn": ROLE, "bucketName": "b", "key": "k", "cannedAcl": "everyone"}},
    {"republish": {"roleArn": ROLE, "topic": "a", "qos": True}},
    {"republish": {"roleArn": ROLE, "topic": "a", "headers": 5}},
    {"republish": {"roleArn": ROLE, "topic": "a", "headers": {"userProperties": [1]}}},
    {"republish": {"roleArn": ROLE, "topic": "a", "headers": {"userProperties": [
        {"value": "v"}]}}},
    {"http": {"url": "https://h.example/x", "headers": [3]}},
    {"dynamoDBv2": {"roleArn": ROLE, "putItem": 3}},
    {"dynamoDB": {"roleArn": ROLE, "tableName": "t", "hashKeyValue": "x"}},
    {"dynamoDB": {"roleArn": ROLE, "tableName": "t", "hashKeyField": "a b",
                  "hashKeyValue": "x"}},
    {"dynamoDB": {"roleArn": ROLE, "tableName": "t", "hashKeyField": "k", "hashKeyValue": "x",
                  "hashKeyType": "BINARY"}},
    {"dynamoDB": {"roleArn": ROLE, "tableName": "t", "hashKeyField": "k", "hashKeyValue": "x",
                  "rangeKeyField": "r"}},
    {"dynamoDB": {"roleArn": ROLE, "tableName": "t", "hashKeyField": "k", "hashKeyValue": "x",
                  "payloadField": "k"}},
    {"dynamoDB": {"roleArn": ROLE, "tableName": "t", "hashKeyField": "k", "hashKeyValue": "x",
                  "operation": "MERGE"}},
    {"dynamoDB": {"roleArn": ROLE, "tableName": "t; --", "hashKeyField": "k",
                  "hashKeyValue": "x"}},
    {},
    {"republish": None},
], ids=["lambda", "reserved-topic", "wildcard-topic", "qos-2", "two-kinds", "ftp",
        "templated-url-without-confirmation", "url-outside-confirmation", "batch-too-big",
        "sigv4-auth",
        "bad-log-group", "bad-table", "wildcard-subject", "bad-acl", "qos-true", "headers-5",
        "user-property-not-object", "user-property-without-key", "http-header-not-object",
        "put-item-not-object", "keyed-without-hash-field", "keyed-bad-column",
        "keyed-binary-key", "keyed-range-without-value", "keyed-payload-is-key",
        "keyed-unknown-operation", "keyed-bad-table", "empty", "null"])
def test_refused_actions(action: dict[str, Any]) -> None:
    with pytest.raises(RulesError):
        parse_action(action)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["topic", "qos", "headers", "url", "key", "value", "userProperties",
                         "logGroupName", "putItem", "tableName", "streamName", "bucketName",
                         "confirmationUrl", "cannedAcl", "partitionKey", "roleArn",
                         "hashKeyField", "hashKeyValue", "hashKeyType", "rangeKeyField",
                         "rangeKeyValue", "payloadField", "operation"]),
        children, max_size=4),
    max_leaves=12)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["republish", "http", "cloudwatchLogs", "dynamoDBv2",
                                        "dynamoDB", "kinesis", "s3", "lambda"]), json_like,
                       max_size=2))
def test_any_input_is_a_spec_or_the_callers_error(action: dict[str, Any]) -> None:
    try:
        parse_action(action)
    except RulesError:
        pass


def test_keyed_table_action_maps_key_and_payload_columns() -> None:
    spec = parse_action({"dynamoDB": {
        "roleArn": ROLE, "tableName": "readings", "operation": "${op}",
        "hashKeyField": "device", "hashKeyValue": "${topic(2)}",
        "rangeKeyField": "seq", "rangeKeyValue": "${seq}", "rangeKeyType": "NUMBER",
        "payloadField": "body"}})
    assert isinstance(spec, SqlKeyedSpec)
    assert [(key.name, key.value.source, key.number) for key in spec.keys] == [
        ("device", "${topic(2)}", False), ("seq", "${seq}", True)]
    assert spec.payload_column == "body"
    assert spec.operation is not None and spec.operation.source == "${op}"
    default = parse_action({"dynamoDB": {"roleArn": ROLE, "tableName": "t",
                                         "hashKeyField": "k", "hashKeyValue": "v"}})
    assert isinstance(default, SqlKeyedSpec)
    assert (default.payload_column, default.operation) == ("payload", None)
    assert isinstance(default.keys[0], KeyColumn)
