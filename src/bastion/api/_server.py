"""Serving the API: uvicorn inside Bastion's own event loop.

:class:`ApiServer` binds its socket itself (so ``port=0`` works and a busy port is a
plain :class:`OSError`), then runs ``uvicorn.Server.serve`` as a task of the running
loop, with uvicorn's signal handling disabled (the process owner — ``bastion serve`` —
handles signals). HTTPS uses the data directory's server certificate (TLS 1.2+, the key
decrypted with the installation's master key). Plain HTTP, and emulator mode, are only
allowed on a loopback address.

uvicorn runs with Bastion's own h11 protocol class (:mod:`._connections`): at most
``max_connections_per_source`` open connections per address, and a request's headers
must arrive within ``header_timeout``; the application bounds the body
(``body_timeout``). What that class refuses, and a request h11 cannot parse, is trailed
by the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Generator
from typing import Any, Final, Protocol

import uvicorn

from bastion.broker import Broker
from bastion.config import ApiConfig
from bastion.datadir import DataDir
from bastion.lifecycle import Component
from bastion.services import Services

from ._app import ApiApplication, CallCounts, MetricsDoor, Readiness
from ._auth import CredentialSource, LogTrail, TrailSink
from ._connections import SourceCounts, guarded_h11_protocol
from ._context import Gateway, ServiceDirectory

log = logging.getLogger("bastion.api")


TLS12_CIPHERS: Final = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!SHA1:!AESCCM"
SHUTDOWN_TIMEOUT: Final = 5.0


class ApiConfigError(ValueError):
    """The ``[api]`` configuration is unsafe or inconsistent (e.g. plaintext on a public
    address)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_api_config(config: ApiConfig) -> None:
    """:raises ApiConfigError: plaintext or emulator mode on a non-loopback host, a port
    out of range, a timeout outside (0, 3600] s or a connection cap below 1."""
    if not 0 <= config.port <= 65535:
        raise ApiConfigError(f"api port {config.port} is out of range")
    if config.plaintext and not is_loopback(config.host):
        raise ApiConfigError(
            f"plain HTTP is only allowed on a loopback address, not {config.host!r}; "
            "drop --api-plaintext or bind the API to 127.0.0.1")
    if config.emulator and not is_loopback(config.host):
        raise ApiConfigError(
            f"emulator mode is only allowed on a loopback address, not {config.host!r}")
    for name in ("header_timeout", "body_timeout"):
        seconds = getattr(config, name)
        if not 0 < seconds <= 3600:
            raise ApiConfigError(f"api {name} must be between 0 and 3600 seconds, not "
                                 f"{seconds}")
    if config.max_connections_per_source < 1:
        raise ApiConfigError("api max_connections_per_source must be at least 1, not "
                             f"{config.max_connections_per_source}")


def server_ssl_context(datadir: DataDir) -> ssl.SSLContext:
    """The API's HTTPS context: the data directory's server certificate, TLS 1.2+.

    :raises bastion.pki.KeystoreError: the master key is missing or malformed.
    :raises ssl.SSLError: the key cannot be decrypted or does not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_ciphers(TLS12_CIPHERS)
    context.set_alpn_protocols(["http/1.1"])
    password = datadir.open_keystore().private_key_password
    context.load_cert_chain(datadir.server_cert_path, datadir.server_key_path,
                            password=password)
    return context


class ClosableAsgi(Protocol):
    """An ASGI application mounted on the API's port that is told when the server stops
    (the web console)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    def close(self) -> None: ...


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Bastion owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return


class ApiServer(Component):
    """The REST API of a running Bastion.

    :param config: the ``[api]`` section.
    :param services: every domain service (the handlers call them).
    :param broker: the MQTT broker (iot-data).
    :param credentials: the access keys; ``None`` refuses every request (normal mode).
    :param trail: where every call is recorded (default: the log).
    :param readiness: the checks behind ``/_bastion/health/ready`` (none: ready while up).
    :param metrics: serves ``GET /metrics`` on this port (loaded at :meth:`start`).
    :param calls: where the answers are counted (default: a new counter).
    :param console: the web console, served under ``/console/`` on this port; its
        ``close()`` is called when the server stops (it ends the live streams).
    :raises ApiConfigError: see :func:`check_api_config`.

    :ivar calls: the requests answered, by service, operation, outcome and status.
    """

    name = "api"

    def __init__(self, config: ApiConfig, *, services: Services, broker: Broker,
                 credentials: CredentialSource | None = None,
                 trail: TrailSink | None = None,
                 readiness: Readiness | None = None,
                 metrics: MetricsDoor | None = None,
                 calls: CallCounts | None = None,
                 console: ClosableAsgi | None = None) -> None:
        check_api_config(config)
        self.console = console
        self._readiness = readiness
        self._metrics = metrics
        self.calls: CallCounts = calls if calls is not None else Counter()
        self.config = config
        self._services = services
        self._plane = services.plane
        self._broker = broker
        self._datadir = services.datadir
        self._credentials = credentials
        self._trail: TrailSink = trail if trail is not None else LogTrail()
        self._publish = services.bus.publish
        self._files = services.files
        self._server: _Server | None = None
        self._served = asyncio.Event()
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self.application: ApiApplication | None = None

    @property
    def metrics(self) -> MetricsDoor | None:
        """What serves ``GET /metrics`` on this port, if anything."""
        return self._metrics

    @property
    def port(self) -> int:
        """The bound port.

        :raises RuntimeError: not started.
        """
        if self._port is None:
            raise RuntimeError("the API server is not started")
        return self._port

    @property
    def scheme(self) -> str:
        return "http" if self.config.plaintext else "https"

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{self.port}"

    @property
    def public_url(self) -> str:
        """The URL devices and clients should use: ``public_host`` if configured, else the
        bound host (``localhost`` for a wildcard address).

        :raises RuntimeError: not started.
        """
        host = self.config.public_host or self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "localhost"
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{self.port}"

    async def start(self) -> None:
        """Bind the socket and build the application; :meth:`run` serves.

        :raises OSError: the address is in use or cannot be bound, or the metrics token
            file cannot be read or created.
        :raises bastion.metrics.ScrapeTokenError: the metrics token file is exposed to
            others or holds no token.
        """
        config = self.config
        loop = asyncio.get_running_loop()
        if config.emulator:
            log.warning("API emulator mode: any SigV4 credentials are accepted on %s",
                        config.host)
        elif self._credentials is None:
            log.warning("API has no access keys configured: every request is refused")
        await asyncio.to_thread(self._services.logging_options.load)
        gateway = Gateway(self._broker, loop, self._services, config)
        services = ServiceDirectory(self._services, per_region=config.emulator)
        self.application = ApiApplication(
            gateway=gateway, services=services, credentials=self._credentials,
            trail=self._trail, emulator=config.emulator,
            account_id=self._plane.account.account_id, publish=self._publish,
            files=self._files, body_timeout=config.body_timeout,
            readiness=self._readiness, metrics=self._metrics, calls=self.calls,
            sessions=self._services.temporary_credentials, threats=self._services.threats,
            console=self.console)
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.load)
        tls = None if config.plaintext else await asyncio.to_thread(server_ssl_context,
                                                                   self._datadir)
        if config.plaintext:
            log.warning("API serving plain HTTP on %s (loopback only)", config.host)
        sock = _bind(config.host, config.port)
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        uv_config = uvicorn.Config(
            self.application, interface="asgi3", ws="none", lifespan="off",
            http=guarded_h11_protocol(SourceCounts(config.max_connections_per_source),
                                      config.header_timeout,
                                      on_refusal=self.application.record_unparsed),
            log_config=None, log_level="warning", access_log=False, proxy_headers=False,
            server_header=False, timeout_graceful_shutdown=int(SHUTDOWN_TIMEOUT))
        uv_config.load()
        uv_config.ssl = tls
        self._server = _Server(uv_config)
        self._served = asyncio.Event()
        self._services.files.base_url = self.public_url  # presigned URLs name the API
        log.info("API listening on %s", self.url)

    async def run(self) -> None:
        """Serve until :meth:`stop` (connections that arrive before this runs wait in the
        socket's backlog)."""
        server, sock = self._server, self._socket
        if server is None or sock is None:
            raise RuntimeError("the API server is not started")
        try:
            await server.serve(sockets=[sock])
        finally:
            self._served.set()

    async def stop(self) -> None:
        """Stop serving: requests in flight get a few seconds to finish, idle keep-alive
        connections are cut at once."""
        if self.console is not None:
            self.console.close()
        server = self._server
        if server is not None:
            server.should_exit = True
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SHUTDOWN_TIMEOUT
            while (server.started and server.server_state.tasks and loop.time() < deadline
                   and not self._served.is_set()):
                await asyncio.sleep(0.01)
            server.force_exit = True
            for connection in list(server.server_state.connections):
                abort = getattr(getattr(connection, "transport", None), "abort", None)
                if callable(abort):  # asyncio's or uvloop's (TLS) transport
                    abort()
            if server.started:
                try:
                    await asyncio.wait_for(self._served.wait(), SHUTDOWN_TIMEOUT + 1)
                except TimeoutError:
                    log.warning("the API server did not stop in time; cancelling it")
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._server = None


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
