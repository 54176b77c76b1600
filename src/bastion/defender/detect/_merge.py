"""One interval's cloud-side datapoints, measured on several nodes, as one set per thing.

In a cluster a device may be connected to one node at the start of an interval and to
another at its end. Each node samples what it saw, and the evaluator merges the samples of
an interval before evaluating, so a device is evaluated on what it did wherever it was
connected:

* counts (messages sent and received, authorization failures, connection attempts,
  disconnects, dropped messages, and their dimensions) add up;
* ``aws:message-byte-size`` is the mean over all nodes, weighted by the messages each node
  counted (``aws:num-messages-sent`` of the same dimension in the same sample; a weight of
  1 without it);
* ``aws:source-ip-address`` is the union of the addresses;
* ``aws:disconnect-duration`` says the device is away. It is dropped when any node saw
  the device in the interval (a node that saw it leave does not see it come back on
  another node), else the shortest one wins (the latest disconnect).

Anything else (device-side metrics never come through here) keeps the last value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from ._model import Datapoint, MetricValue

BYTE_SIZE: Final = "aws:message-byte-size"
SENT: Final = "aws:num-messages-sent"
SOURCE_IP: Final = "aws:source-ip-address"
DISCONNECT_DURATION: Final = "aws:disconnect-duration"


def merge_samples(samples: Iterable[Sequence[Datapoint]], at: float) -> list[Datapoint]:
    """The datapoints of ``samples`` (each one node's sample of the interval) merged into
    one per (thing, metric, dimension), all stamped ``at``; order: first seen first."""
    merged: dict[tuple[str, str, str | None], Datapoint] = {}
    byte_sizes: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    away: dict[str, Datapoint] = {}
    for sample in samples:
        sent = {(dp.thing_name, dp.dimension): dp.value.count or 0
                for dp in sample if dp.metric == SENT}
        for dp in sample:
            if dp.metric == DISCONNECT_DURATION:
                kept = away.get(dp.thing_name)
                if kept is None or (dp.value.count or 0) < (kept.value.count or 0):
                    away[dp.thing_name] = dp
                continue
            if dp.metric == BYTE_SIZE:
                weight = sent.get((dp.thing_name, dp.dimension), 1) or 1
                byte_sizes.setdefault((dp.thing_name, dp.dimension), []).append(
                    (dp.value.count or 0, weight))
            key = (dp.thing_name, dp.metric, dp.dimension)
            before = merged.get(key)
            merged[key] = Datapoint(dp.thing_name, dp.metric,
                                    dp.value if before is None
                                    else _combine(dp.metric, before.value, dp.value),
                                    at, dp.dimension,
                                    dp.registered if before is None
                                    else before.registered and dp.registered)
    for (thing, dimension), sizes in byte_sizes.items():
        if len(sizes) < 2:
            continue
        total = sum(weight for _, weight in sizes)
        key = (thing, BYTE_SIZE, dimension)
        merged[key] = Datapoint(thing, BYTE_SIZE, MetricValue(
            count=sum(size * weight for size, weight in sizes) // total), at, dimension,
            merged[key].registered)
    seen = {thing for thing, _, _ in merged}
    points = list(merged.values())
    points.extend(Datapoint(dp.thing_name, dp.metric, dp.value, at, dp.dimension,
                            dp.registered)
                  for thing, dp in away.items() if thing not in seen)
    return points


def _combine(metric: str, before: MetricValue, value: MetricValue) -> MetricValue:
    if metric == SOURCE_IP:
        return MetricValue(cidrs=tuple(sorted(set(before.cidrs or ()) | set(value.cidrs or ()))))
    if metric == BYTE_SIZE:
        return value  # weighted once every sample is in (above)
    if before.count is not None and value.count is not None:
        return MetricValue(count=before.count + value.count)
    return value
