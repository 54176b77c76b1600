"""The job execution state machine table: every (from, to, actor) triple."""

from __future__ import annotations

import itertools

import pytest

from bastion.jobs import (
    DEVICE_STATUSES,
    TRANSITIONS,
    Actor,
    ExecutionStatus,
    InvalidRequestError,
    InvalidStateTransitionError,
    JobExecutionState,
    allowed,
    check_transition,
)
from bastion.jobs._states import device_status

Q, P = ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS
S, F, R = ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.REJECTED
T, C, X = ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELED, ExecutionStatus.REMOVED
D, TIMER, OP, FORCE, TARGETING = (Actor.DEVICE, Actor.TIMER, Actor.OPERATOR,
                                  Actor.OPERATOR_FORCE, Actor.TARGETING)

# The allowed transitions, spelled out independently of the implementation's table.
EXPECTED_ALLOWED = {
    (Q, P, D), (Q, S, D), (Q, F, D), (Q, R, D),
    (Q, C, OP), (Q, C, FORCE), (Q, X, TARGETING),
    (P, P, D), (P, S, D), (P, F, D), (P, R, D),
    (P, T, TIMER), (P, C, FORCE),
}


@pytest.mark.parametrize(
    ("current", "new", "actor"),
    list(itertools.product(ExecutionStatus, ExecutionStatus, Actor)),
    ids=lambda v: v.value if hasattr(v, "value") else str(v))
def test_transition_table(current: ExecutionStatus, new: ExecutionStatus,
                          actor: Actor) -> None:
    expected = (current, new, actor) in EXPECTED_ALLOWED
    assert allowed(current, new, actor) is expected
    state = JobExecutionState(current, {"k": "v"}, 7)
    if expected:
        check_transition(state, new, actor)
    else:
        with pytest.raises(InvalidStateTransitionError) as caught:
            check_transition(state, new, actor)
        assert caught.value.execution_state == state
        assert caught.value.mqtt_code == "InvalidStateTransition"
        assert caught.value.http_status == 409


@pytest.mark.parametrize("final", [S, F, R, T, C, X], ids=lambda s: s.value)
def test_final_statuses_are_final(final: ExecutionStatus) -> None:
    assert final.is_terminal
    assert not any(allowed(final, new, actor)
                   for new in ExecutionStatus for actor in Actor)
    with pytest.raises(InvalidStateTransitionError, match="final status"):
        check_transition(JobExecutionState(final, {}, 3), P, D)


def test_pending_statuses_are_not_final() -> None:
    assert not Q.is_terminal and not P.is_terminal


def test_the_table_lists_no_pair_twice_and_no_empty_entry() -> None:
    assert all(TRANSITIONS.values())
    assert {(a, b, actor) for (a, b), actors in TRANSITIONS.items()
            for actor in actors} == EXPECTED_ALLOWED


@pytest.mark.parametrize("status", ["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"])
def test_statuses_a_device_may_report(status: str) -> None:
    assert device_status(status) in DEVICE_STATUSES


@pytest.mark.parametrize("status", ["QUEUED", "CANCELED", "TIMED_OUT", "REMOVED", "DONE",
                                    "succeeded", "", None, 3])
def test_statuses_a_device_may_not_report(status: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        device_status(status)
    assert caught.value.mqtt_code == "InvalidRequest"
    assert caught.value.aws_error_type == "InvalidRequestException"
