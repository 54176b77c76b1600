"""Isolation (each subscriber's queue is its own and bounded; a subscriber that cannot keep
up paces only a publisher that serves nobody else, and only while it makes progress; the
memory budget of all queues holds publishers alike) and revocation (a dropped or
re-authorized principal loses its live session), on an in-memory broker."""

from __future__ import annotations

from bastion.broker import (
    Action,
    AllowAll,
    AuthenticationError,
    BrokerLimits,
    Principal,
    SessionPermissions,
)
from bastion.broker._session import STUCK_AFTER
from bastion.mqtt import Disconnect, Puback, Publish, ReasonCode, Will
from support.broker_pair import BrokerPair, run

SMALL = BrokerLimits(max_inflight_messages=2, max_queued_messages=3)
SMALL_WINDOW = BrokerLimits(max_inflight_messages=2)  # high water 2, low water 0


def test_a_stuck_subscriber_fills_its_own_queue_and_holds_nobody() -> None:
    async def scenario(pair: BrokerPair) -> None:
        stuck = await pair.connect("stuck")
        await stuck.subscribe("f/#", 1)
        healthy = await pair.connect("healthy")
        await healthy.subscribe("f/#", 1)
        pub = await pair.connect("pub")
        for n in range(10):
            await pub.publish("f/t", bytes([n]), qos=1)
            # the healthy subscriber keeps up
            await healthy.ack(*healthy.messages())
        assert len(pub.take(Puback)) == 10  # every publish acknowledged at once
        assert pub.reading  # never held back
        window = stuck.messages()
        assert [m.payload for m in window] == [b"\x00", b"\x01"]  # its window
        # 2 in flight, 3 queued, 5 dropped, counted on the broker and on the session
        broker = pair.broker
        assert broker.stats.queue_full_drops == 5
        session = broker.sessions["stuck"]
        assert session.dropped == 5 and len(session.queue or ()) == 3
        # Acknowledging drains its queue, in order.
        await stuck.ack(*window)
        assert [m.payload for m in stuck.messages()] == [b"\x02", b"\x03"]

    run(scenario, limits=SMALL)


def test_a_backend_publishing_to_many_devices_is_never_held_by_one_of_them() -> None:
    async def scenario(pair: BrokerPair) -> None:
        stuck = await pair.connect("dev-1")
        await stuck.subscribe("cmd/dev-1", 1)
        healthy = await pair.connect("dev-2")
        await healthy.subscribe("cmd/dev-2", 1)
        backend = await pair.connect("backend")
        got: list[bytes] = []
        for n in range(20):  # commands to both, interleaved; dev-1 never acknowledges
            await backend.publish("cmd/dev-1", bytes([n]), qos=1)
            await backend.publish("cmd/dev-2", bytes([n]), qos=1)
            messages = healthy.messages()
            got.extend(m.payload for m in messages)
            await healthy.ack(*messages)
            assert backend.reading
        assert got == [bytes([n]) for n in range(20)]

    run(scenario, limits=SMALL)


def test_a_congested_subscriber_paces_a_publisher_that_serves_only_it() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("f/#", 1)
        pub = await pair.connect("pub")
        for n in range(4):  # 2 in flight, then 2 queued: the high-water mark
            await pub.publish("f/t", bytes([n]), qos=1)
        assert len(pub.take(Puback)) == 4
        assert not pub.reading  # paced: the broker stopped reading it
        held_id = await pub.publish("f/t", b"\x04", qos=1)  # already read: it waits
        assert pub.packets() == []
        first = sub.messages()
        assert [m.payload for m in first] == [b"\x00", b"\x01"]
        await sub.ack(*first)  # the queue drains to the low-water mark
        assert pub.reading
        assert pub.take(Puback) == [Puback(held_id or 0)]
        rest = sub.messages()
        assert [m.payload for m in rest] == [b"\x02", b"\x03"]
        await sub.ack(*rest)
        assert [m.payload for m in sub.messages()] == [b"\x04"]
        assert pair.broker.stats.queue_full_drops == 0  # paced, nothing lost

    run(scenario, limits=SMALL_WINDOW)


def test_a_subscriber_that_makes_no_progress_lets_its_publisher_go() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("f/#", 1)
        pub = await pair.connect("pub")
        for n in range(4):
            await pub.publish("f/t", bytes([n]), qos=1)
        assert not pub.reading
        pair.clock.advance(STUCK_AFTER)  # not one acknowledgement meanwhile: stuck
        await pair.settle()
        assert pub.reading
        for n in range(4, 8):  # its own queue takes these now; nobody waits for it
            await pub.publish("f/t", bytes([n]), qos=1)
        assert pub.reading
        assert len(pub.take(Puback)) == 8
        # Progress again: it may pace its publisher again.
        await sub.ack(*sub.messages())
        assert not pair.broker.sessions["sub"]._stuck

    run(scenario, limits=SMALL_WINDOW)


def test_a_congested_subscriber_that_goes_away_releases_its_publisher() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub", clean_start=False, session_expiry=60)
        await sub.subscribe("f/#", 1)
        pub = await pair.connect("pub")
        for n in range(4):
            await pub.publish("f/t", bytes([n]), qos=1)
        assert not pub.reading
        sub.drop()  # an offline session holds nobody back
        await pair.settle()
        assert pub.reading

    run(scenario, limits=SMALL_WINDOW)


def test_a_slow_reader_paces_its_sole_publisher_only_while_its_socket_moves() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("f/#")
        pub = await pair.connect("pub")
        sub.conn.pause_writing()  # the subscriber's socket is full
        await pub.publish("f/t", b"x")
        assert not pub.reading
        pair.clock.advance(STUCK_AFTER)  # the socket never drained: stuck
        await pair.settle()
        assert pub.reading  # it loses QoS 0 instead
        await pub.publish("f/t", b"y")
        assert pub.reading

    run(scenario)


def test_the_memory_budget_holds_every_publisher_alike_until_queues_drain() -> None:
    budget = BrokerLimits(max_inflight_messages=1, max_queued_messages=100,
                          queue_memory_budget_bytes=40)

    async def scenario(pair: BrokerPair) -> None:
        stuck = await pair.connect("stuck")  # queues everything, acknowledges nothing
        await stuck.subscribe("f/#", 1)
        healthy = await pair.connect("healthy")  # keeps up: nobody is paced for stuck
        await healthy.subscribe("f/#", 1)
        first, second = await pair.connect("pub1"), await pair.connect("pub2")

        async def publish(client: object, topic: str) -> None:
            await client.publish(topic, bytes(10), qos=1)  # type: ignore[attr-defined]
            await healthy.ack(*healthy.messages())

        for _ in range(5):  # 1 in flight, 4 x 10 bytes queued: the budget is full
            await publish(first, "f/a")
        assert first.reading and second.reading
        await publish(second, "f/b")  # over the budget
        await publish(first, "f/a")
        assert not first.reading and not second.reading  # both held, alike
        assert pair.broker.directory.budget.holds == 2
        # The stuck one drains below three quarters of the budget: both let go.
        for _ in range(3):
            await stuck.ack(*stuck.messages())
        await pair.settle()
        assert first.reading and second.reading

    run(scenario, limits=budget)


# -- revocation --------------------------------------------------------------------------


def test_drop_sessions_closes_a_live_session_without_its_will() -> None:
    async def scenario(pair: BrokerPair) -> None:
        watcher = await pair.connect("watcher", certificate=b"watcher")
        await watcher.subscribe("wills/#")
        victim = await pair.connect("victim", clean_start=False, session_expiry=600,
                                    will=Will("wills/victim", b"x"))
        count = pair.broker.drop_sessions(
            lambda s: s.principal.certificate_id == pair.certificate_id(), "revoked")
        assert count == 1
        assert victim.take(Disconnect) == [Disconnect(ReasonCode.NOT_AUTHORIZED)]
        assert victim.closed
        assert "victim" not in pair.broker.sessions  # persistent or not
        await pair.settle()
        assert watcher.messages() == []
        assert not watcher.closed

    run(scenario)


def test_dropping_a_certificates_sessions_spares_the_others() -> None:
    """What the enforcement bridge does when a certificate is revoked (the road from the
    registry through the bus is proven in tests/integration/enforcement)."""
    async def scenario(pair: BrokerPair) -> None:
        victim = await pair.connect("victim")
        bystander = await pair.connect("bystander", certificate=b"other")
        revoked = pair.certificate_id()
        assert pair.broker.drop_sessions(
            lambda s: s.principal.certificate_id == revoked, "certificate REVOKED") == 1
        await pair.settle()
        assert victim.closed
        assert not bystander.closed
        assert list(pair.broker.sessions) == ["bystander"]

    run(scenario)


class Switchable:
    """An authorizer whose answer the test changes: allow all, deny some, or refuse."""

    def __init__(self) -> None:
        self.denied: set[Action] = set()
        self.refuse = False

    async def bind(self, principal: Principal, client_id: str) -> SessionPermissions:
        if self.refuse:
            raise AuthenticationError("certificate no longer active")
        denied = set(self.denied)

        class Bound:
            def check(self, action: Action, resource: str) -> bool:
                return action not in denied

        return Bound()


def test_reauthorization_applies_to_the_next_publish() -> None:
    async def scenario(pair: BrokerPair) -> None:
        authorizer = pair.broker.authorizer
        assert isinstance(authorizer, Switchable)
        client = await pair.connect("dev1")
        pid = await client.publish("t/1", b"a", qos=1)
        assert client.take(Puback) == [Puback(pid or 0, ReasonCode.NO_MATCHING_SUBSCRIBERS)]
        authorizer.denied = {Action.PUBLISH}
        assert pair.broker.reauthorize_sessions(lambda s: True) == 1
        await pair.settle()
        pid = await client.publish("t/1", b"b", qos=1)
        assert client.take(Puback) == [Puback(pid or 0, ReasonCode.NOT_AUTHORIZED)]
        assert not client.closed

    run(scenario, authorizer=Switchable())


def test_reauthorization_without_connect_closes_the_session() -> None:
    async def scenario(pair: BrokerPair) -> None:
        authorizer = pair.broker.authorizer
        assert isinstance(authorizer, Switchable)
        client = await pair.connect("dev1")
        authorizer.denied = {Action.CONNECT}
        assert pair.broker.reauthorize_sessions(lambda s: True) == 1
        await pair.settle()
        assert client.take(Disconnect) == [Disconnect(ReasonCode.NOT_AUTHORIZED)]
        assert client.closed

    run(scenario, authorizer=Switchable())


def test_a_failed_reauthorization_drops_the_session() -> None:
    async def scenario(pair: BrokerPair) -> None:
        authorizer = pair.broker.authorizer
        assert isinstance(authorizer, Switchable)
        client = await pair.connect("dev1", clean_start=False, session_expiry=600)
        authorizer.refuse = True
        pair.broker.reauthorize_sessions(lambda s: True)
        await pair.settle()
        assert client.closed
        assert "dev1" not in pair.broker.sessions

    run(scenario, authorizer=Switchable())


def test_an_allow_all_broker_routes_between_clients() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("a/+/c")
        pub = await pair.connect("pub")
        await pub.publish("a/b/c", b"hello")
        assert sub.messages() == [Publish("a/b/c", b"hello")]

    run(scenario, authorizer=AllowAll())
