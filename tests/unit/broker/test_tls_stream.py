"""TLSStream driven entirely in memory.

The stream sits on a fake TCP transport that collects what it writes; the client is an
``ssl.SSLObject`` between two ``MemoryBIO``\\ s, so every byte crossing the "socket" is
moved by the test and each TCP chunk is exactly what the test says it is. Certificates
come from ``trustme``; the server context requires a client certificate (mutual TLS).

Every scenario runs inside ``asyncio.run`` because the stream takes the running loop (for
its handshake timer and the deferred delivery after ``resume_reading``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme

from bastion.broker._tls import TLSStream

SERVER_NAME = "broker.test"
CLIENT_NAME = "device-1.test"
PEERNAME = ("192.0.2.7", 50123)
SOCKNAME = ("198.51.100.1", 8883)

TLS_VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]


# -- certificates and contexts ---------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert(SERVER_NAME)


@pytest.fixture(scope="module")
def client_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert(CLIENT_NAME, common_name="device-1")


@pytest.fixture(scope="module")
def foreign_client_cert() -> trustme.LeafCert:
    """A client certificate from a CA the server does not trust."""
    return trustme.CA().issue_cert(CLIENT_NAME, common_name="device-1")


@pytest.fixture(scope="module")
def server_ctx(ca: trustme.CA, server_cert: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca: trustme.CA, cert: trustme.LeafCert | None,
                   version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(ctx)
    if cert is not None:
        cert.configure_cert(ctx)
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


# -- fakes -----------------------------------------------------------------------------


class FakeTCP:
    """The accepted socket's transport: collects writes, records flow control and closing."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.writes_after_close = 0
        self.pause_calls = 0
        self.resume_calls = 0
        self.buffer_size = 0

    def write(self, data: bytes) -> None:
        if self.closed:
            self.writes_after_close += 1
        self.chunks.append(bytes(data))

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data

    def pause_reading(self) -> None:
        self.pause_calls += 1

    def resume_reading(self) -> None:
        self.resume_calls += 1

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": PEERNAME, "sockname": SOCKNAME}.get(name, default)


class App(asyncio.Protocol):
    """The application protocol (MQTTConnection in the broker): records what it is told."""

    def __init__(self, pause_on_connect: bool = False) -> None:
        self.transport: Any = None
        self.made = 0
        self.data: list[bytes] = []
        self.lost: list[Exception | None] = []
        self.pause_writing_calls = 0
        self.resume_writing_calls = 0
        self.pause_on_connect = pause_on_connect

    def connection_made(self, transport: Any) -> None:
        self.made += 1
        self.transport = transport
        if self.pause_on_connect:
            transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    def pause_writing(self) -> None:
        self.pause_writing_calls += 1

    def resume_writing(self) -> None:
        self.resume_writing_calls += 1


class Pair:
    """One TLSStream on a FakeTCP, and an in-memory TLS client talking to it."""

    def __init__(self, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
                 handshake_timeout: float = 10.0, pause_on_connect: bool = False) -> None:
        self.apps: list[App] = []

        def factory() -> App:
            app = App(pause_on_connect)
            self.apps.append(app)
            return app

        self.stream = TLSStream(server_ctx, factory, handshake_timeout)
        self.tcp = FakeTCP()
        self.stream.connection_made(self.tcp)  # type: ignore[arg-type]
        self.c_in = ssl.MemoryBIO()
        self.c_out = ssl.MemoryBIO()
        self.client = client_ctx.wrap_bio(self.c_in, self.c_out, server_hostname=SERVER_NAME)

    @property
    def app(self) -> App:
        assert len(self.apps) == 1, f"{len(self.apps)} application protocols were created"
        return self.apps[0]

    def client_bytes(self) -> bytes:
        """What the client has written since last asked (one or more TLS records)."""
        return self.c_out.read()

    def to_server(self, data: bytes | None = None) -> None:
        """Deliver ``data`` (default: everything the client wrote) as ONE TCP chunk."""
        if data is None:
            data = self.client_bytes()
        if data:
            self.stream.data_received(data)

    def to_client(self) -> None:
        self.c_in.write(self.tcp.take())

    def client_send(self, *records: bytes) -> bytes:
        """Encrypt each of ``records`` as its own client write; return the ciphertext."""
        for record in records:
            self.client.write(record)
        return self.client_bytes()

    def client_read(self) -> bytes:
        """Everything the client can decrypt from what the server has written."""
        self.to_client()
        out = []
        while True:
            try:
                chunk = self.client.read(65536)
            except ssl.SSLWantReadError:
                break
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)

    def _client_step(self) -> bool:
        try:
            self.client.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def handshake(self, then_send: bytes = b"") -> None:
        """Run the handshake; ``then_send`` is written by the client as soon as its side of
        the handshake is done, so it travels in the same TCP chunk as the client's last
        handshake flight when the protocol allows (TLS 1.3: with the client's Finished)."""
        sent = False
        for _ in range(6):
            done = self._client_step()
            if done and then_send and not sent:
                self.client.write(then_send)
                sent = True
            self.to_server()
            self.to_client()
            if done and self.apps:
                return
        raise AssertionError("the handshake did not complete")


def recording_factory(apps: list[App]) -> Callable[[], App]:
    def factory() -> App:
        app = App()
        apps.append(app)
        return app
    return factory


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def assert_alerted(pair: Pair) -> ssl.SSLError:
    """The client, given what the server wrote, fails with the server's TLS alert."""
    pair.to_client()
    with pytest.raises(ssl.SSLError) as info:
        # TLS 1.2: the client is still in its handshake. TLS 1.3: the client finished its
        # handshake before the server checked its certificate and learns when it reads.
        pair.client.do_handshake()
        pair.client.read(1024)
    exc = info.value
    assert not isinstance(exc, ssl.SSLWantReadError), "the server sent no alert"
    assert "alert" in str(exc).lower(), exc
    return exc


# -- handshake -------------------------------------------------------------------------


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_mutual_handshake_creates_the_app_once_and_exposes_the_peer(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert,
        version: ssl.TLSVersion) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert, version),
                    handshake_timeout=0.05)
        assert pair.apps == []
        pair.handshake()
        app = pair.app
        assert app.made == 1
        assert app.transport is pair.stream
        assert app.data == [] and app.lost == []

        ssl_object = pair.stream.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        assert ssl_object.server_side
        assert ssl_object.version() == pair.client.version()
        client_der = ssl.PEM_cert_to_DER_cert(client_cert.cert_chain_pems[0].bytes().decode())
        assert ssl_object.getpeercert(binary_form=True) == client_der

        peercert = pair.stream.get_extra_info("peercert")
        assert (("commonName", "device-1"),) in peercert["subject"]
        assert ("DNS", CLIENT_NAME) in peercert["subjectAltName"]
        assert pair.stream.get_extra_info("sslcontext") is server_ctx
        assert pair.stream.get_extra_info("cipher") == pair.client.cipher()

        assert pair.stream.get_extra_info("peername") == PEERNAME
        assert pair.stream.get_extra_info("sockname") == SOCKNAME
        assert pair.stream.get_extra_info("nothing", "dflt") == "dflt"

        # More client traffic does not create another app; the handshake timer is gone.
        pair.to_server(pair.client_send(b"x"))
        await asyncio.sleep(0.1)
        assert len(pair.apps) == 1 and pair.app.made == 1
        assert pair.app.data == [b"x"]
        assert not pair.tcp.closed and not pair.stream.is_closing()

    run(scenario)


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_client_without_certificate_is_refused(
        ca: trustme.CA, server_ctx: ssl.SSLContext, version: ssl.TLSVersion) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, None, version), handshake_timeout=0.05)
        for _ in range(3):
            try:
                pair.client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                break  # TLS 1.2: the alert already arrived
            pair.to_server()
            if pair.tcp.closed:
                break
            pair.to_client()
        assert pair.tcp.closed and not pair.tcp.aborted
        assert pair.stream.is_closing()
        assert pair.apps == []
        if version is ssl.TLSVersion.TLSv1_3:
            assert_alerted(pair)
        # Anything more from the client is ignored; the timer no longer fires.
        pair.stream.data_received(b"\x17\x03\x03\x00\x05hello")
        await asyncio.sleep(0.1)
        assert pair.apps == [] and not pair.tcp.aborted
        pair.stream.connection_lost(None)
        assert pair.apps == []

    run(scenario)


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_client_certificate_from_another_ca_is_refused(
        ca: trustme.CA, server_ctx: ssl.SSLContext, foreign_client_cert: trustme.LeafCert,
        version: ssl.TLSVersion) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, foreign_client_cert, version))
        pair._client_step()          # ClientHello
        pair.to_server()
        pair.to_client()             # server's first flight, with its CertificateRequest
        try:
            pair.client.do_handshake()   # the client's certificate and Finished
        except ssl.SSLWantReadError:
            pass
        pair.to_server()
        assert pair.tcp.closed and not pair.tcp.aborted
        assert pair.apps == []
        exc = assert_alerted(pair)
        assert "unknown ca" in str(exc).lower()

    run(scenario)


def test_handshake_timeout_aborts_a_silent_client(server_ctx: ssl.SSLContext) -> None:
    async def scenario() -> None:
        apps: list[App] = []
        stream = TLSStream(server_ctx, recording_factory(apps), 0.05)
        tcp = FakeTCP()
        stream.connection_made(tcp)  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        assert not tcp.closed
        await asyncio.sleep(0.15)
        assert tcp.aborted
        assert stream.is_closing()
        assert apps == []
        stream.connection_lost(None)
        assert apps == []

    run(scenario)


def test_handshake_timeout_aborts_a_client_that_stalls_midway(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert), handshake_timeout=0.05)
        pair._client_step()
        pair.to_server()            # ClientHello only; the client never finishes
        assert pair.tcp.chunks      # the server answered
        await asyncio.sleep(0.15)
        assert pair.tcp.aborted
        assert pair.apps == []

    run(scenario)


# -- reading ---------------------------------------------------------------------------


def test_application_data_in_the_chunk_with_the_clients_finished(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert, ssl.TLSVersion.TLSv1_3))
        pair._client_step()
        pair.to_server()
        pair.to_client()
        assert pair._client_step()  # TLS 1.3: the client is done before the server
        pair.client.write(b"\x10\x0cCONNECT")
        pair.to_server()            # Certificate, CertificateVerify, Finished + data
        assert pair.app.data == [b"\x10\x0cCONNECT"]

    run(scenario)


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_application_data_right_after_the_handshake(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert,
        version: ssl.TLSVersion) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert, version))
        pair.handshake(then_send=b"first")
        assert pair.app.data == [b"first"]

    run(scenario)


def test_several_records_in_one_chunk_arrive_in_one_call(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        pair.to_server(pair.client_send(b"one", b"two", b"three"))
        assert pair.app.data == [b"onetwothree"]

        # One write bigger than a TLS record's plaintext (16 KiB): several records.
        big = bytes(range(256)) * 200  # 51,200 bytes -> 4 records
        pair.to_server(pair.client_send(big, b"tail"))
        assert pair.app.data[1:] == [big + b"tail"]

    run(scenario)


def test_record_split_over_two_chunks_is_delivered_when_complete(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        record = pair.client_send(b"p" * 300)
        pair.to_server(record[:3])       # not even a whole record header
        pair.to_server(record[3:150])
        assert pair.app.data == []
        pair.to_server(record[150:])
        assert pair.app.data == [b"p" * 300]

        # A complete record followed by the start of the next one in the same chunk.
        two = pair.client_send(b"A" * 10, b"B" * 10)
        cut = len(two) - 5
        pair.to_server(two[:cut])
        assert pair.app.data[1:] == [b"A" * 10]
        pair.to_server(two[cut:])
        assert pair.app.data[1:] == [b"A" * 10, b"B" * 10]
        assert not pair.tcp.closed

    run(scenario)


# -- writing ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_write_is_encrypted_onto_the_tcp_transport(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert,
        version: ssl.TLSVersion) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert, version))
        pair.handshake()
        pair.client_read()  # session tickets, if any
        pair.stream.write(b"\x20\x02\x00\x00")
        ciphertext = b"".join(pair.tcp.chunks)
        assert ciphertext and b"\x20\x02\x00\x00" not in ciphertext
        assert pair.client_read() == b"\x20\x02\x00\x00"

        pair.stream.writelines([b"ab", b"cd"])
        pair.stream.write(b"")
        assert pair.client_read() == b"abcd"

        big = b"z" * 40_000
        pair.stream.write(big)
        assert pair.client_read() == big

        pair.tcp.buffer_size = 1234
        assert pair.stream.get_write_buffer_size() == 1234

    run(scenario)


# -- closing ---------------------------------------------------------------------------


def test_close_sends_close_notify_and_closes_tcp(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        pair.client_read()
        pair.stream.close()
        assert pair.tcp.closed and not pair.tcp.aborted
        assert pair.stream.is_closing()
        assert pair.tcp.writes_after_close == 0  # close_notify went out before close()
        pair.to_client()
        # An SSLObject that has not sent its own close_notify reports the peer's as EOF
        # (b""); SSLZeroReturnError comes only once it has. Either way, the client's
        # unwrap() now completes at once, which it does only after the peer's close_notify.
        assert pair.client.read(1024) == b""
        pair.client.unwrap()
        with pytest.raises(ssl.SSLZeroReturnError):
            pair.client.read(1024)

        pair.stream.write(b"late")
        pair.stream.close()
        assert pair.tcp.chunks == []
        assert pair.tcp.writes_after_close == 0
        # Data still in flight from the client is not delivered after close.
        pair.stream.data_received(b"\x17\x03\x03\x00\x05hello")
        assert pair.app.data == []

        pair.stream.connection_lost(None)
        assert pair.app.lost == [None]

    run(scenario)


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_peer_close_notify_closes_the_stream(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert,
        version: ssl.TLSVersion) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert, version))
        pair.handshake()
        pair.client_read()
        pair.client.write(b"bye")
        with pytest.raises(ssl.SSLWantReadError):
            pair.client.unwrap()  # sends close_notify, waits for the server's
        pair.to_server()          # data + close_notify in one chunk
        assert pair.app.data == [b"bye"]
        assert pair.stream.is_closing()
        assert pair.tcp.closed and not pair.tcp.aborted
        pair.to_client()
        pair.client.unwrap()      # the server answered with its own close_notify
        assert pair.app.lost == []  # that comes from the TCP transport

        exc = ConnectionResetError("gone")
        pair.stream.connection_lost(exc)
        pair.stream.connection_lost(None)
        assert pair.app.lost == [exc]

    run(scenario)


def test_connection_lost_reaches_the_app_once(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        exc = OSError("reset")
        pair.stream.connection_lost(exc)
        assert pair.app.lost == [exc]
        assert pair.stream.is_closing()
        pair.stream.connection_lost(None)
        pair.stream.data_received(pair.client_send(b"after"))
        pair.stream.write(b"after")
        assert pair.app.lost == [exc]
        assert pair.app.data == []
        assert pair.tcp.chunks == []

    run(scenario)


def test_eof_without_close_notify_aborts_after_delivering_data(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        pair.to_server(pair.client_send(b"last words"))
        assert pair.stream.eof_received() is False  # the TCP transport closes itself
        assert pair.app.data == [b"last words"]
        assert pair.tcp.aborted  # a truncation attack looks just like this

    run(scenario)


# -- flow control ----------------------------------------------------------------------


def test_pause_and_resume_reading_are_forwarded_and_buffered_records_delivered(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        stream, tcp = pair.stream, pair.tcp

        stream.pause_reading()
        stream.pause_reading()
        assert tcp.pause_calls == 1
        # Bytes the socket had already read arrive although reading is paused.
        pair.to_server(pair.client_send(b"while", b"paused"))
        await asyncio.sleep(0)
        assert pair.app.data == []

        stream.resume_reading()
        stream.resume_reading()
        assert tcp.resume_calls == 1
        assert pair.app.data == []  # delivered from the loop, not inside resume_reading
        await asyncio.sleep(0)
        assert pair.app.data == [b"whilepaused"]
        await asyncio.sleep(0)
        assert pair.app.data == [b"whilepaused"]

        # Resuming with nothing buffered delivers nothing.
        stream.pause_reading()
        stream.resume_reading()
        await asyncio.sleep(0)
        assert pair.app.data == [b"whilepaused"]
        assert (tcp.pause_calls, tcp.resume_calls) == (2, 2)

        # Paused again before the deferred delivery ran: nothing until the next resume.
        stream.pause_reading()
        pair.to_server(pair.client_send(b"x"))
        stream.resume_reading()
        stream.pause_reading()
        await asyncio.sleep(0)
        assert pair.app.data == [b"whilepaused"]
        stream.resume_reading()
        await asyncio.sleep(0)
        assert pair.app.data == [b"whilepaused", b"x"]

        # Write-side flow control from TCP reaches the app.
        stream.pause_writing()
        stream.resume_writing()
        assert (pair.app.pause_writing_calls, pair.app.resume_writing_calls) == (1, 1)

    run(scenario)


def test_app_paused_in_connection_made_gets_the_data_of_the_handshake_chunk_on_resume(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert), pause_on_connect=True)
        pair.handshake(then_send=b"CONNECT")
        assert pair.tcp.pause_calls == 1
        assert pair.app.data == []
        await asyncio.sleep(0)
        assert pair.app.data == []
        pair.stream.resume_reading()
        await asyncio.sleep(0)
        assert pair.app.data == [b"CONNECT"]
        assert pair.tcp.resume_calls == 1

    run(scenario)


def test_resume_after_close_delivers_nothing(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        pair.stream.pause_reading()
        pair.to_server(pair.client_send(b"queued"))
        pair.stream.close()
        pair.stream.resume_reading()
        await asyncio.sleep(0)
        assert pair.app.data == []
        assert pair.tcp.resume_calls == 0

    run(scenario)


# -- garbage ---------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
    pytest.param(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", id="plain-mqtt"),
    pytest.param(b"\x17\x03\x03\x00\x20" + b"\x00" * 32, id="forged-record"),
])
def test_garbage_after_the_handshake_aborts(
        ca: trustme.CA, server_ctx: ssl.SSLContext, client_cert: trustme.LeafCert,
        garbage: bytes) -> None:
    async def scenario() -> None:
        pair = Pair(server_ctx, client_context(ca, client_cert))
        pair.handshake()
        pair.to_server(garbage)
        assert pair.tcp.aborted
        assert pair.stream.is_closing()
        assert pair.app.data == []
        # Nothing more is read or written, and TCP's connection_lost still reaches the app.
        pair.tcp.chunks.clear()
        pair.stream.data_received(pair.client_send(b"more"))
        pair.stream.write(b"reply")
        assert pair.app.data == [] and pair.tcp.chunks == []
        pair.stream.connection_lost(None)
        assert pair.app.lost == [None]

    run(scenario)


def test_garbage_instead_of_a_client_hello_fails_the_handshake(
        server_ctx: ssl.SSLContext) -> None:
    async def scenario() -> None:
        apps: list[App] = []
        stream = TLSStream(server_ctx, recording_factory(apps), 10.0)
        tcp = FakeTCP()
        stream.connection_made(tcp)  # type: ignore[arg-type]
        stream.data_received(b"GET / HTTP/1.1\r\n\r\n")
        assert tcp.closed
        assert apps == []

    run(scenario)
