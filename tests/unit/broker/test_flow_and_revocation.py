"""Flow control (a congested subscriber holds its publishers back) and revocation (a
dropped or re-authorized principal loses its live session), on an in-memory broker."""

from __future__ import annotations

from bastion.broker import (
    Action,
    AllowAll,
    AuthenticationError,
    BrokerLimits,
    Principal,
    SessionPermissions,
)
from bastion.broker._session import SLOW_READER_GRACE
from bastion.mqtt import Disconnect, Puback, Publish, ReasonCode, Will
from support.broker_pair import BrokerPair, run

SMALL_WINDOW = BrokerLimits(max_inflight_messages=2)  # high water 2, low water 0


def test_a_congested_subscriber_holds_its_publisher_until_it_drains() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("f/#", 1)
        pub = await pair.connect("pub")
        for n in range(4):  # 2 in flight, then 2 queued: the high-water mark
            await pub.publish("f/t", bytes([n]), qos=1)
        assert len(pub.take(Puback)) == 4
        assert not pub.reading  # held back: the broker stopped reading it
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


def test_a_slow_reader_holds_its_publisher_only_for_the_grace_period() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("f/#")
        pub = await pair.connect("pub")
        sub.conn.pause_writing()  # the subscriber's socket is full
        await pub.publish("f/t", b"x")
        assert not pub.reading
        pair.clock.advance(SLOW_READER_GRACE - 0.5)
        await pair.settle()
        assert not pub.reading
        pair.clock.advance(0.5)
        await pair.settle()
        assert pub.reading  # a slow reader: it loses QoS 0 instead

    run(scenario)


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
