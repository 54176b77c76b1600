"""Micro-benchmark of :meth:`SubscriptionIndex.match`, the broker's per-message routing.

10,000 subscribers, one subscription each, in a mix an AWS IoT fleet produces:

* 60 % devices on their own command topic, ``cmd/{id}`` (exact);
* 20 % shadow listeners, ``$aws/things/{id}/shadow/#`` (wildcard under a literal prefix);
* 10 % fleet dashboards, ``dt/fleet{f}/+/telemetry`` (``+`` mid-filter, 50 fleets);
*  5 % per-device telemetry taps, ``dt/fleet{f}/{id}/#``;
*  5 % ingest workers in shared groups, ``$share/ingest{g}/dt/fleet{f}/#``.

Published topics: 40 % ``cmd/{id}``, 20 % ``$aws/things/{id}/shadow/update``, 40 %
``dt/fleet{f}/{id}/telemetry``. Prints matches per second (``match`` calls) and the routed
subscriptions per second, best of several rounds. Not a test: numbers depend on the host.

Run: ``.venv/bin/python bench/micro_subscriptions.py``
"""

from __future__ import annotations

import random
import time

from bastion.broker._subscriptions import SubscriptionIndex

SUBSCRIBERS = 10_000
FLEETS = 50
TOPIC_SAMPLE = 4_096
CALLS_PER_ROUND = 200_000
ROUNDS = 5


def build_index() -> SubscriptionIndex[str, int]:
    """The routing table of the workload described in the module docstring."""
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    for number in range(SUBSCRIBERS):
        device = f"dev-{number:05d}"
        fleet = number % FLEETS
        kind = number % 20
        if kind < 12:
            topic_filter = f"cmd/{device}"
        elif kind < 16:
            topic_filter = f"$aws/things/{device}/shadow/#"
        elif kind < 18:
            topic_filter = f"dt/fleet{fleet}/+/telemetry"
        elif kind < 19:
            topic_filter = f"dt/fleet{fleet}/{device}/#"
        else:
            topic_filter = f"$share/ingest{number % 10}/dt/fleet{fleet}/#"
        index.add(topic_filter, device, 1)
    return index


def sample_topics(rng: random.Random) -> list[str]:
    """Published topics in the workload's proportions."""
    topics = []
    for _ in range(TOPIC_SAMPLE):
        number = rng.randrange(SUBSCRIBERS)
        device = f"dev-{number:05d}"
        roll = rng.random()
        if roll < 0.4:
            topics.append(f"cmd/{device}")
        elif roll < 0.6:
            topics.append(f"$aws/things/{device}/shadow/update")
        else:
            topics.append(f"dt/fleet{number % FLEETS}/{device}/telemetry")
    return topics


def run_round(index: SubscriptionIndex[str, int], topics: list[str]) -> tuple[float, int]:
    """Match ``CALLS_PER_ROUND`` topics; :returns: elapsed seconds and subscriptions routed."""
    match = index.match
    count = len(topics)
    routed = 0
    start = time.perf_counter()
    for call in range(CALLS_PER_ROUND):
        routed += len(match(topics[call % count]))
    return time.perf_counter() - start, routed


def main() -> None:
    index = build_index()
    topics = sample_topics(random.Random(20240601))
    best_elapsed, routed = min(run_round(index, topics) for _ in range(ROUNDS))
    print(f"subscriptions:        {len(index):,}")
    print(f"match() calls/round:  {CALLS_PER_ROUND:,} (best of {ROUNDS})")
    print(f"matches/s:            {CALLS_PER_ROUND / best_elapsed:,.0f}")
    print(f"routed subs/s:        {routed / best_elapsed:,.0f}")
    print(f"mean fan-out:         {routed / CALLS_PER_ROUND:.2f}")
    print(f"mean latency:         {best_elapsed / CALLS_PER_ROUND * 1e6:.2f} us")


if __name__ == "__main__":
    main()
