"""Releasing a client id in the session registry, on the machine's NATS (JetStream): the
release of a node's own claim is sent without waiting for an answer, yet it removes the
key, and never a claim another node made since."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest

from bastion.cluster._registry import SessionRegistry

NATS_URL = "nats://127.0.0.1:4222"


@pytest.fixture
def cluster() -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name

    async def drop() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):  # nothing to drop
            await nc.jetstream().delete_key_value(f"{name}_sessions")
        await nc.close()

    asyncio.run(drop())


async def _node(name: str, node: str) -> tuple[object, SessionRegistry]:
    import nats

    nc = await nats.connect(NATS_URL)
    registry = SessionRegistry(nc, name, node)

    async def hand_over(client_id: str) -> int:
        return 0

    async def alive(other: str) -> bool:
        return True

    await registry.start(hand_over, lambda client_id, owner: None, alive)
    return nc, registry


async def _owner_after(registry: SessionRegistry, client_id: str, seconds: float) -> str | None:
    """Who owns ``client_id`` once the registry settles (``seconds`` at most)."""
    deadline = time.monotonic() + seconds
    while True:
        owner, _ = await registry.owner(client_id)
        if owner is None or time.monotonic() > deadline:
            return None if owner is None else owner.node
        await asyncio.sleep(0.05)


def test_releases_remove_the_own_claim_and_only_it(cluster: str) -> None:
    async def scenario() -> None:
        nc1, one = await _node(cluster, "node-1")
        nc2, two = await _node(cluster, "node-2")
        try:
            # Many releases at once (connections closing together) cost no round trips
            # and leave no key behind.
            ids = [f"device-{n}" for n in range(300)]
            for client_id in ids:
                await one.claim(client_id)
            received = nc1.stats["in_msgs"]  # type: ignore[attr-defined]
            await asyncio.gather(*(one.release(client_id) for client_id in ids))
            await nc1.flush()  # type: ignore[attr-defined]
            await asyncio.sleep(0.3)
            # What came back: the deletions themselves through node-1's own watch of the
            # bucket, and no answer per release (a lookup and an acknowledgement each).
            assert nc1.stats["in_msgs"] - received < 1.5 * len(ids)  # type: ignore[attr-defined]
            for client_id in ids[::50]:
                assert await _owner_after(one, client_id, 3.0) is None

            # node-1 still believes it holds "roamer" at the revision of its claim when
            # node-2 takes it over: node-1's late release must not delete node-2's claim.
            await one.claim("roamer")
            stale = one._claimed["roamer"]
            previous = await two.claim("roamer")
            assert previous is not None and previous.node == "node-1"
            one._claimed["roamer"] = stale  # its watch has not told it yet
            await one.release("roamer")
            await nc1.flush()  # type: ignore[attr-defined]
            await asyncio.sleep(0.3)
            owner, _ = await two.owner("roamer")
            assert owner is not None and owner.node == "node-2"
        finally:
            for registry, nc in ((one, nc1), (two, nc2)):
                await registry.stop()
                await nc.close()  # type: ignore[attr-defined]

    asyncio.run(scenario())
