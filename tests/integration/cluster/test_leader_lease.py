"""The lease that makes one node the fleet's evaluator, on the machine's NATS (JetStream),
with a short time-to-live: a holder that dies silently is replaced once its entry has run
out, never while it may still act; one that releases it is replaced at once."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from bastion.cluster import LeaderLease, leader_bucket

NATS_URL = "nats://127.0.0.1:4222"
TTL = 2.0
RENEW = 0.2




class Holder:
    """One node's lease, run as a task; records when it gained and lost it."""

    def __init__(self, bucket: object, node: str) -> None:
        self.lease = LeaderLease(bucket, "detect", node, ttl=TTL, renew=RENEW,
                                 monotonic=time.monotonic)
        self.changes: list[str] = []
        self.task = asyncio.get_running_loop().create_task(
            self.lease.run(self._gained, self._lost))

    async def _gained(self) -> None:
        self.changes.append("gained")

    async def _lost(self) -> None:
        self.changes.append("lost")

    async def die(self) -> None:
        """Stop its task without a word (no release), as a killed node."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _until(predicate: object, timeout: float, watch: list[Holder]) -> float:
    """Seconds until ``predicate()``; meanwhile never two holders act at once."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert sum(h.lease.held for h in watch) <= 1, "two holders at once"
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def test_a_silent_holder_is_replaced_once_its_entry_has_run_out(cluster: str) -> None:
    async def scenario() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        try:
            bucket = await leader_bucket(nc, cluster, ttl=TTL)
            a = Holder(bucket, "node-a")
            await _until(lambda: a.lease.held, 5, [a])
            b = Holder(bucket, "node-b")
            await asyncio.sleep(3 * RENEW)
            assert not b.lease.held and b.changes == []
            assert await b.lease.holder() == "node-a"
            await a.die()  # without a word: no release
            took = await _until(lambda: b.lease.held, TTL + 3, [a, b])
            assert took >= TTL - 2 * RENEW  # not before the entry ran out
            assert not a.lease.held
            await _until(lambda: b.changes == ["gained"], 1, [a, b])
            assert await b.lease.holder() == "node-b"
            # A clean stop hands it on within a renewal.
            a = Holder(bucket, "node-a")
            await b.lease.release()
            await b.die()
            assert await _until(lambda: a.lease.held, 3, [a, b]) < 3 * RENEW
            await a.die()
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_a_holder_whose_entry_another_node_overwrote_lets_go(cluster: str) -> None:
    async def scenario() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        try:
            bucket = await leader_bucket(nc, cluster, ttl=TTL)
            a = Holder(bucket, "node-a")
            await _until(lambda: a.lease.held, 5, [a])
            await bucket.put("detect", b"node-z")  # someone else wrote it
            await _until(lambda: a.changes == ["gained", "lost"], 3, [a])
            assert not a.lease.held
            await a.die()
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_the_renewal_must_leave_room_before_the_entry_runs_out() -> None:
    with pytest.raises(ValueError, match="renew"):
        LeaderLease(object(), "detect", "n", ttl=2.0, renew=1.0, monotonic=time.monotonic)


def test_a_closed_lease_is_not_taken_again(cluster: str) -> None:
    async def scenario() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        try:
            bucket = await leader_bucket(nc, cluster, ttl=TTL)
            a = Holder(bucket, "node-a")
            await _until(lambda: a.lease.held, 5, [a])
            await a.lease.close()
            await asyncio.sleep(3 * RENEW)  # renewals go on trying meanwhile
            assert await a.lease.holder() is None
            assert not a.lease.held
            await a.die()
        finally:
            await nc.close()

    asyncio.run(scenario())
