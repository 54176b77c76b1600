"""``WebSocketStream`` driven in memory: a wsproto client on one side, a recording
transport below and a recording MQTT-side protocol above (no sockets, no broker)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
)

from bastion.broker import KeyIdentity, UpgradeRefused
from bastion.broker._websocket import WebSocketStream


def in_loop(scenario: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run the scenario in ``asyncio.run``: the stream takes the running loop."""
    @functools.wraps(scenario)
    def test(*args: Any, **kwargs: Any) -> None:
        asyncio.run(scenario(*args, **kwargs))
    return test


SIGNED = "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=" + "a" * 64


class Transport:
    """What the TLS stream offers the WebSocket stream (an asyncio transport)."""

    def __init__(self, peer_certificate: bytes = b"") -> None:
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.paused = False
        self._certificate = peer_certificate

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self
        if name == "peername":
            return ("192.0.2.7", 50000)
        return default

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self._certificate


class App(asyncio.Protocol):
    def __init__(self, key: KeyIdentity | None) -> None:
        self.key = key
        self.received = bytearray()
        self.transport: Any = None
        self.lost = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class Keys:
    """An upgrade authenticator answering from a table of targets."""

    def __init__(self, known: dict[str, KeyIdentity]) -> None:
        self.known = known
        self.asked: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    async def authenticate_upgrade(self, target: str,
                                   headers: tuple[tuple[str, str], ...]) -> KeyIdentity:
        self.asked.append((target, headers))
        if target not in self.known:
            raise UpgradeRefused("InvalidSignatureException: no")
        return self.known[target]


class Pair:
    """A client and a stream wired together in memory."""

    def __init__(self, keys: Keys | None, *, certificate: bytes = b"",
                 timeout: float = 5.0) -> None:
        self.apps: list[App] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.transport = Transport(certificate)
        self.stream = WebSocketStream(self._make, keys, self._spawn, timeout)
        self.stream.connection_made(self.transport)  # type: ignore[arg-type]
        self.client = WSConnection(ConnectionType.CLIENT)
        self.events: list[Any] = []

    def _make(self, key: KeyIdentity | None) -> App:
        app = App(key)
        self.apps.append(app)
        return app

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)
        self.tasks.clear()
        self.read()

    def read(self) -> None:
        data, self.transport.written = bytes(self.transport.written), bytearray()
        if data:
            self.client.receive_data(data)
        self.events += list(self.client.events())

    def upgrade(self, target: str, subprotocols: tuple[str, ...] = ("mqtt",)) -> None:
        self.stream.data_received(self.client.send(Request(
            host="iot.example.com", target=target, subprotocols=list(subprotocols))))

    def send(self, data: bytes) -> None:
        self.stream.data_received(self.client.send(BytesMessage(data=data)))


@in_loop
async def test_a_signed_upgrade_becomes_an_mqtt_connection_of_that_key():
    keys = Keys({SIGNED: KeyIdentity("AKIAKEY")})
    pair = Pair(keys)
    pair.upgrade(SIGNED)
    assert pair.transport.paused  # nothing more is read while the key is checked
    await pair.settle()
    assert not pair.transport.paused
    assert keys.asked[0][0] == SIGNED
    assert ("host", "iot.example.com") in keys.asked[0][1]
    accepted = [e for e in pair.events if isinstance(e, AcceptConnection)]
    assert accepted and accepted[0].subprotocol == "mqtt"
    (app,) = pair.apps
    assert app.key == KeyIdentity("AKIAKEY") and app.transport is pair.stream


@in_loop
async def test_frames_carry_parts_of_packets_and_several_packets():
    pair = Pair(Keys({SIGNED: KeyIdentity("AKIAKEY")}))
    pair.upgrade(SIGNED)
    await pair.settle()
    connect = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c"
    pair.send(connect[:3])
    pair.send(connect[3:] + b"\xc0\x00\xc0\x00")
    assert bytes(pair.apps[0].received) == connect + b"\xc0\x00\xc0\x00"


@in_loop
async def test_each_write_is_one_binary_frame():
    pair = Pair(Keys({SIGNED: KeyIdentity("AKIAKEY")}))
    pair.upgrade(SIGNED)
    await pair.settle()
    pair.stream.write(b"\x20\x02\x00\x00")
    pair.stream.writelines([b"\xd0\x00", b"\xd0\x00"])
    pair.read()
    frames = [bytes(e.data) for e in pair.events if isinstance(e, BytesMessage)]
    assert frames == [b"\x20\x02\x00\x00", b"\xd0\x00\xd0\x00"]


@in_loop
async def test_a_refused_signature_answers_403_and_makes_no_connection():
    pair = Pair(Keys({}))
    pair.upgrade(SIGNED.replace("a" * 64, "b" * 64))
    await pair.settle()
    rejected = [e for e in pair.events if isinstance(e, RejectConnection)]
    assert rejected and rejected[0].status_code == 403
    body = b"".join(bytes(e.data) for e in pair.events if isinstance(e, RejectData))
    assert b"InvalidSignature" in body
    assert pair.transport.closed and not pair.apps


@pytest.mark.parametrize(("target", "subprotocols", "status"), [
    ("/", ("mqtt",), 404),
    ("/mqtt/", ("mqtt",), 404),
    ("/mqtt", ("chat",), 400),
    ("/mqtt", (), 400),
    ("/mqtt", ("mqtt",), 403),  # neither signed nor a certificate
])
@in_loop
async def test_refused_before_authentication(target, subprotocols, status):
    keys = Keys({})
    pair = Pair(keys)
    pair.upgrade(target, subprotocols)
    pair.read()
    rejected = [e for e in pair.events if isinstance(e, RejectConnection)]
    assert rejected and rejected[0].status_code == status
    assert not keys.asked and not pair.apps and pair.transport.closed


@in_loop
async def test_without_a_signature_the_client_certificate_is_the_principal():
    pair = Pair(None, certificate=b"0\x82 a DER certificate")
    pair.upgrade("/mqtt")
    pair.read()
    assert any(isinstance(e, AcceptConnection) for e in pair.events)
    assert pair.apps[0].key is None


@in_loop
async def test_a_listener_without_an_authenticator_refuses_signed_urls():
    pair = Pair(None, certificate=b"0\x82 a DER certificate")
    pair.upgrade(SIGNED)
    pair.read()
    rejected = [e for e in pair.events if isinstance(e, RejectConnection)]
    assert rejected and rejected[0].status_code == 403


@in_loop
async def test_close_sends_a_close_frame_and_a_peer_close_is_answered():
    pair = Pair(Keys({SIGNED: KeyIdentity("AKIAKEY")}))
    pair.upgrade(SIGNED)
    await pair.settle()
    pair.stream.close()
    pair.read()
    closes = [e for e in pair.events if isinstance(e, CloseConnection)]
    assert closes and closes[0].code == 1000 and pair.transport.closed

    other = Pair(Keys({SIGNED: KeyIdentity("AKIAKEY")}))
    other.upgrade(SIGNED)
    await other.settle()
    other.stream.data_received(other.client.send(CloseConnection(code=1000)))
    other.read()
    assert any(isinstance(e, CloseConnection) for e in other.events)
    assert other.transport.closed


@in_loop
async def test_an_upgrade_that_never_comes_is_cut():
    pair = Pair(Keys({}), timeout=0.05)
    pair.stream.data_received(b"GET /mqtt HTTP/1.1\r\n")  # and nothing more
    deadline = asyncio.get_running_loop().time() + 5
    while not pair.transport.aborted:
        assert asyncio.get_running_loop().time() < deadline, "not cut"
        await asyncio.sleep(0.01)
    assert not pair.apps
