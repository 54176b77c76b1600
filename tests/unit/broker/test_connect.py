"""CONNECT on an in-memory broker: secure defaults, acceptance, refusal, takeover, timers."""

from __future__ import annotations

import pytest

from bastion.broker import (
    AcceptVerifiedCertificates,
    Action,
    AuthenticationError,
    Broker,
    ClientDisconnected,
    Principal,
    SessionPermissions,
)
from bastion.mqtt import (
    MQTT_3_1_1,
    MQTT_5,
    Connack,
    Connect,
    Disconnect,
    Properties,
    ReasonCode,
)
from support.broker_pair import BrokerPair, run


class Permissions:
    def __init__(self, denied: set[Action]) -> None:
        self.denied = denied

    def check(self, action: Action, resource: str) -> bool:
        return action not in self.denied


class Denying:
    """An authorizer that denies ``denied`` actions everywhere."""

    def __init__(self, *denied: Action) -> None:
        self.denied = set(denied)

    async def bind(self, principal: Principal, client_id: str) -> SessionPermissions:
        return Permissions(self.denied)


class Refusing:
    async def authenticate(self, principal: Principal, connect: Connect) -> Principal:
        raise AuthenticationError("revoked certificate")


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5"])
@pytest.mark.parametrize("plugs", [
    pytest.param({}, id="neither"),
    pytest.param({"authenticator": AcceptVerifiedCertificates()}, id="no-authorizer"),
])
def test_a_broker_without_authorizer_refuses_every_connect(version: int,
                                                           plugs: dict[str, object]) -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("anyone", version=version, expect=False)
        assert client.connack is not None
        assert client.connack.reason_code is ReasonCode.NOT_AUTHORIZED
        assert client.closed
        assert "anyone" not in pair.broker.sessions

    run(scenario, open_by_default=False, **plugs)


def test_default_plugs_are_the_refusing_ones() -> None:
    from bastion.broker import DenyAll, RefuseAll

    broker = Broker()
    assert isinstance(broker.authenticator, RefuseAll)
    assert isinstance(broker.authorizer, DenyAll)


def test_an_open_broker_accepts_and_attaches_a_session() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1")
        assert client.connack == Connack(False, ReasonCode.SUCCESS, client.connack.properties)
        session = pair.broker.sessions["dev1"]
        assert session.connection is client.conn
        assert session.principal.certificate_id == pair.certificate_id()

    run(scenario)


def test_refused_by_the_authenticator() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1", expect=False)
        assert client.connack is not None
        assert client.connack.reason_code is ReasonCode.NOT_AUTHORIZED
        assert client.closed

    run(scenario, authenticator=Refusing())


def test_connect_denied_by_policy_is_refused() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1", expect=False)
        assert client.connack is not None
        assert client.connack.reason_code is ReasonCode.NOT_AUTHORIZED
        assert pair.broker.stats.authorization_denied == 1

    run(scenario, authorizer=Denying(Action.CONNECT))


def test_a_second_connection_takes_the_session_over() -> None:
    async def scenario(pair: BrokerPair) -> None:
        gone: list[ClientDisconnected] = []
        pair.broker.bus.subscribe(ClientDisconnected, gone.append)  # type: ignore[arg-type]
        first = await pair.connect("dev1", clean_start=False, session_expiry=60)
        await first.subscribe("t/#", 1)
        second = await pair.connect("dev1", clean_start=False, session_expiry=60)
        assert second.connack is not None and second.connack.session_present
        assert first.take(Disconnect) == [Disconnect(ReasonCode.SESSION_TAKEN_OVER)]
        assert first.closed and not second.closed
        assert pair.broker.sessions["dev1"].connection is second.conn
        assert [e.reason.name for e in gone] == ["DUPLICATE_CLIENTID"]
        await pair.settle()  # the first connection's connection_lost changes nothing
        assert pair.broker.sessions["dev1"].connection is second.conn
        assert "t/#" in pair.broker.sessions["dev1"].subscriptions

    run(scenario)


def test_takeover_by_another_certificate_never_resumes_the_session() -> None:
    async def scenario(pair: BrokerPair) -> None:
        first = await pair.connect("dev1", clean_start=False, session_expiry=60)
        await first.subscribe("t/#", 1)
        other = await pair.connect("dev1", clean_start=False, session_expiry=60,
                                   certificate=b"someone else")
        assert other.connack is not None and not other.connack.session_present
        assert pair.broker.sessions["dev1"].subscriptions == {}

    run(scenario)


def test_a_connection_without_connect_is_closed_at_the_deadline() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = pair.open()
        pair.clock.advance(pair.broker.limits.connect_timeout - 0.1)
        await pair.settle()
        assert not client.closed
        pair.clock.advance(0.2)
        await pair.settle()
        assert client.closed

    run(scenario)


def test_keep_alive_closes_a_silent_client_after_one_and_a_half_times() -> None:
    async def scenario(pair: BrokerPair) -> None:
        quiet = await pair.connect("quiet", keep_alive=10)
        chatty = await pair.connect("chatty", keep_alive=10)
        pair.clock.advance(10)
        await chatty.publish("x/y")
        pair.clock.advance(4)  # 14 s of silence: within 15
        await pair.settle()
        assert not quiet.closed
        pair.clock.advance(2)  # checked within a second of the deadline
        await pair.settle()
        assert quiet.take(Disconnect) == [Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT)]
        assert quiet.closed
        assert not chatty.closed

    run(scenario)


def test_clean_start_discards_the_old_session() -> None:
    async def scenario(pair: BrokerPair) -> None:
        first = await pair.connect("dev1", clean_start=False, session_expiry=60)
        await first.subscribe("t/#", 1)
        await first.disconnect()
        again = await pair.connect("dev1", clean_start=True, session_expiry=60)
        assert again.connack is not None and not again.connack.session_present
        assert pair.broker.sessions["dev1"].subscriptions == {}

    run(scenario)


def test_session_expiry_at_disconnect_cannot_be_raised_from_zero() -> None:
    async def scenario(pair: BrokerPair) -> None:
        client = await pair.connect("dev1")
        await client.disconnect(Disconnect(properties=Properties(session_expiry_interval=30)))
        assert client.closed
        assert client.take(Disconnect) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]
        assert "dev1" not in pair.broker.sessions

    run(scenario)
