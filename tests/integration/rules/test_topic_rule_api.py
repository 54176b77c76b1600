"""The topic-rule API through boto3 (SigV4): what AWS answers, in AWS's error shapes, and
the trail of every call."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import RulesBastion

REPUBLISH = {"republish": {"roleArn": "arn:aws:iam::123456789012:role/r", "topic": "out/x"}}


def _payload(sql: str, *actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"sql": sql, "actions": list(actions) or [REPUBLISH], **extra}


def _error(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return (error["Error"]["Code"], error["Error"]["Message"],
            error["ResponseMetadata"]["HTTPStatusCode"])


def test_create_get_replace_delete(rules_bastion: RulesBastion,
                                   unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("crud")
    error_action = {"republish": {"roleArn": "arn:aws:iam::123456789012:role/r",
                                  "topic": "errors/x", "qos": 1}}
    iot.create_topic_rule(ruleName=name, topicRulePayload=_payload(
        "SELECT * FROM 'a/+/b'", description="first", errorAction=error_action,
        awsIotSqlVersion="2016-03-23"))
    got = iot.get_topic_rule(ruleName=name)
    account = rules_bastion.running.app.services.plane.account
    assert got["ruleArn"] == account.arn(f"rule/{name}")
    rule = got["rule"]
    assert rule["ruleName"] == name and rule["sql"] == "SELECT * FROM 'a/+/b'"
    assert rule["description"] == "first" and rule["ruleDisabled"] is False
    assert rule["awsIotSqlVersion"] == "2016-03-23"
    assert rule["actions"] == [REPUBLISH] and rule["errorAction"] == error_action
    created = rule["createdAt"]

    iot.replace_topic_rule(ruleName=name, topicRulePayload=_payload(
        "SELECT a FROM 'c/d'", ruleDisabled=True))
    rule = iot.get_topic_rule(ruleName=name)["rule"]
    assert rule["sql"] == "SELECT a FROM 'c/d'" and rule["ruleDisabled"] is True
    assert rule["awsIotSqlVersion"] == "2015-10-08"  # AWS's default
    assert "errorAction" not in rule and rule["createdAt"] == created

    iot.delete_topic_rule(ruleName=name)
    code, _, status = _error(lambda: iot.get_topic_rule(ruleName=name))
    assert (code, status) == ("UnauthorizedException", 401)


def test_refusals_in_aws_error_shapes(rules_bastion: RulesBastion,
                                      unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("refused")

    def create(payload: dict[str, Any], rule_name: str = name) -> Callable[[], Any]:
        return lambda: iot.create_topic_rule(ruleName=rule_name, topicRulePayload=payload)

    code, message, status = _error(create(_payload("SELECT FROM 'a'")))
    assert (code, status) == ("SqlParseException", 400)
    assert "line 1, column 8" in message
    code, message, _ = _error(create(_payload("SELECT a FROM 'a/#/b'")))
    assert code == "SqlParseException" and "topic filter" in message
    code, message, _ = _error(create(_payload("SELECT aws_lambda('arn', *) FROM 'a'")))
    assert code == "InvalidRequestException" and "aws_lambda" in message
    code, message, _ = _error(create(_payload(
        "SELECT * FROM 'a'", {"lambda": {"functionArn": "arn:aws:lambda:x"}})))
    assert code == "InvalidRequestException" and "lambda" in message
    code, message, _ = _error(create(_payload("SELECT * FROM 'a'", {"republish": {
        "roleArn": "arn:aws:iam::123456789012:role/r", "topic": "$aws/things/x/shadow/update"}})))
    assert code == "InvalidRequestException" and "reserved" in message
    code, message, _ = _error(create(_payload("SELECT * FROM 'a'", {"republish": {
        "roleArn": "arn:aws:iam::123456789012:role/r", "topic": "out/${upper(}"}})))
    assert code == "SqlParseException" and "template" in message
    code, message, _ = _error(create(_payload("SELECT (SELECT VALUE n FROM e) AS n FROM 'a'")))
    assert code == "SqlParseException" and "2016-03-23" in message  # 2015-10-08 by default
    code, _, _ = _error(create(_payload("SELECT * FROM 'a'", awsIotSqlVersion="2099-01-01")))
    assert code == "InvalidRequestException"
    code, _, _ = _error(create(_payload("SELECT * FROM 'a'"), "bad-name"))
    assert code == "InvalidRequestException"

    iot.create_topic_rule(ruleName=name, topicRulePayload=_payload("SELECT * FROM 'a'"))
    code, _, status = _error(create(_payload("SELECT * FROM 'a'")))
    assert (code, status) == ("ResourceAlreadyExistsException", 409)
    missing = unique("missing")
    for call in (lambda: iot.get_topic_rule(ruleName=missing),
                 lambda: iot.delete_topic_rule(ruleName=missing),
                 lambda: iot.enable_topic_rule(ruleName=missing),
                 lambda: iot.disable_topic_rule(ruleName=missing),
                 lambda: iot.replace_topic_rule(ruleName=missing,
                                                topicRulePayload=_payload("SELECT * FROM 'a'"))):
        assert _error(call)[0] == "UnauthorizedException"
    iot.delete_topic_rule(ruleName=name)


def test_list_by_topic_with_pages(rules_bastion: RulesBastion,
                                  unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    topic = f"listed/{unique('t')}/+"
    names = sorted(unique("listed") for _ in range(3))
    for index, name in enumerate(names):
        iot.create_topic_rule(ruleName=name, topicRulePayload=_payload(
            f"SELECT * FROM '{topic}'", ruleDisabled=index == 2))
    other = unique("other")
    iot.create_topic_rule(ruleName=other, topicRulePayload=_payload("SELECT * FROM 'x/y'"))
    seen: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"topic": topic, "maxResults": 1}
        if token:
            kwargs["nextToken"] = token
        page = iot.list_topic_rules(**kwargs)
        assert len(page["rules"]) <= 1
        seen += page["rules"]
        token = page.get("nextToken")
        if not token:
            break
    assert [item["ruleName"] for item in seen] == names
    assert {item["topicPattern"] for item in seen} == {topic}
    assert [item["ruleDisabled"] for item in seen] == [False, False, True]
    enabled = iot.list_topic_rules(topic=topic, ruleDisabled=False)["rules"]
    assert [item["ruleName"] for item in enabled] == names[:2]
    everything = [item["ruleName"] for item in iot.list_topic_rules()["rules"]]
    assert set(names) | {other} <= set(everything)
    assert _error(lambda: iot.list_topic_rules(nextToken="garbage"))[0] == \
        "InvalidRequestException"
    for name in [*names, other]:
        iot.delete_topic_rule(ruleName=name)


def test_every_rule_change_is_trailed(rules_bastion: RulesBastion,
                                      unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("trailed")
    before = len(rules_bastion.trail.records)
    iot.create_topic_rule(ruleName=name, topicRulePayload=_payload("SELECT * FROM 'a'"))
    iot.disable_topic_rule(ruleName=name)
    _error(lambda: iot.create_topic_rule(ruleName=name,
                                         topicRulePayload=_payload("SELECT * FROM 'a'")))
    iot.delete_topic_rule(ruleName=name)
    records = [(r.operation, r.outcome, r.error_code)
               for r in rules_bastion.trail.records[before:]]
    assert records == [("CreateTopicRule", "allowed", None),
                       ("DisableTopicRule", "allowed", None),
                       ("CreateTopicRule", "error", "ResourceAlreadyExistsException"),
                       ("DeleteTopicRule", "allowed", None)]


def test_confirming_a_destination(rules_bastion: RulesBastion,
                                  unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    url = f"https://127.0.0.1:9/{unique('nowhere')}"  # the confirmation POST fails: logged
    arn = iot.create_topic_rule_destination(destinationConfiguration={
        "httpUrlConfiguration": {"confirmationUrl": url}})["topicRuleDestination"]["arn"]
    code, _, _ = _error(lambda: iot.create_topic_rule_destination(destinationConfiguration={
        "httpUrlConfiguration": {"confirmationUrl": url}}))
    assert code == "ResourceAlreadyExistsException"
    code, _, status = _error(lambda: iot.confirm_topic_rule_destination(
        confirmationToken="0" * 64))
    assert (code, status) == ("UnauthorizedException", 401)
    # an enableUrl with an unknown token is refused the same way, without SigV4
    request = urllib.request.Request(f"{rules_bastion.url}/confirmdestination/{'1' * 64}")
    context = ssl.create_default_context(cafile=rules_bastion.ca)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=5)
    assert refused.value.code == 401
    refused.value.close()
    service = rules_bastion.running.app.services.rules
    token = service.get_destination(arn).confirmation_token  # what the endpoint was sent
    iot.confirm_topic_rule_destination(confirmationToken=token)
    assert iot.get_topic_rule_destination(arn=arn)["topicRuleDestination"]["status"] == \
        "ENABLED"
    iot.update_topic_rule_destination(arn=arn, status="DISABLED")
    code, _, status = _error(lambda: iot.confirm_topic_rule_destination(
        confirmationToken=token))
    assert (code, status) == ("ConflictingResourceUpdateException", 409)
    iot.delete_topic_rule_destination(arn=arn)
    assert _error(lambda: iot.get_topic_rule_destination(arn=arn))[0] == \
        "UnauthorizedException"
    operations = [record.operation for record in rules_bastion.trail.records
                  if record.operation == "ConfirmTopicRuleDestination"]
    assert len(operations) >= 4
