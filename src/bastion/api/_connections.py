"""The API's connections below HTTP: a cap per source address, a deadline on headers,
and a record of every request refused down here.

Theory of operation
-------------------
uvicorn builds one protocol object per accepted connection (after the TLS handshake,
for HTTPS). Its h11 protocol times out only an *idle* keep-alive connection; a client
that connects and sends nothing, or sends a request line and then one header byte a
minute, is kept forever. And nothing stops one address from opening thousands of
connections. Both are connection matters the ASGI application never sees (it is called
once the headers are complete), so they live here, in a small subclass of uvicorn's
:class:`~uvicorn.protocols.http.h11_impl.H11Protocol` that :class:`~._server.ApiServer`
passes as uvicorn's ``http`` class (:func:`guarded_h11_protocol`). The subclass adds two
things and changes nothing else:

- **Per-source cap** — ``connection_made`` asks :class:`SourceCounts` to admit the peer's
  address. Past the cap the connection is answered at once, before anything is read,
  ``429 ThrottlingException`` in AWS's error shape with ``connection: close``, and
  closed; it never reaches uvicorn (not in its connection set, nothing parsed). An
  admitted connection is released in ``connection_lost``, which asyncio calls exactly
  once per transport.
- **Header deadline** — from ``connection_made``, and again from the first byte of each
  later request on a kept-alive connection, the request's headers must be complete
  within ``header_timeout`` seconds. The timer is armed while h11 still waits for a
  request (the client's state is ``IDLE``) and cancelled as soon as a request is parsed.
  When it fires, the peer gets ``408 RequestTimeoutException`` (which it may not read if
  it is still sending) and the connection is closed. Data arriving does not extend the
  deadline, so trickling bytes does not keep a connection open.

And one thing it only watches: a request that h11 cannot parse (a bad request line, a
malformed header, headers too large) is answered by uvicorn itself, ``400`` in plain
text, and the connection closed; the subclass keeps h11's reason for it, without the
bytes h11 quotes in it (a malformed header line may hold a secret).

Each of these refusals — 429, the header deadline's 408, the malformed request's 400 —
is handed to the bound :data:`RefusalSink` as a :class:`Refusal` (the source address,
the status, the AWS error type answered if any, the reason; nothing of what was sent):
the application trails it (:meth:`~._app.ApiApplication.record_unparsed`). The sink runs
as a task among uvicorn's own request tasks, so a graceful shutdown waits for it.

The deadline on the *body* is the application's (:mod:`._app`): it can still answer in
AWS's error shape through the ASGI response. The TLS handshake is bounded by the event
loop's own handshake timeout (60 s), before this layer exists for the connection.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._errors import ApiError, request_timeout, throttled
from ._serialize import serialize_error

log = logging.getLogger("bastion.api")


MALFORMED_STATUS = 400
"""What uvicorn answers a request h11 cannot parse."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused below the application, before any of it was parsed.

    :ivar source_ip: the peer's address.
    :ivar http_status: the status answered.
    :ivar error_code: the AWS error type answered; ``None`` for uvicorn's plain 400.
    :ivar reason: why, in words (h11's for a malformed request).
    """

    source_ip: str
    http_status: int
    error_code: str | None
    reason: str


RefusalSink = Callable[[Refusal], Coroutine[Any, Any, None]]
"""Receives each :class:`Refusal` (it must not raise)."""


class SourceCounts:
    """Open connections per source address, at most ``limit`` each.

    :param limit: connections one address may hold open at once.
    :raises ValueError: ``limit`` is below 1.
    """

    __slots__ = ("_limit", "_open")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the connection limit per source must be >= 1, not {limit}")
        self._limit = limit
        self._open: Counter[str] = Counter()

    @property
    def limit(self) -> int:
        return self._limit

    def admit(self, source: str) -> bool:
        """Count one more connection from ``source``, unless it already holds ``limit``
        (then nothing is counted and the answer is ``False``)."""
        if self._open[source] >= self._limit:
            return False
        self._open[source] += 1
        return True

    def release(self, source: str) -> None:
        """Forget one admitted connection from ``source``.

        :raises ValueError: ``source`` holds no admitted connection (a double release).
        """
        held = self._open.get(source, 0)
        if held <= 0:
            raise ValueError(f"no open connection from {source!r} to release")
        if held == 1:
            del self._open[source]
        else:
            self._open[source] = held - 1

    def open_from(self, source: str) -> int:
        """How many admitted connections ``source`` holds."""
        return self._open.get(source, 0)


def early_response(error: ApiError) -> bytes:
    """A complete HTTP/1.1 response for ``error``, in AWS's error shape, that closes the
    connection: written straight to the transport, with no request parsed."""
    response = serialize_error(error)
    status = http.HTTPStatus(response.status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}",
             f"x-amzn-RequestId: {uuid.uuid4()}",
             f"content-length: {len(response.body)}",
             "connection: close"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


_QUOTED_BYTES: Final = re.compile(r"(?::\s*|\s+)(?:bytearray\()?b['\"]")


def without_quoted_bytes(message: str) -> str:
    """h11's error message without the bytes it quotes (``illegal header line:
    bytearray(b'…')`` → ``illegal header line``): what went wrong, not what was sent."""
    found = _QUOTED_BYTES.search(message)
    return (message if found is None else message[:found.start()]).strip()


class _ReasonKeepingConnection(h11.Connection):
    """h11's connection, keeping the error it raised on the peer's bytes (uvicorn answers
    it with a fixed message and drops it)."""

    remote_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> type[h11.NEED_DATA | h11.PAUSED] | h11.Event:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as error:
            self.remote_error = error
            raise


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the per-source cap and the header deadline, reporting
    every refusal (see the module docstring). Use :func:`guarded_h11_protocol` to bind it
    to a server's settings."""

    sources: ClassVar[SourceCounts]
    header_timeout: ClassVar[float]
    on_refusal: ClassVar[RefusalSink | None] = None

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        # h11's connection as uvicorn builds it, but keeping the reason of a refusal.
        limit = config.h11_max_incomplete_event_size
        self.conn = (_ReasonKeepingConnection(h11.SERVER) if limit is None else
                     _ReasonKeepingConnection(h11.SERVER, max_incomplete_event_size=limit))
        self._source = ""
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.sources.admit(source):
            log.warning("refusing an API connection from %s: it holds %d already",
                        source or "?", self.sources.limit)
            refused = throttled(f"Too many open connections from {source or 'this address'}"
                                f": at most {self.sources.limit}")
            transport.write(early_response(refused))
            transport.close()
            self._report(Refusal(source, refused.http_status, refused.aws_error_type,
                                 refused.message))
            return
        self._source, self._admitted = source, True
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_header_timer()  # a request has begun and is not complete
        else:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._cancel_header_timer()
        self.sources.release(self._source)
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.info("closing an API connection from %s: no complete request headers "
                 "within %g s", self._source or "?", self.header_timeout)
        self._unset_keepalive_if_required()
        try:
            self.conn.send(h11.ConnectionClosed())
        except h11.LocalProtocolError:
            pass
        refused = request_timeout(f"The request headers were not received within "
                                  f"{self.header_timeout:g} seconds")
        self.transport.write(early_response(refused))
        self.transport.close()
        self._report(Refusal(self._source, refused.http_status, refused.aws_error_type,
                             refused.message))

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse, reported with h11's reason."""
        error = getattr(self.conn, "remote_error", None)
        reason = (without_quoted_bytes(str(error)) if error is not None else "") or msg
        log.info("refusing a malformed HTTP request from %s: %s", self._source or "?",
                 reason)
        super().send_400_response(msg)
        self._report(Refusal(self._source, MALFORMED_STATUS, None,
                             f"Malformed HTTP request: {reason}"))

    def _report(self, refusal: Refusal) -> None:
        sink = type(self).on_refusal  # through the class: a function stays unbound
        if sink is None:
            return
        task = self.loop.create_task(sink(refusal))
        self.tasks.add(task)  # uvicorn's request tasks: a graceful shutdown waits for them
        task.add_done_callback(self.tasks.discard)


def guarded_h11_protocol(sources: SourceCounts, header_timeout: float, *,
                         on_refusal: RefusalSink | None = None) -> type[GuardedH11Protocol]:
    """:class:`GuardedH11Protocol` bound to one server's counts, header deadline and
    refusal sink (uvicorn instantiates the ``http`` class itself, so the settings ride on
    a subclass).

    :param on_refusal: receives every refusal made below the application; ``None``:
        they are only logged.
    :raises ValueError: ``header_timeout`` is not positive.
    :raises TypeError: ``on_refusal`` is not callable.
    """
    if not header_timeout > 0:
        raise ValueError(f"the header timeout must be > 0, not {header_timeout}")
    if on_refusal is not None and not callable(on_refusal):
        raise TypeError("on_refusal must be callable")

    class BoundGuardedH11Protocol(GuardedH11Protocol):
        pass

    BoundGuardedH11Protocol.sources = sources
    BoundGuardedH11Protocol.header_timeout = header_timeout
    BoundGuardedH11Protocol.on_refusal = on_refusal
    return BoundGuardedH11Protocol
