"""Aggregations over the values of one field (GetStatistics, GetCardinality,
GetPercentiles, GetBucketsAggregation): pure functions of the values.

Percentiles interpolate linearly between the closest ranks (AWS computes approximate
percentiles; on a small fleet both give the exact order statistics at 0 and 100).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

DEFAULT_PERCENTS: Final = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
DEFAULT_MAX_BUCKETS: Final = 10


@dataclass(frozen=True, slots=True)
class Statistics:
    """GetStatistics' ``statistics``; everything but ``count`` is ``None`` without
    numeric values."""

    count: int
    average: float | None = None
    sum: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    sum_of_squares: float | None = None
    variance: float | None = None
    std_deviation: float | None = None


def statistics(values: Sequence[float]) -> Statistics:
    """The statistics of ``values`` (the population variance, as AWS reports it)."""
    count = len(values)
    if not count:
        return Statistics(0)
    total = math.fsum(values)
    squares = math.fsum(v * v for v in values)
    mean = total / count
    variance = max(squares / count - mean * mean, 0.0)
    return Statistics(count, mean, total, min(values), max(values), squares, variance,
                      math.sqrt(variance))


def percentiles(values: Sequence[float], percents: Iterable[float]
                ) -> list[tuple[float, float]]:
    """``(percent, value)`` for each percent (none when there are no values)."""
    ordered = sorted(values)
    if not ordered:
        return []
    result: list[tuple[float, float]] = []
    last = len(ordered) - 1
    for percent in percents:
        rank = percent / 100 * last
        below = math.floor(rank)
        above = min(below + 1, last)
        fraction = rank - below
        result.append((percent, ordered[below] + (ordered[above] - ordered[below]) * fraction))
    return result


def buckets(keys: Iterable[str], max_buckets: int) -> list[tuple[str, int]]:
    """The ``max_buckets`` most frequent keys with their counts (ties by key)."""
    counted = Counter(keys)
    ranked = sorted(counted.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:max_buckets]
