"""Routing, binding, validation and serialization, driven by botocore's models and
checked against botocore's own serializer and parser."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from bastion.api import ApiError, load_catalog
from bastion.api._binding import bind_input, parse_query
from bastion.api._serialize import serialize_error, serialize_output

CATALOG = load_catalog()
IOT = CATALOG.services["iot"]
DATA = CATALOG.services["iot-data"]


def sample_labels(template: str) -> dict[str, str]:
    return {name: "a/b c:1" for name in re.findall(r"{(\w+)\+?}", template)}


@pytest.mark.parametrize("service", ["iot", "iot-data", "iot-jobs-data"])
def test_every_operation_routes_back_to_itself(service: str) -> None:
    api = CATALOG.services[service]
    serializer = create_serializer("rest-json", include_validation=False)
    for name in api.operation_names:
        operation = api.operation(name)
        template = operation.http["requestUri"]
        path = serializer._render_uri_template(template, sample_labels(template))
        path, _, query = path.partition("?")
        match = api.router.match(operation.http["method"], path, parse_query(query))
        assert match.operation.name == name, (name, path)
        for label, value in match.labels.items():
            assert value == "a/b c:1", (name, label)


def test_unknown_paths_and_methods() -> None:
    with pytest.raises(ApiError) as caught:
        IOT.router.match("GET", "/no-such-thing-here", {})
    assert (caught.value.http_status, caught.value.aws_error_type) == (404, "UnknownOperationException")
    with pytest.raises(ApiError) as caught:
        IOT.router.match("HEAD", "/things", {})
    assert (caught.value.http_status, caught.value.aws_error_type) == (405, "MethodNotAllowedException")


def bind(api_name: str, operation: str, *, labels: dict[str, str] | None = None,
         query: str = "", headers: dict[str, str] | None = None, body: bytes = b"",
         validate: bool = True) -> dict[str, Any]:
    model = CATALOG.services[api_name].operation(operation)
    found = {key.lower(): value for key, value in (headers or {}).items()}
    return bind_input(model, labels or {}, parse_query(query), found.get, body,
                      validate=validate)


def invalid(api_name: str, operation: str, **kwargs: Any) -> str:
    with pytest.raises(ApiError) as caught:
        bind(api_name, operation, **kwargs)
    assert caught.value.aws_error_type == "InvalidRequestException"
    assert caught.value.http_status == 400
    return caught.value.message


def test_binds_labels_body_and_query_like_boto3_kwargs() -> None:
    params = bind("iot", "CreateThing", labels={"thingName": "dev-1"},
                  body=b'{"thingTypeName":"t","attributePayload":{"attributes":{"a":"b"},'
                       b'"merge":true}, "unknownField": 1}')
    assert params == {"thingName": "dev-1", "thingTypeName": "t",
                      "attributePayload": {"attributes": {"a": "b"}, "merge": True}}
    assert bind("iot", "ListThings", query="maxResults=7&usePrefixAttributeValue=true") == {
        "maxResults": 7, "usePrefixAttributeValue": True}
    # The wire name differs from the member name.
    assert bind("iot", "ListCertificates", query="isAscendingOrder=false") == {
        "ascendingOrder": False}
    assert bind("iot", "DescribeCACertificate", labels={"caCertificateId": "ab" * 32}) == {
        "certificateId": "ab" * 32}
    assert bind("iot", "AttachThingPrincipal", labels={"thingName": "t"},
                headers={"x-amzn-principal": "arn:aws:iot:us-east-1:1:cert/x"}) == {
        "thingName": "t", "principal": "arn:aws:iot:us-east-1:1:cert/x"}
    assert bind("iot", "SetLoggingOptions", body=b'{"roleArn":"r","logLevel":"INFO"}') == {
        "loggingOptionsPayload": {"roleArn": "r", "logLevel": "INFO"}}


def test_binds_publish_raw_payload_and_jsonvalue_header() -> None:
    user_properties = base64.b64encode(b'[{"deviceName":"alpha"}]').decode()
    params = bind("iot-data", "Publish", labels={"topic": "a/b"},
                  query="qos=1&retain=true&messageExpiry=30&contentType=text%2Fplain",
                  headers={"x-amz-mqtt5-user-properties": user_properties},
                  body=b"\x00\x01raw")
    assert params == {"topic": "a/b", "qos": 1, "retain": True, "messageExpiry": 30,
                      "contentType": "text/plain", "payload": b"\x00\x01raw",
                      "userProperties": [{"deviceName": "alpha"}]}


def test_body_timestamps_and_blobs_are_converted() -> None:
    params = bind("iot", "ListViolationEvents",
                  query="startTime=2024-01-01T00%3A00%3A00Z&endTime=1704067260")
    assert params["startTime"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert params["endTime"] == datetime(2024, 1, 1, 0, 1, tzinfo=UTC)


def test_pattern_violation_names_the_field_in_aws_words() -> None:
    message = invalid("iot", "CreateThing", labels={"thingName": "bad name"})
    assert message == ("1 validation error detected: Value 'bad name' at 'thingName' failed "
                       "to satisfy constraint: Member must satisfy regular expression "
                       "pattern: [a-zA-Z0-9:_-]+")


def test_enum_range_length_required_and_type_violations() -> None:
    message = invalid("iot", "UpdateCertificate", labels={"certificateId": "ab" * 32},
                      query="newStatus=LOST")
    assert "at 'newStatus' failed to satisfy constraint: Member must satisfy enum value " \
           "set: [ACTIVE, INACTIVE, REVOKED, PENDING_TRANSFER, REGISTER_INACTIVE, " \
           "PENDING_ACTIVATION]" in message
    message = invalid("iot", "ListThings", query="maxResults=0")
    assert "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value " \
           "greater than or equal to 1" in message
    message = invalid("iot", "ListThings", query="maxResults=seven")
    assert "at 'maxResults'" in message and "integer" in message
    message = invalid("iot", "DescribeCertificate", labels={"certificateId": "abc"})
    assert "Member must have length greater than or equal to 64" in message
    message = invalid("iot", "CreatePolicy", labels={"policyName": "p"}, body=b"{}")
    assert "Value null at 'policyDocument' failed to satisfy constraint: Member must not " \
           "be null" in message
    message = invalid("iot", "TestAuthorization",
                      body=b'{"authInfos":[{"actionType":"PUBLISH"},{"actionType":"X",'
                           b'"resources":["r"]}]}')
    assert message.startswith("2 validation errors detected: ")
    assert "at 'authInfos.1.member.resources' failed to satisfy constraint: Member must " \
           "not be null" in message
    assert "Value 'X' at 'authInfos.2.member.actionType'" in message


def test_map_keys_and_values_are_checked() -> None:
    message = invalid("iot", "CreateThing", labels={"thingName": "t"},
                      body=b'{"attributePayload":{"attributes":{"bad key":"v"}}}')
    assert "Value 'bad key' at 'attributePayload.attributes' failed to satisfy " \
           "constraint: Map keys must satisfy constraint: [Member must satisfy regular " \
           "expression pattern" in message


def test_java_character_classes_are_enforced() -> None:
    message = invalid("iot", "CreateThingType", labels={"thingTypeName": "t"},
                      body=json.dumps({"thingTypeProperties": {
                          "thingTypeDescription": "tab\there"}}).encode())
    assert "thingTypeProperties.thingTypeDescription" in message
    assert bind("iot", "CreateThingType", labels={"thingTypeName": "t"},
                body=b'{"thingTypeProperties":{"thingTypeDescription":"all fine!"}}')


def test_malformed_bodies_and_types() -> None:
    assert "not valid JSON" in invalid("iot", "CreatePolicy", labels={"policyName": "p"},
                                       body=b"{nope")
    assert "must be a JSON object" in invalid("iot", "CreatePolicy",
                                              labels={"policyName": "p"}, body=b"[]")
    message = invalid("iot", "CreatePolicy", labels={"policyName": "p"},
                      body=b'{"policyDocument": 5}')
    assert "at 'policyDocument'" in message and "string" in message
    # Without validation (the trail's view of a refused call) constraints are not checked.
    assert bind("iot", "CreateThing", labels={"thingName": "bad name"}, validate=False) == {
        "thingName": "bad name"}


def roundtrip(api_name: str, operation: str, result: dict[str, Any]) -> dict[str, Any]:
    model = CATALOG.services[api_name].operation(operation)
    response = serialize_output(model, result)
    parsed = create_parser("rest-json").parse(
        {"status_code": response.status, "headers": dict(response.headers),
         "body": response.body}, model.output_shape)
    parsed.pop("ResponseMetadata", None)
    return dict(parsed)


def test_outputs_parse_back_with_botocore() -> None:
    created = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    thing_type = {"thingTypeName": "t", "thingTypeArn": "arn", "thingTypeId": "id",
                  "thingTypeProperties": {"searchableAttributes": ["a"]},
                  "thingTypeMetadata": {"deprecated": False, "creationDate": created}}
    assert roundtrip("iot", "DescribeThingType", thing_type) == thing_type
    retained = {"topic": "a/b", "payload": b"\x00\xff", "qos": 1,
                "lastModifiedTime": 1_700_000_000_123, "userProperties": b'[{"k":"v"}]'}
    assert roundtrip("iot-data", "GetRetainedMessage", retained) == retained
    assert roundtrip("iot", "ListThings", {"things": [], "nextToken": "tok"}) == {
        "things": [], "nextToken": "tok"}
    body = serialize_output(CATALOG.services["iot"].operation("DescribeThingType"),
                            thing_type).body
    assert json.loads(body)["thingTypeMetadata"]["creationDate"] == 1714979289.123


def test_output_mistakes_are_bugs() -> None:
    operation = IOT.operation("CreateThing")
    with pytest.raises(TypeError):
        serialize_output(operation, {"thingname": "typo"})
    with pytest.raises(TypeError):
        serialize_output(IOT.operation("DescribeThingType"),
                         {"thingTypeMetadata": {"creationDate": datetime(2024, 1, 1)}})
    with pytest.raises(TypeError):
        serialize_output(IOT.operation("DescribeThing"), {"version": "1"})


def test_errors_parse_back_with_botocore() -> None:
    error = ApiError("ResourceAlreadyExistsException", 409, "Thing t already exists",
                     {"resourceId": "t", "resourceArn": "arn:aws:iot:us-east-1:1:thing/t"})
    response = serialize_error(error)
    operation = IOT.operation("CreateThing")
    parsed = create_parser("rest-json").parse(
        {"status_code": response.status, "headers": dict(response.headers),
         "body": response.body}, operation.output_shape)
    assert parsed["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert parsed["Error"]["Message"] == "Thing t already exists"
    assert response.status == 409
    assert json.loads(response.body)["resourceArn"] == "arn:aws:iot:us-east-1:1:thing/t"
