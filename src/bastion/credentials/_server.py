"""The credentials provider's listener: HTTPS with mutual TLS, one request per connection.

Theory of operation
-------------------
AWS serves its credentials provider on an endpoint of its own; Bastion does the same, on
``[credentials] host``/``port``, because the REST API's port does not ask for client
certificates (its callers sign with SigV4). The TLS context comes from the device trust
(Bastion's CA and every ACTIVE registered CA, followed live — the MQTT listeners'
anchors) and *requires* a client certificate: a connection without one, or with one
from another CA, ends in the handshake, before any HTTP.

Each connection carries one request, parsed with h11 (sans-IO: bytes in, events out)
within ``request_timeout`` seconds of the handshake: ``GET
/role-aliases/<alias>/credentials`` with an optional ``x-amzn-iot-thingname`` header. The
decision is :class:`~._provider.CredentialsProvider`'s; the answer is JSON, as AWS's:
``{"credentials": {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}}``,
or ``{"message": …}`` with the error type in ``x-amzn-ErrorType``. Then the connection
closes (``Connection: close``); a device asks once an hour, not once a second.

Every request that reaches HTTP is trailed as ``iot:AssumeRoleWithCertificate`` with the
role alias, the thing and the certificate id — and, when credentials were issued, their
access key id, which every later API call signed with them shows too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Final, Protocol

import h11

from bastion.broker import Principal
from bastion.lifecycle import Component

from ._provider import THING_NAME_HEADER, CredentialsProvider, ProviderError

log = logging.getLogger("bastion.credentials")

PATH_PREFIX: Final = "/role-aliases/"
PATH_SUFFIX: Final = "/credentials"
SERVICE: Final = "iot"
OPERATION: Final = "AssumeRoleWithCertificate"
HANDSHAKE_TIMEOUT: Final = 10.0
MAX_BODY: Final = 16 * 1024
_READ_SIZE: Final = 16 * 1024


class CallRecorder(Protocol):
    """Where each request is recorded (the API's trail sink fits)."""

    def record(self, *, caller: None, access_key_id: str, source_ip: str, service: str,
               operation: str, parameters: Mapping[str, object], outcome: str,
               error_code: str | None, http_status: int) -> None: ...


class _BadRequest(Exception):
    pass


class CredentialsServer(Component):
    """The credentials provider's HTTPS listener (see the module docstring).

    :param host: the address to bind.
    :param port: the port (0: any free one).
    :param context: builds the mutual-TLS server context when the server starts.
    :param provider: decides and issues.
    :param trail: records every request.
    :param request_timeout: seconds from the handshake to the end of the request.
    """

    name = "credentials-provider"

    def __init__(self, *, host: str, port: int, context: Callable[[], ssl.SSLContext],
                 provider: CredentialsProvider, trail: CallRecorder,
                 request_timeout: float = 10.0) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"credentials port {port} is out of range")
        if not 0 < request_timeout <= 3600:
            raise ValueError("request_timeout must be between 0 and 3600 seconds")
        self._host = host
        self._port = port
        self._context = context
        self._provider = provider
        self._trail = trail
        self._timeout = request_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port.

        :raises RuntimeError: not started.
        """
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the credentials provider is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``https://<host>:<port>`` (``localhost`` for a wildcard address)."""
        host = "localhost" if self._host in ("0.0.0.0", "::", "") else self._host
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{self.port}"

    async def start(self) -> None:
        """Bind and serve.

        :raises OSError: the address is in use or cannot be bound.
        """
        context = self._context()
        context.set_alpn_protocols(["http/1.1"])
        self._server = await asyncio.start_server(
            self._connection, self._host, self._port, ssl=context,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT, reuse_address=True,
            family=socket.AF_UNSPEC)
        log.info("credentials provider listening on %s", self.url)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    # -- one connection -----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as error:
            log.debug("credentials provider connection ended: %s", error)
        finally:
            self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:  # CERT_REQUIRED: the handshake refused it already
            return
        principal = Principal.from_certificate(der, str(peer[0]), int(peer[1]))
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
        try:
            async with asyncio.timeout(self._timeout):
                request = await _read_request(reader, connection)
        except TimeoutError:
            await _send(writer, connection, 408, {"message": "Request timed out"},
                        "RequestTimeoutException")
            return
        except (_BadRequest, h11.RemoteProtocolError):
            await _send(writer, connection, 400, {"message": "Malformed request"},
                        "InvalidRequestException")
            return
        await self._answer(writer, connection, request, principal)

    async def _answer(self, writer: asyncio.StreamWriter, connection: h11.Connection,
                      request: h11.Request, principal: Principal) -> None:
        target = request.target.decode("latin-1").split("?", 1)[0]
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in request.headers}
        thing_name = headers.get(THING_NAME_HEADER)
        if not (target.startswith(PATH_PREFIX) and target.endswith(PATH_SUFFIX)
                and len(target) > len(PATH_PREFIX) + len(PATH_SUFFIX)):
            await _send(writer, connection, 404, {"message": "Not Found"},
                        "ResourceNotFoundException")
            return
        alias = urllib.parse.unquote(target[len(PATH_PREFIX):-len(PATH_SUFFIX)])
        parameters: dict[str, object] = {"roleAlias": alias, "thingName": thing_name,
                                         "certificateId": principal.certificate_id}
        if request.method != b"GET":
            await _send(writer, connection, 405, {"message": "Use GET"},
                        "MethodNotAllowedException")
            await self._record(principal, parameters, "", "error",
                               "MethodNotAllowedException", 405)
            return
        try:
            issued = await self._provider.credentials(principal, alias, thing_name)
        except ProviderError as refused:
            log.info("credentials for role alias %r refused to certificate %s (thing %s): "
                     "%s", alias, principal.certificate_id, thing_name or "-", refused.message)
            await _send(writer, connection, refused.http_status, {"message": refused.message},
                        refused.error_type)
            await self._record(principal, parameters, "", "denied", refused.error_type,
                               refused.http_status)
            return
        credentials = issued.credentials
        body = {"credentials": {
            "accessKeyId": credentials.access_key_id,
            "secretAccessKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
            "expiration": credentials.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }}
        await _send(writer, connection, 200, body, None)
        await self._record(principal, parameters, credentials.access_key_id, "allowed",
                           None, 200)

    async def _record(self, principal: Principal, parameters: Mapping[str, object],
                      access_key_id: str, outcome: str, error_code: str | None,
                      status: int) -> None:
        try:
            await asyncio.to_thread(
                self._trail.record, caller=None, access_key_id=access_key_id,
                source_ip=principal.source_ip, service=SERVICE, operation=OPERATION,
                parameters=parameters, outcome=outcome, error_code=error_code,
                http_status=status)
        except Exception:
            log.exception("the trail refused a record of %s:%s", SERVICE, OPERATION)


async def _read_request(reader: asyncio.StreamReader, connection: h11.Connection
                        ) -> h11.Request:
    """The request, once its whole body (ignored, at most :data:`MAX_BODY` bytes) is in.

    :raises _BadRequest: the peer closed early or sent too much.
    :raises h11.RemoteProtocolError: not HTTP/1.1.
    """
    request: h11.Request | None = None
    size = 0
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(_READ_SIZE)
            connection.receive_data(data)
            if not data and connection.their_state is not h11.DONE:
                raise _BadRequest("connection closed mid-request")
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:
                raise _BadRequest("body too large")
        elif isinstance(event, h11.EndOfMessage):
            if request is None:
                raise _BadRequest("no request")
            return request
        elif isinstance(event, h11.ConnectionClosed):
            raise _BadRequest("connection closed")


async def _send(writer: asyncio.StreamWriter, connection: h11.Connection, status: int,
                body: Mapping[str, object], error_type: str | None) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = [("content-type", "application/json"),
               ("content-length", str(len(payload))),
               ("cache-control", "no-store"),
               ("connection", "close"),
               ("x-amzn-requestid", str(uuid.uuid4()))]
    if error_type is not None:
        headers.append(("x-amzn-errortype", error_type))
    try:
        data = connection.send(h11.Response(status_code=status, headers=headers))
        data = (data or b"") + (connection.send(h11.Data(data=payload)) or b"")
        data += connection.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:  # the request was not parsed: answer anyway
        reason = b"Bad Request" if status == 400 else b"Request Timeout"
        data = (b"HTTP/1.1 %d %s\r\n" % (status, reason)
                + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers)
                + b"\r\n" + payload)
    writer.write(data)
    await writer.drain()
