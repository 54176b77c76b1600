"""SigV4 and roles at the front door: every refusal as boto3 sees it, and the trail."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session

from .conftest import KEYS, REGION, ApiBastion

Unique = Callable[[str], str]


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = caught.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


def raw(api: ApiBastion, method: str, path: str, *, body: bytes = b"",
        sign_as: tuple[str, str] | None = None, service: str = "iot",
        region: str = REGION) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = AWSRequest(method, api.url + path, data=body)
    if sign_as is not None:
        SigV4Auth(Credentials(*sign_as), service, region).add_auth(request)
    response = URLLib3Session(verify=api.verify).send(request.prepare())
    headers = {name.lower(): value for name, value in response.headers.items()}
    return response.status_code, headers, json.loads(response.content or b"{}")


def test_wrong_secret(api_bastion: ApiBastion) -> None:
    key_id, _ = KEYS["admin"]
    client = api_bastion.client(key=(key_id, "not-the-secret"))
    with pytest.raises(ClientError) as caught:
        client.list_things()
    status, code, message = error_of(caught)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "signature we calculated does not match" in message
    record = api_bastion.trail.records[-1]
    assert (record.outcome, record.caller, record.operation) == ("denied", None, "ListThings")
    assert record.access_key_id == key_id and record.error_code == code


def test_unknown_access_key(api_bastion: ApiBastion) -> None:
    client = api_bastion.client(key=("AKIANOBODY000000000", "whatever"))
    with pytest.raises(ClientError) as caught:
        client.list_things()
    assert error_of(caught)[:2] == (403, "UnrecognizedClientException")


@contextlib.contextmanager
def signing_clock(skew: timedelta) -> Iterator[None]:
    """Make botocore sign as if its clock were off by ``skew`` (pure-Python and CRT
    signers alike)."""
    def skewed(remove_tzinfo: bool = True) -> datetime:
        now = datetime.now(UTC) + skew
        return now.replace(tzinfo=None) if remove_tzinfo else now

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("botocore.auth.get_current_datetime", skewed))
        if importlib.util.find_spec("awscrt") is not None:
            stack.enter_context(mock.patch("botocore.crt.auth.get_current_datetime", skewed))
        yield


def test_stale_and_future_signatures(api_bastion: ApiBastion) -> None:
    client = api_bastion.client()
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        with signing_clock(skew), pytest.raises(ClientError) as caught:
            client.list_things()
        status, code, message = error_of(caught)
        assert (status, code) == (403, "InvalidSignatureException")
        assert message.startswith(("Signature expired", "Signature not yet current"))
    with signing_clock(timedelta(minutes=-4)):
        client.list_things(maxResults=1)


def test_tampered_body_and_header(api_bastion: ApiBastion, unique: Unique) -> None:
    client = api_bastion.client()

    def tamper_body(request: Any, **kwargs: Any) -> None:
        request.body = request.body.replace(b'"a"', b'"b"')

    client.meta.events.register("before-send.iot.CreateThing", tamper_body)
    with pytest.raises(ClientError) as caught:
        client.create_thing(thingName=unique("tampered"),
                            attributePayload={"attributes": {"k": "a"}})
    assert error_of(caught)[:2] == (403, "InvalidSignatureException")
    client.meta.events.unregister("before-send.iot.CreateThing", tamper_body)

    def tamper_header(request: Any, **kwargs: Any) -> None:
        request.headers["Content-Type"] = "application/x-amz-json-1.1"

    client.meta.events.register("before-send.iot.CreatePolicy", tamper_header)
    with pytest.raises(ClientError) as caught:
        client.create_policy(policyName=unique("tampered"), policyDocument="{}")
    assert error_of(caught)[:2] == (403, "InvalidSignatureException")


def test_wrong_signing_name_and_missing_signature(api_bastion: ApiBastion) -> None:
    status, headers, body = raw(api_bastion, "GET", "/things", sign_as=KEYS["admin"],
                                service="s3")
    assert (status, headers["x-amzn-errortype"]) == (403, "InvalidSignatureException")
    assert "Credential should be scoped to correct service" in body["message"]
    status, headers, body = raw(api_bastion, "GET", "/things")
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    assert headers["x-amzn-requestid"]
    # Routes are not revealed to unauthenticated callers.
    status, headers, _ = raw(api_bastion, "GET", "/no/such/route")
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    status, headers, body = raw(api_bastion, "GET", "/no/such/route", sign_as=KEYS["admin"])
    assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")
    # Emulator-only endpoints do not exist in normal mode.
    status, headers, _ = raw(api_bastion, "POST", "/_bastion/reset")
    assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")


def test_signing_name_picks_the_service(api_bastion: ApiBastion) -> None:
    """``/things/x/shadow`` is iot-data's; signed for ``iot`` it matches nothing."""
    status, headers, _ = raw(api_bastion, "GET", "/things/x/shadow", sign_as=KEYS["admin"])
    assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")
    status, headers, body = raw(api_bastion, "GET", "/things/x/shadow", sign_as=KEYS["admin"],
                                service="iotdata")
    assert headers.get("x-amzn-errortype") != "UnknownOperationException", body
    record = api_bastion.trail.records[-1]
    assert (record.service, record.operation) == ("iot-data", "GetThingShadow")


def test_any_region_is_accepted(api_bastion: ApiBastion, unique: Unique) -> None:
    client = api_bastion.client(region="ap-southeast-2")
    name = unique("regional")
    arn = client.create_thing(thingName=name)["thingArn"]
    assert arn.startswith(f"arn:aws:iot:{REGION}:")  # normal mode: the configured region


def test_roles(api_bastion: ApiBastion, unique: Unique) -> None:
    auditor = api_bastion.client(role="auditor")
    operator = api_bastion.client(role="operator")
    name = unique("role")
    with pytest.raises(ClientError) as caught:
        auditor.create_thing(thingName=name)
    status, code, message = error_of(caught)
    assert (status, code) == (403, "AccessDeniedException")
    assert "iot:CreateThing" in message
    denied = api_bastion.trail.records[-1]
    assert denied.outcome == "denied" and denied.operation == "CreateThing"
    assert denied.parameters == {"thingName": name}
    assert denied.caller is not None and denied.caller.role.value == "auditor"
    operator.create_thing(thingName=name)
    allowed = api_bastion.trail.records[-1]
    assert (allowed.outcome, allowed.http_status, allowed.service) == ("allowed", 200, "iot")
    assert allowed.caller is not None and allowed.caller.region == REGION
    assert auditor.describe_thing(thingName=name)["thingName"] == name
    auditor_data = api_bastion.client("iot-data", role="auditor")
    with pytest.raises(ClientError) as caught:
        auditor_data.publish(topic="a/b", payload=b"x")
    assert error_of(caught)[:2] == (403, "AccessDeniedException")
    with pytest.raises(ClientError) as caught:
        auditor.get_registration_code()
    assert error_of(caught)[:2] == (403, "AccessDeniedException")


def test_not_implemented_operations_name_themselves(api_bastion: ApiBastion) -> None:
    client = api_bastion.client()
    with pytest.raises(ClientError) as caught:
        client.list_fleet_metrics()
    status, code, message = error_of(caught)
    assert (status, code) == (400, "NotImplementedException")
    assert message == "iot:ListFleetMetrics is not implemented by Bastion"
    jobs = api_bastion.client("iot-jobs-data")
    with pytest.raises(ClientError) as caught:
        jobs.start_command_execution(
            targetArn="arn:aws:iot:us-east-1:123456789012:thing/t",
            commandArn="arn:aws:iot:us-east-1:123456789012:command/c")
    assert error_of(caught)[1] == "NotImplementedException"
