"""The rule service over the store, on SQLite and PostgreSQL: rules, destinations and the
confirmation handshake, and the events the engine reloads on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from bastion.account import Account
from bastion.rules import (
    ConfirmationRequest,
    RuleConflictError,
    RuleExistsError,
    RuleService,
    SqlParseError,
    TopicRuleChanged,
    TopicRuleDestinationChanged,
    UnknownRuleError,
)
from bastion.store import Store, TopicRuleRow
from support.clock import ManualClock

PAYLOAD = {"sql": "SELECT * FROM 'a/#'", "actions": [
    {"republish": {"roleArn": "arn:aws:iam::123456789012:role/r", "topic": "b"}}]}


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []
        self.confirmations: list[ConfirmationRequest] = []
        self.sent = threading.Event()

    def publish(self, event: object) -> None:
        self.events.append(event)

    def confirm(self, request: ConfirmationRequest) -> None:
        self.confirmations.append(request)
        self.sent.set()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def service(store: Store, recorder: Recorder) -> RuleService:
    return RuleService(store, account=Account("eu-west-1", "111122223333"),
                       clock=ManualClock(datetime(2030, 1, 2, tzinfo=UTC)),
                       publish=recorder.publish, confirm=recorder.confirm,
                       enable_url=lambda token: f"https://bastion.test/confirmdestination/{token}")


def test_rules_round_trip(service: RuleService, recorder: Recorder) -> None:
    row = service.create_topic_rule("r1", PAYLOAD)
    assert row.topic_pattern == "a/#" and row.sql_version == "2015-10-08"
    assert service.rule_arn("r1") == "arn:aws:iot:eu-west-1:111122223333:rule/r1"
    with pytest.raises(RuleExistsError):
        service.create_topic_rule("r1", PAYLOAD)
    service.set_rule_disabled("r1", True)
    assert service.get_topic_rule("r1").disabled is True
    service.replace_topic_rule("r1", {**PAYLOAD, "sql": "SELECT x FROM 'c'"})
    replaced = service.get_topic_rule("r1")
    assert (replaced.sql, replaced.topic_pattern, replaced.disabled) == \
        ("SELECT x FROM 'c'", "c", False)
    assert [rule.name for rule in service.compiled_rules()] == ["r1"]
    service.delete_topic_rule("r1")
    with pytest.raises(UnknownRuleError):
        service.get_topic_rule("r1")
    assert recorder.events == [TopicRuleChanged("r1")] * 4


def test_bad_sql_is_refused_before_anything_is_stored(service: RuleService,
                                                      recorder: Recorder) -> None:
    with pytest.raises(SqlParseError) as caught:
        service.create_topic_rule("r2", {**PAYLOAD, "sql": "SELECT a FROM 'x' WHERE"})
    assert caught.value.column == 24
    assert service.list_topic_rules() == ([], None)
    assert recorder.events == []


def test_pages_and_filters(service: RuleService) -> None:
    for index in range(5):
        service.create_topic_rule(f"p{index}", {
            **PAYLOAD, "sql": f"SELECT * FROM '{'odd' if index % 2 else 'even'}'",
            "ruleDisabled": index == 4})
    names: list[str] = []
    token = None
    while True:
        rows, token = service.list_topic_rules(max_results=2, next_token=token)
        names += [row.name for row in rows]
        if token is None:
            break
    assert names == ["p0", "p1", "p2", "p3", "p4"]
    even, _ = service.list_topic_rules(topic="even")
    assert [row.name for row in even] == ["p0", "p2", "p4"]
    enabled_even, _ = service.list_topic_rules(topic="even", disabled=False)
    assert [row.name for row in enabled_even] == ["p0", "p2"]


def test_a_row_that_no_longer_compiles_is_left_out(service: RuleService, store: Store) -> None:
    service.create_topic_rule("good", PAYLOAD)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    with store.transaction() as uow:
        uow.topic_rules.insert(TopicRuleRow(
            name="broken", sql="SELECT FROM", topic_pattern="", description="",
            sql_version="2016-03-23", disabled=False, actions=[], error_action=None,
            created_at=now, last_modified=now))
    assert [rule.name for rule in service.compiled_rules()] == ["good"]


def test_destination_handshake(service: RuleService, recorder: Recorder) -> None:
    row = service.create_destination("https://hooks.example/bastion")
    assert row.status == "IN_PROGRESS"
    assert recorder.sent.wait(5)
    [request] = recorder.confirmations
    arn = service.destination_arn(row.id)
    assert request.body() == {
        "arn": arn, "confirmationToken": row.confirmation_token,
        "enableUrl": f"https://bastion.test/confirmdestination/{row.confirmation_token}",
        "messageType": "DestinationConfirmation"}
    with pytest.raises(RuleExistsError):
        service.create_destination("https://hooks.example/bastion")
    assert service.enabled_destination_urls() == []
    with pytest.raises(UnknownRuleError):
        service.confirm_destination("not-the-token")
    service.confirm_destination(row.confirmation_token)
    assert service.get_destination(arn).status == "ENABLED"
    assert service.enabled_destination_urls() == ["https://hooks.example/bastion"]
    service.update_destination(arn, "DISABLED")
    assert service.enabled_destination_urls() == []
    with pytest.raises(RuleConflictError):
        service.confirm_destination(row.confirmation_token)
    service.update_destination(arn, "ENABLED")
    assert service.get_destination(arn).status == "ENABLED"
    rows, token = service.list_destinations()
    assert [item.id for item in rows] == [row.id] and token is None
    service.delete_destination(arn)
    with pytest.raises(UnknownRuleError):
        service.get_destination(arn)
    assert set(recorder.events) == {TopicRuleDestinationChanged(row.id)}
