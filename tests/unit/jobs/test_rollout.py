"""Rollout rate, release windows and abort criteria: the arithmetic, and configurations
as AWS spells them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.jobs import (
    AbortConfig,
    AbortCriterion,
    ExecutionStatus,
    ExponentialRate,
    FailureType,
    InvalidRequestError,
    RolloutConfig,
    abort_criterion_met,
    abort_from_json,
    abort_to_json,
    release,
    rollout_from_json,
    rollout_rate,
    rollout_to_json,
)

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def exponential(base: int, factor: float, *, notified: int | None = None,
                succeeded: int | None = None, maximum: int | None = None) -> RolloutConfig:
    return RolloutConfig(maximum, ExponentialRate(base, factor, notified, succeeded))


@pytest.mark.parametrize(
    ("config", "notified", "succeeded", "rate"),
    [
        (RolloutConfig(maximum_per_minute=5), 0, 0, 5),
        (RolloutConfig(maximum_per_minute=5), 1000, 1000, 5),
        (exponential(2, 2.0, notified=10), 0, 0, 2),
        (exponential(2, 2.0, notified=10), 9, 0, 2),
        (exponential(2, 2.0, notified=10), 10, 0, 4),
        (exponential(2, 2.0, notified=10), 35, 0, 16),
        (exponential(2, 1.5, notified=10), 20, 0, 4),  # 2 * 1.5 * 1.5 = 4.5 → 4
        (exponential(2, 2.0, succeeded=5), 100, 4, 2),
        (exponential(2, 2.0, succeeded=5), 100, 5, 4),
        (exponential(2, 2.0, notified=1, maximum=50), 100, 0, 50),
        (exponential(2, 5.0, notified=1), 10_000, 0, 1000),  # AWS's ceiling
    ],
    ids=["constant", "constant-later", "exp-start", "exp-before-step", "exp-one-step",
         "exp-three-steps", "exp-rounds-down", "exp-succeeded-before", "exp-succeeded-step",
         "exp-capped-by-maximum", "exp-capped-at-1000"])
def test_rollout_rate(config: RolloutConfig, notified: int, succeeded: int,
                      rate: int) -> None:
    assert rollout_rate(config, notified=notified, succeeded=succeeded) == rate


@given(base=st.integers(1, 1000), factor=st.sampled_from([1.1, 1.5, 2.0, 3.3, 5.0]),
       every=st.integers(1, 50), notified=st.integers(0, 100_000),
       maximum=st.none() | st.integers(1, 1000))
def test_exponential_rate_stays_within_bounds_and_never_falls(
        base: int, factor: float, every: int, notified: int, maximum: int | None) -> None:
    config = exponential(base, factor, notified=every, maximum=maximum)
    rate = rollout_rate(config, notified=notified, succeeded=0)
    cap = maximum or 1000
    assert 1 <= rate <= cap
    assert rate >= min(base, cap)
    assert rollout_rate(config, notified=notified + every, succeeded=0) >= rate


def test_release_windows() -> None:
    config = RolloutConfig(maximum_per_minute=3)
    first = release(config, window_start=None, window_count=0, notified=0, succeeded=0,
                    waiting=10, now=T0)
    assert (first.count, first.window_start, first.window_count) == (3, T0, 3)
    # Same window: nothing more.
    later = T0 + timedelta(seconds=59)
    same = release(config, window_start=first.window_start, window_count=first.window_count,
                   notified=3, succeeded=0, waiting=7, now=later)
    assert (same.count, same.window_start, same.window_count) == (0, T0, 3)
    # A minute on: a new window.
    nxt = T0 + timedelta(minutes=1)
    second = release(config, window_start=T0, window_count=3, notified=3, succeeded=0,
                     waiting=7, now=nxt)
    assert (second.count, second.window_start, second.window_count) == (3, nxt, 3)
    # Fewer waiting than allowed.
    tail = release(config, window_start=None, window_count=0, notified=9, succeeded=0,
                   waiting=1, now=nxt)
    assert tail.count == 1 and tail.window_count == 1


def test_release_raises_the_rate_inside_a_window() -> None:
    config = exponential(2, 2.0, notified=2)
    first = release(config, window_start=None, window_count=0, notified=0, succeeded=0,
                    waiting=100, now=T0)
    assert first.count == 2
    # 2 notified → the rate is now 4: two more in the same window.
    more = release(config, window_start=T0, window_count=2, notified=2, succeeded=0,
                   waiting=98, now=T0 + timedelta(seconds=1))
    assert more.count == 2 and more.window_count == 4


def counts(**by_status: int) -> dict[ExecutionStatus, int]:
    return {ExecutionStatus(name.upper()): n for name, n in by_status.items()}


FAILED_HALF = AbortConfig((AbortCriterion(FailureType.FAILED, 50.0, 4),))


@pytest.mark.parametrize(
    ("config", "observed", "met"),
    [
        (FAILED_HALF, counts(failed=3), False),  # fewer than 4 executed
        (FAILED_HALF, counts(failed=2, succeeded=2), True),
        (FAILED_HALF, counts(failed=1, succeeded=3), False),
        (FAILED_HALF, counts(failed=2, succeeded=2, queued=50, in_progress=9), True),
        (FAILED_HALF, counts(failed=2, rejected=2), True),  # 2 of 4 executed failed
        (FAILED_HALF, counts(failed=1, canceled=5, removed=5, succeeded=2), False),
        (AbortConfig((AbortCriterion(FailureType.ALL, 75.0, 4),)),
         counts(failed=1, rejected=1, timed_out=1, succeeded=1), True),
        (AbortConfig((AbortCriterion(FailureType.TIMED_OUT, 10.0, 1),)),
         counts(failed=9, timed_out=0), False),
        (AbortConfig((AbortCriterion(FailureType.REJECTED, 33.33, 3),)),
         counts(rejected=1, succeeded=2), True),
        (AbortConfig((AbortCriterion(FailureType.REJECTED, 90.0, 1),
                      AbortCriterion(FailureType.FAILED, 10.0, 1))),
         counts(failed=1, succeeded=5), True),
    ],
    ids=["below-minimum", "at-threshold", "below-threshold", "pending-not-counted",
         "other-failures-count-as-executed", "canceled-removed-not-executed", "all-types",
         "timed-out-only", "two-decimal-threshold", "second-criterion"])
def test_abort_criteria(config: AbortConfig, observed: dict[ExecutionStatus, int],
                        met: bool) -> None:
    assert (abort_criterion_met(config, observed) is not None) is met


def test_configs_round_trip_in_aws_spelling() -> None:
    rollout = {"maximumPerMinute": 100, "exponentialRate": {
        "baseRatePerMinute": 5, "incrementFactor": 1.5,
        "rateIncreaseCriteria": {"numberOfSucceededThings": 10}}}
    assert rollout_to_json(rollout_from_json(rollout)) == rollout
    abort = {"criteriaList": [{"failureType": "ALL", "action": "CANCEL",
                               "thresholdPercentage": 12.5,
                               "minNumberOfExecutedThings": 3}]}
    assert abort_to_json(abort_from_json(abort)) == abort
    assert rollout_from_json({}) is None and rollout_from_json(None) is None


@pytest.mark.parametrize("rollout", [
    {"maximumPerMinute": 0},
    {"maximumPerMinute": 1001},
    {"maximumPerMinute": True},
    {"exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 1.0,
                         "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}},
    {"exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 1.25,
                         "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}},
    {"exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 2,
                         "rateIncreaseCriteria": {}}},
    {"exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 2,
                         "rateIncreaseCriteria": {"numberOfNotifiedThings": 1,
                                                  "numberOfSucceededThings": 1}}},
], ids=["zero", "over-1000", "bool", "factor-too-low", "factor-two-decimals",
        "no-criterion", "two-criteria"])
def test_bad_rollout_configs(rollout: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        rollout_from_json(rollout)


@pytest.mark.parametrize("abort", [
    {"criteriaList": []},
    {"criteriaList": [{"failureType": "LOST", "action": "CANCEL", "thresholdPercentage": 1,
                       "minNumberOfExecutedThings": 1}]},
    {"criteriaList": [{"failureType": "ALL", "action": "PAUSE", "thresholdPercentage": 1,
                       "minNumberOfExecutedThings": 1}]},
    {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 101,
                       "minNumberOfExecutedThings": 1}]},
    {"criteriaList": [{"failureType": "ALL", "action": "CANCEL",
                       "thresholdPercentage": 10.999, "minNumberOfExecutedThings": 1}]},
    {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 10,
                       "minNumberOfExecutedThings": 0}]},
], ids=["empty", "bad-type", "bad-action", "over-100", "three-decimals", "zero-things"])
def test_bad_abort_configs(abort: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        abort_from_json(abort)
