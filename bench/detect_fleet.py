"""Detect: metric ingestion and evaluation for a fleet reporting every interval.

Builds a :class:`~bastion.defender.detect.DetectService` (in memory, or on a SQLite store
with ``--store``) with one security profile of four behaviors (two static thresholds,
one statistical p90 over a 600 s window, one port set) targeting all things, then feeds
``--things`` things for ``--intervals`` intervals: per interval the broker-side sample
(6 cloud-side datapoints per thing) plus a device report (listening ports) from every
thing. 1 % of the things misbehave. Prints datapoints per second and the time of one
full interval's evaluation.

Then a burst of device reports (one per thing, ``--burst`` things) is ingested twice on a
fresh service: one ``ingest`` per report (one store transaction each, as reports were
handled before they were coalesced) and in batches of ``--batch`` datapoints (as
:class:`~bastion.reserved.defender.DefenderMetricsTopics` coalesces a burst). Asserts
nothing.

    .venv/bin/python bench/detect_fleet.py [--things 100000] [--intervals 3] [--store]
                                           [--burst 20000] [--batch 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bastion.account import Account
from bastion.defender.detect import Datapoint, DetectService, MetricValue, StoreRecords

ACCOUNT = Account("us-east-1", "123456789012")
PREFIX = "arn:aws:iot:us-east-1:123456789012:"
INTERVAL = 300.0


def profile(service: DetectService) -> None:
    service.create_security_profile("fleet", now=0, behaviors=[
        {"name": "msgs", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 500}}},
        {"name": "auth", "metric": "aws:num-authorization-failures",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}}},
        {"name": "recv-p90", "metric": "aws:num-messages-received",
         "criteria": {"comparisonOperator": "less-than-equals", "durationSeconds": 600,
                      "statisticalThreshold": {"statistic": "p90"}}},
        {"name": "ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22, 443]}}},
    ])
    service.attach("fleet", PREFIX + "all/things")


def interval_points(things: int, at: float) -> list[Datapoint]:
    points: list[Datapoint] = []
    for i in range(things):
        name = f"thing-{i}"
        bad = i % 100 == 0
        for metric, count in (("aws:num-messages-sent", 900 if bad else 20),
                              ("aws:num-messages-received", 5 + i % 7),
                              ("aws:num-authorization-failures", 0),
                              ("aws:num-connection-attempts", 0),
                              ("aws:num-disconnects", 0),
                              ("aws:message-byte-size", 120)):
            points.append(Datapoint(name, metric, MetricValue(count=count), at))
        points.append(Datapoint(name, "aws:listening-tcp-ports",
                                MetricValue(ports=(22, 443, 8080) if bad else (443,)), at))
    return points


def report_points(things: int, at: float, first: int = 0) -> list[list[Datapoint]]:
    """One device report per thing: listening ports, bytes and packets in and out."""
    reports = []
    for i in range(first, first + things):
        name = f"thing-{i}"
        bad = i % 100 == 0
        reports.append([
            Datapoint(name, "aws:listening-tcp-ports",
                      MetricValue(ports=(22, 443, 8080) if bad else (443,)), at),
            Datapoint(name, "aws:all-bytes-in", MetricValue(count=4_000), at),
            Datapoint(name, "aws:all-bytes-out", MetricValue(count=9_000), at),
            Datapoint(name, "aws:all-packets-in", MetricValue(count=40), at),
            Datapoint(name, "aws:all-packets-out", MetricValue(count=60), at)])
    return reports


def new_service(store: bool) -> DetectService:
    records = None
    if store:
        from bastion.store import Store

        path = Path(tempfile.mkdtemp()) / "detect.db"
        records = StoreRecords(Store.open(f"sqlite:///{path}"))
    service = DetectService(membership=lambda thing: (True, frozenset()), account=ACCOUNT,
                            records=records)
    profile(service)
    return service


def burst(store: bool, things: int, batch: int) -> None:
    reports = report_points(things, INTERVAL)
    points = sum(len(r) for r in reports)
    service = new_service(store)
    started = time.perf_counter()
    for report in reports:
        service.ingest(report, INTERVAL)
    one_by_one = time.perf_counter() - started
    service = new_service(store)
    started = time.perf_counter()
    pending: list[Datapoint] = []
    for report in reports:
        pending.extend(report)
        if len(pending) >= batch:
            service.ingest(pending, INTERVAL)
            pending = []
    if pending:
        service.ingest(pending, INTERVAL)
    batched = time.perf_counter() - started
    print(f"report burst: {things:,} reports ({points:,} datapoints): one ingest per report "
          f"{one_by_one:.2f} s ({points / one_by_one:,.0f} datapoints/s); batches of "
          f"{batch:,} datapoints {batched:.2f} s ({points / batched:,.0f} datapoints/s), "
          f"x{one_by_one / batched:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--things", type=int, default=100_000)
    parser.add_argument("--intervals", type=int, default=3)
    parser.add_argument("--store", action="store_true", help="write through to SQLite")
    parser.add_argument("--burst", type=int, default=20_000, help="reports in the burst")
    parser.add_argument("--batch", type=int, default=20_000,
                        help="datapoints per coalesced batch")
    args = parser.parse_args()
    service = new_service(args.store)
    for n in range(1, args.intervals + 1):
        at = n * INTERVAL
        points = interval_points(args.things, at)
        started = time.perf_counter()
        events = service.ingest(points, at)
        service.expire(at)
        took = time.perf_counter() - started
        print(f"interval {n}: {len(points):,} datapoints from {args.things:,} things "
              f"evaluated in {took:.2f} s ({len(points) / took:,.0f} datapoints/s), "
              f"{len(events):,} violation events "
              f"({took / INTERVAL * 100:.1f} % of a {INTERVAL:.0f} s interval)", flush=True)
    if args.burst:
        burst(args.store, args.burst, args.batch)


if __name__ == "__main__":
    main()
