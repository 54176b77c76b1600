"""A node publishing faster than NATS takes its messages keeps a bounded backlog: past
its budget the relay asks the broker to hold publishers back, and past ``MAX_BACKLOG``
(publishers it cannot hold) the QoS 0 copies for the other nodes are dropped and counted,
not held in memory; once NATS catches up, copies flow again."""

from __future__ import annotations

import asyncio
from typing import Any

from bastion.broker import Broker, Message
from bastion.cluster import MessageRelay, SubjectCodec
from bastion.cluster._messages import MAX_BACKLOG
from bastion.cluster._stream import MessageStream


class SlowNats:
    """A NATS connection whose publishes wait until ``open`` is set (a server, or a
    network, slower than the node)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.published: list[str] = []

    def jetstream(self) -> Any:
        return None

    async def publish(self, subject: str, data: bytes, headers: Any = None) -> None:
        await self.open.wait()
        self.published.append(subject)


def test_the_backlog_is_bounded_and_drops_are_counted() -> None:
    async def scenario() -> None:
        nc = SlowNats()
        broker = Broker()
        stream = MessageStream(nc, "t", "node-1", broker, broker.clock, None, None,
                               max_age=60.0, max_bytes=1 << 20)
        relay = MessageRelay(nc, nc, SubjectCodec("t.msg"), SubjectCodec("t.ret"), broker,
                             broker.clock, stream)
        for n in range(MAX_BACKLOG + 500):
            relay.send(Message(f"plant/{n}", b"x", 0, False))
            if n % 1000 == 0:
                await asyncio.sleep(0)  # batches leave for NATS, and wait there
        assert relay.dropped == 500
        assert relay.budget.over  # the broker holds publishers back meanwhile
        nc.open.set()
        while len(nc.published) < MAX_BACKLOG:
            await asyncio.sleep(0.01)
        relay.send(Message("plant/after", b"x", 0, False))  # room again
        await asyncio.sleep(0.05)
        assert nc.published[-1].endswith("after") and relay.dropped == 500
        assert relay.sent == MAX_BACKLOG + 1
        assert not relay.budget.over and relay.budget.used == 0

    asyncio.run(asyncio.wait_for(scenario(), 10))
