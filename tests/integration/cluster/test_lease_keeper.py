"""A node's lease is renewed from a thread of its own, on the machine's NATS (JetStream):
a node whose event loop is busy for longer than the lease allows for a renewal keeps it
(and its sessions); one whose loop has stopped turning lets it run out, so that other
nodes can take its sessions."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest

from bastion.cluster._lease import LeaseKeeper
from bastion.cluster._status import Lease, NodeStatus

NATS_URL = "nats://127.0.0.1:4222"
LEASE = Lease(3.0)  # a renewal every second; fenced after 2 s without one


@pytest.fixture
def cluster() -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name

    async def drop() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):  # nothing to drop
            await nc.jetstream().delete_key_value(f"{name}_nodes")
        await nc.close()

    asyncio.run(drop())


def _status() -> NodeStatus:
    now = time.time()
    return NodeStatus("node-1", "test", now, now, 0, 0)


async def _entry(name: str) -> NodeStatus | None:
    """The node's entry in the heartbeat bucket, as another node reads it."""
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        bucket = await nc.jetstream().key_value(f"{name}_nodes")
        try:
            entry = await bucket.get("node-1")
        except Exception:  # noqa: BLE001 - gone: expired or deleted
            return None
        return NodeStatus.from_json(entry.value or b"")
    finally:
        await nc.close()


def test_a_busy_event_loop_keeps_its_lease(cluster: str) -> None:
    async def scenario() -> None:
        keeper = LeaseKeeper(NATS_URL, cluster, "node-1", LEASE, _status, time.monotonic)
        await keeper.start()
        try:
            blocked = time.monotonic()
            keeper.turned()
            time.sleep(LEASE.seconds * 0.9)  # noqa: ASYNC251 - the loop held for 2.7 s
            # Renewed while the loop was held, more than once: never late by a fence.
            assert keeper.renewed - blocked >= LEASE.heartbeat
            assert time.monotonic() - keeper.renewed < LEASE.fence
            entry = await _entry(cluster)
            assert entry is not None
            assert time.time() - entry.seen < LEASE.heartbeat + 0.5
        finally:
            await keeper.stop()
        assert await _entry(cluster) is None  # a node that stops leaves at once

    asyncio.run(scenario())


def test_a_loop_that_stopped_turning_lets_its_lease_run_out(cluster: str) -> None:
    async def scenario() -> None:
        keeper = LeaseKeeper(NATS_URL, cluster, "node-1", LEASE, _status, time.monotonic)
        await keeper.start()
        try:
            keeper.turned()
            started = time.monotonic()
            # Nobody calls turned() any more: after a whole lease without it the keeper
            # stops renewing, and the entry runs out a lease after its last renewal.
            while await _entry(cluster) is not None:
                assert time.monotonic() - started < 3 * LEASE.seconds, "the lease never ran out"
                await asyncio.sleep(0.25)
            gone = time.monotonic() - started
            assert gone > LEASE.seconds  # not before the loop had been silent a lease
            last = keeper.renewed
            keeper.turned()  # it turns again: the lease is renewed
            deadline = time.monotonic() + 2 * LEASE.heartbeat + 1
            while keeper.renewed == last:
                assert time.monotonic() < deadline, "the lease was not renewed again"
                await asyncio.sleep(0.1)
            assert await _entry(cluster) is not None
        finally:
            await keeper.stop()

    asyncio.run(scenario())


def test_a_keeper_that_never_reached_nats_still_stops(cluster: str) -> None:
    async def scenario() -> None:
        keeper = LeaseKeeper("nats://127.0.0.1:1", cluster, "node-1", LEASE, _status,
                             time.monotonic)
        with pytest.raises(TimeoutError):  # NATS's client retries an unreachable server
            await asyncio.wait_for(keeper.start(), 1.0)
        thread = keeper._thread
        assert thread is not None
        thread.join(5.0)
        assert not thread.is_alive()  # the node's stop is not held up by its lease
        assert keeper.renewed == 0.0

    asyncio.run(scenario())
