"""A node's batch in the message stream is confirmed by coming back through the node's
own reading of the stream, on the machine's NATS (JetStream): no acknowledgement per
batch. One that does not come back (the reading stopped) is sent again with the stream's
acknowledgement, stored once (JetStream drops the duplicate by its id), and the
acknowledgements waiting for it go."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path

from bastion.broker import Broker, GroupCommit, Message, encode_message
from bastion.cluster._stream import CONFIRM_WAIT, MessageStream
from bastion.sessions import SqlSessionRecords
from bastion.store import Store

NATS_URL = "nats://127.0.0.1:4222"


async def _stored(js: object, stream: str) -> int:
    info = await js.stream_info(stream)  # type: ignore[attr-defined]
    return int(info.state.messages)


def _scenario(tmp_path: Path, stop_reading: bool) -> tuple[float, int, int]:
    """Send one QoS 1 message through a node's stream; returns how long until the journal
    commit it held became durable, how many stream messages hold it, and how many
    batches the node counts as published."""

    async def run() -> tuple[float, int, int]:
        import nats

        name = f"t{uuid.uuid4().hex[:12]}"
        nc = await nats.connect(NATS_URL)
        store = Store.open(f"sqlite:///{tmp_path / 'j.db'}")
        commit = GroupCommit(SqlSessionRecords(store.engine), Broker().clock,
                             asyncio.get_running_loop())
        broker = Broker()
        stream = MessageStream(nc, name, "node-1", broker, broker.clock, commit, None,
                               max_age=600.0, max_bytes=1 << 20)
        try:
            await stream.start()
            if stop_reading:
                await stream._subscription.unsubscribe()
            message = Message("plant/line-1", b"21.5", 1, False)
            started = time.monotonic()
            stream.send(message, encode_message(message, broker.clock))
            number = commit.pending()
            assert number is not None  # the gathering commit is held for the stream
            durable = asyncio.get_running_loop().create_future()
            commit.when_durable(number, lambda: durable.set_result(time.monotonic()))
            done = await asyncio.wait_for(durable, CONFIRM_WAIT + 10)
            await asyncio.sleep(0.2)
            return done - started, await _stored(nc.jetstream(), stream.stream), \
                stream.published
        finally:
            await stream.close()
            await commit.close()
            store.close()
            with contextlib.suppress(Exception):  # nothing to drop
                await nc.jetstream().delete_stream(f"{name}_msgs")
            await nc.close()

    return asyncio.run(run())


def test_a_batch_coming_back_confirms_it(tmp_path: Path) -> None:
    waited, stored, published = _scenario(tmp_path, stop_reading=False)
    assert waited < CONFIRM_WAIT / 2  # confirmed by reading it back, not by a resend
    assert (stored, published) == (1, 1)


def test_a_batch_that_does_not_come_back_is_sent_again_and_stored_once(
        tmp_path: Path) -> None:
    waited, stored, published = _scenario(tmp_path, stop_reading=True)
    assert CONFIRM_WAIT <= waited < CONFIRM_WAIT + 5  # resent, acknowledged, released
    assert (stored, published) == (1, 1)  # the resend was a duplicate: dropped
