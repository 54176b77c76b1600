"""The durable session directory on a real SQLite store, driven through in-memory clients:
acknowledgements wait for the commit, state comes back after a restart exactly, caps say
so. (The ``bastion serve`` kill -9 tests are in ``test_durable_sessions``.)"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from bastion.broker import (
    BrokerLimits,
    DurableSessionDirectory,
    GroupCommit,
    Op,
    Snapshot,
    StoredDelivery,
)
from bastion.mqtt import (
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
    Will,
)
from bastion.sessions import SqlSessionRecords
from bastion.store import Store
from support.broker_pair import BrokerPair


class GatedRecords:
    """The real SQL records, with a gate the test opens: a commit waits for it."""

    def __init__(self, records: SqlSessionRecords) -> None:
        self.records = records
        self.gate = threading.Event()
        self.gate.set()
        self.failures = 0  # the next commits that fail (a locked or full disk)

    def load(self, per_session: int) -> Snapshot:
        return self.records.load(per_session)

    def apply(self, ops: Sequence[Op]) -> None:
        self.gate.wait(10)
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.records.apply(ops)

    def page(self, client_id: str, after_seq: int, limit: int) -> list[StoredDelivery]:
        return self.records.page(client_id, after_seq, limit)

    def close(self) -> None:
        self.records.close()


Scenario = Callable[[BrokerPair, GroupCommit, GatedRecords], Awaitable[None]]


def run_durable(path: Path, scenario: Scenario, *, limits: BrokerLimits | None = None,
                crash: bool = False) -> None:
    """``scenario`` on a broker whose directory journals to the SQLite file ``path`` (what
    an earlier run left there is restored first). ``crash``: at the end, nothing more is
    written (no clean shutdown, whose disconnects would be journaled)."""

    async def main() -> None:
        store = Store.open(f"sqlite:///{path}")
        records = GatedRecords(SqlSessionRecords(store.engine))
        pair = BrokerPair(limits=limits, directory=DurableSessionDirectory)
        directory = pair.broker.directory
        assert isinstance(directory, DurableSessionDirectory)
        commit = GroupCommit(records, pair.clock, asyncio.get_running_loop())
        directory.open_journal(commit)
        snapshot = await asyncio.to_thread(records.load, pair.broker.limits.max_queued_messages)
        await pair.broker.resume_stored(directory.restore(snapshot))
        try:
            await scenario(pair, commit, records)
        finally:
            records.gate.set()
            if crash:
                await commit.close()
                directory.commit = None  # nothing after this point reaches the store
                await pair.broker.close()
            else:
                await pair.broker.close()
                await commit.close()
            store.close()

    asyncio.run(main())


def test_a_puback_waits_for_the_commit_and_keeps_its_order(tmp_path: Path) -> None:
    async def scenario(pair: BrokerPair, commit: GroupCommit, records: GatedRecords) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600)
        await sub.subscribe("d/#", 1)
        sub.drop()
        await pair.settle()
        pub = await pair.connect("pub")
        records.gate.clear()  # the next commit waits
        pub.send(Publish("d/1", b"one", 1, packet_id=1))  # durable before its PUBACK
        await pair.settle(durable=False)
        pub.send(Publish("x/1", b"other", 1, packet_id=2))  # no write, yet after it
        await pair.settle(durable=False)
        assert pub.packets() == []
        records.gate.set()
        await pair.settle()
        assert [p.packet_id for p in pub.take(Puback)] == [1, 2]

    run_durable(tmp_path / "a.db", scenario)


def test_an_online_persistent_subscriber_that_keeps_up_costs_no_rows(tmp_path: Path) -> None:
    async def scenario(pair: BrokerPair, commit: GroupCommit, records: GatedRecords) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600)
        await sub.subscribe("d/#", 1)
        pub = await pair.connect("pub")
        before = commit.ops_written
        records.gate.clear()  # one commit in progress: the rest gathers behind it
        for n in range(50):
            pub.send(Publish("d/t", bytes([n]), 1, packet_id=n + 1))
            await pair.settle(durable=False)
            sub.send(*(Puback(m.packet_id or 0) for m in sub.messages()))
            await pair.settle(durable=False)
        records.gate.set()
        await pair.settle()
        assert len(pub.take(Puback)) == 50
        # Stored and acknowledged within one gathering: neither was written (the first
        # delivery may have gone out in the commit that was in progress).
        assert commit.ops_written - before <= 2

    run_durable(tmp_path / "b.db", scenario)


def test_a_stream_position_alone_is_not_a_database_write(tmp_path: Path) -> None:
    # A cluster node holds a commit for every loop step that streams a QoS 1 message and
    # notes its position in the stream for every batch it reads. Those commits hold
    # nothing else: none of them may cost a database write (they used to, one per loop
    # step). The position goes with the next change to a session, or when asked for.
    async def scenario(pair: BrokerPair, commit: GroupCommit, records: GatedRecords) -> None:
        def stored() -> int | None:
            return records.records.stream_cursor("node-1")

        await pair.settle()
        commits = commit.commits
        writes = commit.ops_written
        for seq in range(1, 21):
            hold = commit.hold()
            commit.note_cursor("node-1", seq)
            commit.release(hold)
            await pair.settle()
        assert commit.commits - commits >= 20  # every hold made its commit, all done
        assert commit.ops_written == writes  # and none of them wrote anything
        assert await asyncio.to_thread(stored) is None
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600)
        await sub.subscribe("d/#", 1)  # a change to a session: the position goes with it
        await pair.settle()
        assert await asyncio.to_thread(stored) == 20
        commit.note_cursor("node-1", 21, write=True)  # asked for (once a second)
        await pair.settle()
        assert await asyncio.to_thread(stored) == 21

    run_durable(tmp_path / "p.db", scenario)


def test_everything_a_session_had_comes_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    will = Will("w/sub", b"gone", 1, False, Properties(will_delay_interval=30))

    async def before(pair: BrokerPair, commit: GroupCommit, records: GatedRecords) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600, will=will)
        assert isinstance(await sub.subscribe("d/#", 2), Suback)
        await sub.subscribe("e/+", 1)
        pub = await pair.connect("pub")
        for n in range(3):
            await pub.publish("d/t", bytes([n]), qos=2)
        await commit.drain()  # a PUBREC leaves once its message is durable
        recs = pub.take(Pubrec)
        for _ in range(100):  # and the last one's acknowledgement a loop turn later
            if len(recs) == 3:
                break
            await asyncio.sleep(0.01)
            recs += pub.take(Pubrec)
        assert [p.packet_id for p in recs] == [1, 2, 3]
        got = sub.messages()
        assert [m.payload for m in got] == [b"\x00", b"\x01", b"\x02"]
        sub.send(Pubrec(got[0].packet_id or 0))   # the first reaches the PUBREL step
        await pair.settle()
        assert [p.packet_id for p in sub.take(Pubrel)] == [got[0].packet_id]
        # An inbound QoS 2 message from the subscriber itself, waiting for its PUBREL.
        sub.send(Publish("f/x", b"mine", 2, packet_id=77))
        await pair.settle()
        assert [p.packet_id for p in sub.take(Pubrec)] == [77]
        await pub.publish("r/state", b"on", qos=1, retain=True)
        pub.take(Puback)
        # Bastion dies with the subscriber connected: nothing more is written.

    async def after(pair: BrokerPair, commit: GroupCommit, records: GatedRecords) -> None:
        broker = pair.broker
        session = broker.sessions["sub"]
        assert set(session.subscriptions) == {"d/#", "e/+"}
        assert broker.retained.get("r/state") is not None
        assert session.pending_will is not None  # it was live: its will waits its delay
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600)
        assert sub.connack.session_present
        resent = sub.packets()
        # PUBREL for the first (it had reached that step), then the other two with DUP and
        # their packet ids.
        assert isinstance(resent[0], Pubrel)
        publishes = [p for p in resent if isinstance(p, Publish)]
        assert [(p.payload, p.dup, p.qos) for p in publishes] == [
            (b"\x01", True, 2), (b"\x02", True, 2)]
        sub.send(Pubrel(77))  # the inbound id is still known: PUBCOMP success
        await pair.settle()
        assert sub.take(Pubcomp) == [Pubcomp(77, ReasonCode.SUCCESS)]
        late = await pair.connect("late")
        late.send(Subscribe(1, (Subscription("r/#", 1),)))
        await pair.settle()
        assert [p.payload for p in late.packets() if isinstance(p, Publish)] == [b"on"]

    run_durable(path, before, crash=True)
    run_durable(path, after)


def test_a_persistent_sessions_cap_drops_counts_and_logs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    limits = BrokerLimits(max_inflight_messages=2, max_queued_messages=3,
                          max_stored_messages=5)

    async def scenario(pair: BrokerPair, commit: GroupCommit, records: GatedRecords) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600)
        await sub.subscribe("d/#", 1)
        sub.drop()
        await pair.settle()
        pub = await pair.connect("pub")
        with caplog.at_level(logging.WARNING, "bastion.broker"):
            for n in range(8):
                await pub.publish("d/t", bytes([n]), qos=1)
        assert len(pub.take(Puback)) == 8
        session = pair.broker.sessions["sub"]
        assert (len(session.queue or ()), session.spilled, session.dropped) == (3, 2, 3)
        assert pair.broker.stats.queue_full_drops == 3
        assert "client 'sub': queue full" in caplog.text
        # All five kept come back in order (three from memory, two from the store).
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600)
        got: list[bytes] = []
        for _ in range(5):
            messages = sub.messages()
            got.extend(m.payload for m in messages)
            await sub.ack(*messages)
            if len(got) == 5:
                break
        assert got == [bytes([n]) for n in range(5)]

    run_durable(tmp_path / "d.db", scenario, limits=limits)


def test_the_retained_cap_answers_quota_exceeded() -> None:
    async def scenario(pair: BrokerPair) -> None:
        v5 = await pair.connect("v5")
        for topic in ("r/1", "r/2", "r/3", "r/1"):
            await v5.publish(topic, b"x", qos=1, retain=True)
        kept = ReasonCode.NO_MATCHING_SUBSCRIBERS  # kept; nobody subscribes yet
        assert [p.reason_code for p in v5.take(Puback)] == [
            kept, kept, ReasonCode.QUOTA_EXCEEDED, kept]  # replacing one kept is fine
        assert pair.broker.stats.retained_refused == 1
        assert sorted(pair.broker.retained.topics()) == ["r/1", "r/2"]
        # MQTT 3.1.1 cannot be told: routed, not kept, counted.
        sub = await pair.connect("sub")
        await sub.subscribe("r/4", 0)
        old = await pair.connect("old", version=4)
        await old.publish("r/4", b"y", qos=1, retain=True)
        assert len(old.take(Puback)) == 1
        assert [m.payload for m in sub.messages()] == [b"y"]
        assert pair.broker.retained.get("r/4") is None
        assert pair.broker.stats.retained_refused == 2

    from support.broker_pair import run

    run(scenario, limits=BrokerLimits(max_retained_messages=2))


def test_a_failed_commit_is_retried_and_nothing_is_acknowledged_before(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(pair: BrokerPair, commit: GroupCommit, records: GatedRecords) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=3600)
        await sub.subscribe("d/#", 1)
        sub.drop()
        await pair.settle()
        pub = await pair.connect("pub")
        records.failures = 2
        with caplog.at_level(logging.ERROR, "bastion.broker.durable"):
            pub.send(Publish("d/1", b"one", 1, packet_id=1))
            await pair.settle(durable=False)
            assert pub.packets() == []  # the commit failed: no PUBACK
            await pair.settle()  # retried (twice) until it succeeded
        assert pub.take(Puback) == [Puback(1)]
        assert commit.failures == 2
        assert "commit of 1 changes failed; retrying" in caplog.text

    run_durable(tmp_path / "e.db", scenario)
