"""Real receivers on loopback: an HTTPS server (a webhook) and an SMTP server with
STARTTLS (aiosmtpd), both with certificates from a test CA (trustme). Import the
fixtures into a ``conftest.py``."""

from __future__ import annotations

import email
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(test_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return str(path)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> Any:
        return json.loads(self.body)


@dataclass
class Webhook:
    """An HTTPS server answering with the scripted statuses (then 200)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def webhook(test_ca: trustme.CA) -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            hook.received.append(Received(self.path, {k.lower(): v for k, v in
                                                      self.headers.items()}, body))
            status = hook.statuses.pop(0) if hook.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            hook.arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"https://127.0.0.1:{server.server_address[1]}/hooks/bastion"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _smtp(test_ca: trustme.CA, *, starttls: bool) -> Iterator[Mailbox]:
    box = Mailbox(_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            box.messages.append(email.message_from_bytes(envelope.content))
            box.arrived.set()
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password == b"smtp-secret":
            box.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    options: dict[str, Any] = {}
    if starttls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        options = {"tls_context": context, "require_starttls": True,
                   "authenticator": authenticate, "auth_require_tls": True}
    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port,
                            server_hostname="localhost", **options)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(test_ca: trustme.CA) -> Iterator[Mailbox]:
    yield from _smtp(test_ca, starttls=True)


@pytest.fixture
def plain_smtp_server(test_ca: trustme.CA) -> Iterator[Mailbox]:
    yield from _smtp(test_ca, starttls=False)
