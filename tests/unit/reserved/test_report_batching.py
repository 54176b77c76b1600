"""Device metrics reports are coalesced: a burst is ingested in batches, not one by one."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from bastion.broker import Broker, Message
from bastion.defender.detect import Datapoint, MetricType
from bastion.reserved.defender import DefenderMetricsTopics
from support.clock import ManualClock


def report(rid: int) -> bytes:
    return json.dumps({"header": {"report_id": rid, "version": "1.0"},
                       "metrics": {"listening_tcp_ports": {"ports": [
                           {"port": 443, "interface": "eth0"}]}}}).encode()


class HeldDetect:
    """Holds the first ingest until released, so the rest of the burst queues up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int) -> None:
        self.batches: list[tuple[list[Datapoint], float]] = []
        self.release = threading.Event()
        self.all_in = asyncio.Event()
        self._loop = loop
        self._expected = expected  # datapoints

    def custom_types(self) -> dict[str, MetricType]:
        return {}

    def ingest(self, points: list[Datapoint], now: float) -> list[Any]:
        self.release.wait(10)
        self.batches.append((list(points), now))
        if sum(len(b) for b, _ in self.batches) == self._expected:
            self._loop.call_soon_threadsafe(self.all_in.set)
        return []


def run_burst(things: int, max_batch: int) -> HeldDetect:
    async def main() -> HeldDetect:
        broker = Broker()
        detect = HeldDetect(asyncio.get_running_loop(), 2 * things)  # ports, their count
        clock = ManualClock(datetime.fromtimestamp(999, UTC), tick=timedelta(seconds=1))
        topics = DefenderMetricsTopics(broker, detect,  # type: ignore[arg-type]
                                       min_period=300, clock=clock,
                                       max_batch=max_batch)
        for i in range(things):
            session: Any = SimpleNamespace(client_id=f"t{i}",
                                           permissions=SimpleNamespace(thing_name=f"t{i}"))
            topics.on_publish(broker, session, Message(
                f"$aws/things/t{i}/defender/metrics/json", report(i), 1, False))
        detect.release.set()
        await asyncio.wait_for(detect.all_in.wait(), 10)
        return detect

    return asyncio.run(main())


def test_a_burst_is_ingested_in_few_batches_in_order() -> None:
    detect = run_burst(50, max_batch=1000)
    assert len(detect.batches) <= 2
    things = [p.thing_name for batch, _ in detect.batches for p in batch]
    assert things == [f"t{i}" for i in range(50) for _ in range(2)]
    assert detect.batches[-1][1] == 1049.0  # the batch's clock is its latest report's
    assert [p.timestamp for p in detect.batches[-1][0]][-1] == 1049.0


def test_batches_respect_max_batch() -> None:
    detect = run_burst(30, max_batch=10)
    assert all(len(batch) <= 10 for batch, _ in detect.batches)
    assert len(detect.batches) >= 6
    assert sum(len(batch) for batch, _ in detect.batches) == 60
