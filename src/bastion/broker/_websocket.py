"""MQTT over WebSocket Secure: the HTTP upgrade, then binary frames carrying MQTT bytes.

Theory of operation
-------------------
:class:`WebSocketStream` is the application protocol of one TLS connection of a WebSocket
listener (under :class:`~bastion.broker._tls.TLSStream`) and, once upgraded, the transport
of an ordinary :class:`~bastion.broker.MQTTConnection`: the MQTT machinery is the TCP
listeners', unchanged. The WebSocket protocol is wsproto's (sans-IO: bytes in, events out;
events in, bytes out); this module only routes.

Upgrade (one ``GET``; the HTTP request may not exceed h11's 16 KiB):

* the path must be ``/mqtt`` (else 404) and the client must offer the ``mqtt``
  subprotocol (else 400), as on AWS IoT;
* a request with SigV4 query parameters (``X-Amz-Signature``) is authenticated by the
  :class:`~bastion.broker.UpgradeAuthenticator` (the access key becomes the principal);
  reading pauses while it runs; a refusal answers its status (403) and closes;
* otherwise the client certificate of the TLS handshake is the principal (the listener
  asks for one but does not require it), as on the TCP listeners; no certificate and no
  signature: 403.

The upgrade must complete within ``upgrade_timeout`` seconds of the TLS handshake.

After ``101 Switching Protocols``: the payload of every binary frame goes to the MQTT
connection as it arrives (a frame may hold part of a packet or several; the MQTT parser
reassembles, and its maximum packet size bounds what a client can make the broker
hold); what the MQTT connection writes goes out as one binary frame per write. A text
frame is a protocol violation (close 1003); pings are answered; a close frame is
answered and the connection ends. ``close()`` sends a close frame (1000) before the TLS
``close_notify``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, Final
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ._plugs import KeyIdentity, UpgradeAuthenticator, UpgradeRefused

log = logging.getLogger("bastion.broker.websocket")

MQTT_PATH: Final = "/mqtt"
MQTT_SUBPROTOCOL: Final = "mqtt"
SIGNED_QUERY_MARKER: Final = "X-Amz-Signature"

Spawn = Callable[[Coroutine[Any, Any, Any]], object]
MakeConnection = Callable[[KeyIdentity | None], asyncio.Protocol]
"""Builds the MQTT connection of an upgraded stream; ``None``: a certificate principal."""


class WebSocketStream(asyncio.Protocol):
    """One WebSocket connection (see the module docstring)."""

    __slots__ = ("_app", "_authenticator", "_closing", "_loop", "_make", "_outer",
                 "_spawn", "_timer", "_ws")

    def __init__(self, make_connection: MakeConnection,
                 authenticator: UpgradeAuthenticator | None, spawn: Spawn,
                 upgrade_timeout: float) -> None:
        """
        :param authenticator: verifies presigned URLs; ``None``: only certificates.
        :param spawn: runs the authenticator's coroutine (the broker's ``spawn``).
        """
        self._make = make_connection
        self._authenticator = authenticator
        self._spawn = spawn
        self._ws = WSConnection(ConnectionType.SERVER)
        self._outer: asyncio.Transport | None = None
        self._app: asyncio.Protocol | None = None
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            upgrade_timeout, self._upgrade_timed_out)

    # -- the TLS stream's side (asyncio.Protocol) ---------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._outer = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._ws.receive_data(data)
        except RemoteProtocolError as error:
            self._violation(error)
            return
        self._pump()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._cancel_timer()
        app, self._app = self._app, None
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()

    # -- WebSocket events -------------------------------------------------------------------

    def _pump(self) -> None:
        try:
            for event in self._ws.events():
                if self._closing:
                    return
                self._handle(event)
        except RemoteProtocolError as error:
            self._violation(error)

    def _handle(self, event: Event) -> None:
        if isinstance(event, BytesMessage):
            if self._app is not None:
                self._app.data_received(bytes(event.data))
        elif isinstance(event, Request):
            self._upgrade(event)
        elif isinstance(event, Ping):
            self._send(event.response())
        elif isinstance(event, CloseConnection):
            if self._ws.state is ConnectionState.REMOTE_CLOSING:
                self._send(event.response())
            self._close_outer()
        elif isinstance(event, TextMessage):
            log.info("text frame from %s: closing", self._peer())
            self._close_with(CloseReason.UNSUPPORTED_DATA, "MQTT needs binary frames")

    def _upgrade(self, request: Request) -> None:
        target = urlsplit(request.target)
        if target.path != MQTT_PATH:
            self._reject(404, f"no WebSocket endpoint at {target.path}")
            return
        if MQTT_SUBPROTOCOL not in request.subprotocols:
            self._reject(400, "the 'mqtt' subprotocol is required")
            return
        if SIGNED_QUERY_MARKER in target.query:
            if self._authenticator is None:
                self._reject(403, "presigned URLs are not accepted on this listener")
                return
            headers = (("host", request.host),) + tuple(
                (bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
                for name, value in request.extra_headers)
            assert self._outer is not None
            self._outer.pause_reading()
            self._spawn(self._authenticate(request.target, headers))
            return
        ssl_object: ssl.SSLObject | None = self.get_extra_info("ssl_object")
        if ssl_object is None or not ssl_object.getpeercert(binary_form=True):
            self._reject(403, "sign the URL (SigV4) or present a client certificate")
            return
        self._accept(None)

    async def _authenticate(self, target: str, headers: tuple[tuple[str, str], ...]) -> None:
        assert self._authenticator is not None
        try:
            key = await self._authenticator.authenticate_upgrade(target, headers)
        except UpgradeRefused as refused:
            self._reject(refused.status, str(refused))
            return
        except Exception:
            log.exception("WebSocket upgrade from %s: authentication failed", self._peer())
            self._reject(500, "internal error")
            return
        if self._closing:
            return
        self._accept(key)
        if not self._closing and self._outer is not None:
            self._outer.resume_reading()
            self._pump()  # frames that came right behind the upgrade request

    def _accept(self, key: KeyIdentity | None) -> None:
        if self._closing:
            return
        self._cancel_timer()
        self._send(AcceptConnection(subprotocol=MQTT_SUBPROTOCOL))
        self._app = app = self._make(key)
        app.connection_made(self)  # type: ignore[arg-type]

    def _reject(self, status: int, reason: str) -> None:
        if self._closing:
            return
        log.info("WebSocket upgrade from %s refused (%d): %s", self._peer(), status, reason)
        body = reason.encode("utf-8", "replace")
        if self._ws.state is ConnectionState.CONNECTING:
            self._send(RejectConnection(
                status_code=status, has_body=True,
                headers=[(b"content-type", b"text/plain; charset=utf-8"),
                         (b"content-length", str(len(body)).encode("ascii"))]))
            self._send(RejectData(data=body))
        self._close_outer()

    def _violation(self, error: RemoteProtocolError) -> None:
        log.info("WebSocket protocol error from %s: %s", self._peer(), error)
        hint = error.event_hint
        if isinstance(hint, RejectConnection):
            self._reject(400, "bad WebSocket upgrade request")
        elif isinstance(hint, CloseConnection):
            self._close_with(hint.code, hint.reason or "")
        else:
            self._close_outer()

    def _close_with(self, code: int, reason: str) -> None:
        if self._ws.state is ConnectionState.OPEN:
            self._send(CloseConnection(code=code, reason=reason))
        self._close_outer()

    def _send(self, event: Event) -> None:
        if self._outer is None:
            return
        try:
            data = self._ws.send(event)
        except (LocalProtocolError, h11.LocalProtocolError) as error:  # closed, rejected
            log.debug("not sent to %s: %s", self._peer(), error)
            return
        self._outer.write(data)

    def _close_outer(self) -> None:
        self._cancel_timer()
        if self._outer is not None and not self._outer.is_closing():
            self._outer.close()
        self._closing = True

    def _upgrade_timed_out(self) -> None:
        self._timer = None
        if self._app is None and self._outer is not None and not self._closing:
            log.info("WebSocket upgrade from %s timed out", self._peer())
            self._closing = True
            self._outer.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _peer(self) -> object:
        return self.get_extra_info("peername")

    # -- the MQTT connection's transport --------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._closing or not data or self._ws.state is not ConnectionState.OPEN:
            return
        self._send(BytesMessage(data=data))

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        """Send a close frame (1000), then close the TLS stream."""
        if self._closing:
            return
        self._close_with(CloseReason.NORMAL_CLOSURE, "")

    def abort(self) -> None:
        self._closing = True
        self._cancel_timer()
        if self._outer is not None:
            self._outer.abort()

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        if self._outer is not None:
            self._outer.pause_reading()

    def resume_reading(self) -> None:
        if self._outer is not None and not self._closing:
            self._outer.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._outer.get_write_buffer_size() if self._outer is not None else 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._outer.get_extra_info(name, default) if self._outer is not None else default
