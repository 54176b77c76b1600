"""Rollout rate and abort criteria: pure arithmetic over counts and times.

Theory of operation
-------------------
**Rollout.** A job with a rollout configuration releases its executions in one-minute
windows. The window opens with the first release and lasts 60 seconds; inside it at most
*rate* executions are released. The rate is ``maximumPerMinute`` for a constant rollout.
For an exponential rollout it starts at ``baseRatePerMinute`` and is multiplied by
``incrementFactor`` each time another ``numberOfNotifiedThings`` executions have been
released (or another ``numberOfSucceededThings`` have succeeded), rounded down, and
capped by ``maximumPerMinute`` when both are given (and by AWS's 1000 per minute).

**Abort.** An execution counts as *executed* once its device brought it to an end
(``SUCCEEDED``, ``FAILED``, ``REJECTED`` or ``TIMED_OUT``). A criterion is met when at least
``minNumberOfExecutedThings`` executions were executed and the failures of its type make
at least ``thresholdPercentage`` % of them. The first criterion met cancels the job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ._configs import MAX_RATE_PER_MINUTE
from ._model import (
    EXECUTED_STATUSES,
    AbortConfig,
    AbortCriterion,
    ExecutionStatus,
    RolloutConfig,
)

WINDOW: Final = timedelta(minutes=1)


def rollout_rate(config: RolloutConfig, *, notified: int, succeeded: int) -> int:
    """Executions per minute allowed now.

    :param notified: executions released so far.
    :param succeeded: executions that succeeded so far.
    """
    cap = config.maximum_per_minute or MAX_RATE_PER_MINUTE
    rate = config.exponential_rate
    if rate is None:
        return cap
    if rate.notified_things is not None:
        steps = notified // rate.notified_things
    else:
        steps = succeeded // (rate.succeeded_things or 1)
    # Stop multiplying once the cap is reached (the power would overflow a float).
    value = float(rate.base_rate_per_minute)
    for _ in range(steps):
        if value >= cap:
            break
        value *= rate.increment_factor
    return max(1, min(cap, math.floor(value + 1e-9)))


@dataclass(frozen=True, slots=True)
class Release:
    """How many executions may be released now, and the window after releasing them."""

    count: int
    window_start: datetime
    window_count: int


def release(config: RolloutConfig, *, window_start: datetime | None, window_count: int,
            notified: int, succeeded: int, waiting: int, now: datetime) -> Release:
    """How many of ``waiting`` executions to release at ``now``.

    A window older than a minute (or none yet) is replaced by a new one starting now.
    """
    if window_start is None or now - window_start >= WINDOW:
        window_start, window_count = now, 0
    rate = rollout_rate(config, notified=notified, succeeded=succeeded)
    count = max(0, min(waiting, rate - window_count))
    return Release(count, window_start, window_count + count)


def next_window(window_start: datetime | None, now: datetime) -> datetime:
    """When the current window ends (``now`` when there is none)."""
    return now if window_start is None else window_start + WINDOW


def abort_criterion_met(config: AbortConfig, counts: Mapping[ExecutionStatus, int]
                        ) -> AbortCriterion | None:
    """The first criterion of ``config`` the execution ``counts`` meet, if any."""
    executed = sum(counts.get(status, 0) for status in EXECUTED_STATUSES)
    for criterion in config.criteria:
        if executed < criterion.min_executed_things or executed == 0:
            continue
        failures = sum(counts.get(status, 0) for status in criterion.failure_type.statuses)
        if failures * 100 >= criterion.threshold_percentage * executed:
            return criterion
    return None
