"""Detect mitigation actions tasks without a broker: which violations a task picks,
statistics and statuses, cancellation between executions, idempotent starts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bastion.account import Account
from bastion.defender.detect import (
    ActionOutcome,
    Datapoint,
    DetectMitigationTasks,
    DetectService,
    DetectTaskStatus,
    ExecutionStatus,
    InvalidRequestError,
    MetricValue,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    TargetViolation,
)
from support.clock import ManualClock

ACCOUNT = Account("us-east-1", "123456789012")
PREFIX = "arn:aws:iot:us-east-1:123456789012:"
THINGS = ("a", "b", "c")


def _behavior(name: str, limit: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "metric": "aws:num-messages-sent",
            "criteria": {"comparisonOperator": "less-than", "value": {"count": limit},
                         "consecutiveDatapointsToClear": 1}, **extra}


def _setup(outcome: ExecutionStatus = ExecutionStatus.SUCCESSFUL,
           run: Callable[[Callable[[], None]], None] | None = None
           ) -> tuple[DetectService, DetectMitigationTasks, list[tuple[str, str, str]], ManualClock]:
    clock = ManualClock(datetime.fromtimestamp(1000, UTC))
    service = DetectService(membership=lambda t: (True, frozenset({"fleet"})),
                            account=ACCOUNT, clock=clock)
    service.create_security_profile(
        "sp", behaviors=[_behavior("msgs", 5), _behavior("quiet", 3, suppressAlerts=True)],
        now=0)
    service.attach("sp", PREFIX + "thinggroup/fleet")
    applied: list[tuple[str, str, str]] = []

    def apply(task_id: str, violation: TargetViolation, action: str) -> ActionOutcome:
        applied.append((task_id, violation.thing_name, action))
        return ActionOutcome(outcome, None if outcome is ExecutionStatus.SUCCESSFUL
                             else "ResourceNotFoundException")
    tasks = DetectMitigationTasks(service, apply, action_exists=lambda n: n in {"q", "r"},
                                  **({} if run is None else {"run": run}))
    return service, tasks, applied, clock


def _send(service: DetectService, clock: ManualClock, counts: dict[str, int]) -> None:
    clock.advance(60)
    service.ingest([Datapoint(t, "aws:num-messages-sent", MetricValue(count=c), clock.time(),
                              None, True) for t, c in counts.items()], clock.time())


def test_profile_target_picks_unsuppressed_violations_and_counts_actions() -> None:
    service, tasks, applied, clock = _setup()
    _send(service, clock, {"a": 9, "b": 4, "c": 1})  # a: msgs+quiet, b: quiet only
    tasks.start("t1", target={"securityProfileName": "sp"}, actions=["q", "r"],
                client_request_token="tok")
    task = tasks.describe("t1")
    assert task.status is DetectTaskStatus.SUCCESSFUL
    assert (task.executed, task.skipped, task.failed) == (2, 0, 0)
    assert applied == [("t1", "a", "q"), ("t1", "a", "r")]
    tasks.start("t2", target={"securityProfileName": "sp", "behaviorName": "quiet"},
                actions=["q"], client_request_token="tok", include_suppressed=True)
    assert sorted(t for _, t, _ in applied[2:]) == ["a", "b"]
    executions = tasks.list_executions(task_id="t2", thing_name="b")
    assert [e.status for e in executions] == [ExecutionStatus.SUCCESSFUL]


def test_only_active_range_and_violation_ids() -> None:
    service, tasks, applied, clock = _setup()
    _send(service, clock, {"a": 9})
    first = clock.time()
    [old] = [v.violation_id for v in service.list_active_violations()
             if v.behavior.name == "msgs"]
    _send(service, clock, {"a": 1})  # a's alarm clears
    _send(service, clock, {"b": 9})
    tasks.start("active", target={"securityProfileName": "sp"}, actions=["q"],
                client_request_token="x", only_active=True)
    assert [t for _, t, _ in applied] == ["b"]
    tasks.start("range", target={"securityProfileName": "sp"}, actions=["q"],
                client_request_token="x", occurrence_range=(first - 1, first + 1))
    assert [t for _, t, _ in applied[1:]] == ["a"]
    tasks.start("ids", target={"violationIds": [old]}, actions=["q"],
                client_request_token="x")
    assert [e.violation_id for e in tasks.list_executions(task_id="ids")] == [old]
    assert [t.task_id for t in tasks.list_tasks(0, clock.time())] == ["active", "range", "ids"]
    assert tasks.list_tasks(clock.time() + 1, clock.time() + 2) == []


def test_failed_actions_fail_the_task() -> None:
    service, tasks, _, clock = _setup(ExecutionStatus.FAILED)
    _send(service, clock, {"a": 9})
    tasks.start("t", target={"securityProfileName": "sp"}, actions=["q"],
                client_request_token="x")
    task = tasks.describe("t")
    assert task.status is DetectTaskStatus.FAILED and task.failed == 1
    assert tasks.list_executions(task_id="t")[0].error_code == "ResourceNotFoundException"


def test_cancel_stops_a_task_in_progress() -> None:
    held: list[Callable[[], None]] = []
    service, tasks, applied, clock = _setup(run=held.append)
    _send(service, clock, {"a": 9, "b": 9})
    tasks.start("t", target={"securityProfileName": "sp"}, actions=["q"],
                client_request_token="x")
    assert tasks.describe("t").status is DetectTaskStatus.IN_PROGRESS
    tasks.cancel("t")
    held.pop()()
    assert tasks.describe("t").status is DetectTaskStatus.CANCELED
    assert applied == []
    with pytest.raises(InvalidRequestError):
        tasks.cancel("t")
    with pytest.raises(ResourceNotFoundError):
        tasks.cancel("nope")


@pytest.mark.parametrize(("target", "actions", "error"), [
    ({}, ["q"], InvalidRequestError),
    ({"behaviorName": "msgs"}, ["q"], InvalidRequestError),
    ({"violationIds": ["v"], "securityProfileName": "sp"}, ["q"], InvalidRequestError),
    ({"securityProfileName": "sp"}, [], InvalidRequestError),
    ({"securityProfileName": "sp"}, ["unknown"], InvalidRequestError),
    ({"securityProfileName": "nope"}, ["q"], ResourceNotFoundError),
    ({"securityProfileName": "sp", "behaviorName": "nope"}, ["q"], ResourceNotFoundError),
], ids=["no-target", "behavior-alone", "both", "no-actions", "unknown-action",
        "unknown-profile", "unknown-behavior"])
def test_start_rejects(target: dict[str, Any], actions: list[str],
                       error: type[Exception]) -> None:
    _, tasks, _, _ = _setup()
    with pytest.raises(error):
        tasks.start("t", target=target, actions=actions, client_request_token="x")


def test_start_is_idempotent_per_client_request_token() -> None:
    _, tasks, _, _ = _setup()
    assert tasks.start("t", target={"securityProfileName": "sp"}, actions=["q"],
                       client_request_token="x") == "t"
    assert tasks.start("t", target={"securityProfileName": "sp"}, actions=["q"],
                       client_request_token="x") == "t"
    with pytest.raises(ResourceAlreadyExistsError):
        tasks.start("t", target={"securityProfileName": "sp"}, actions=["q"],
                    client_request_token="other")
    with pytest.raises(InvalidRequestError):
        tasks.start("u", target={"securityProfileName": "sp"}, actions=["q"],
                    client_request_token="x", occurrence_range=(2.0, 1.0))
