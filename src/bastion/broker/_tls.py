"""TLS for the broker's listeners, run on a plain TCP transport with ``ssl.SSLObject``.

Theory of operation
-------------------
asyncio's and uvloop's TLS transports are general: they buffer plaintext in their own
read buffer (CPython: 256 KiB per connection unless told otherwise; uvloop: a large
buffer allocated on reads), keep write backlogs, flow-control both directions and run a
shutdown state machine. A broker holds tens of thousands of mostly idle connections that
exchange small packets, so it pays for that generality in memory per connection and in
Python calls per message.

:class:`TLSStream` is the smallest thing that is still correct: a plain TCP
``asyncio.Protocol`` that owns one ``SSLObject`` between two ``MemoryBIO``\\ s. Ciphertext
from the socket goes into the incoming BIO; every decrypted record of that read is
joined and handed to the application protocol in one ``data_received`` call. What the
application writes is encrypted at once and handed to the TCP transport, which does the
socket buffering (and its flow control reaches the application unchanged). OpenSSL does
the cryptography, certificate verification, ALPN and key updates; nothing here parses
TLS. The stream is the application's transport: it answers ``get_extra_info`` with
``ssl_object``, ``peercert`` and the socket's details like asyncio's TLS transport; behind
a load balancer its ``peername`` is the client's, as the PROXY header gave it (see
``_proxy.py``), not the socket's.

Lifecycle: the handshake must finish within ``handshake_timeout`` or the socket is cut;
a failed handshake (no certificate, unknown CA, expired, old protocol version) sends
OpenSSL's alert and closes without ever creating the application protocol. ``close()``
sends ``close_notify`` and lets the TCP transport flush; a peer's ``close_notify`` closes
the stream, and a TCP EOF without one aborts it (the records may have been truncated).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("bastion.broker.tls")

HandshakeFailures = dict[str, int]
"""Failed handshakes by reason (:func:`handshake_failure_reason`), shared by a node's
listeners and read by ``/metrics``."""

_VERIFY_REASONS: Final = {
    9: "certificate_not_yet_valid",
    10: "certificate_expired",
    2: "unknown_ca", 18: "unknown_ca", 19: "unknown_ca", 20: "unknown_ca", 21: "unknown_ca",
    23: "certificate_revoked",
}
"""OpenSSL's X509_V_ERR_* codes of a client certificate's verification, named."""


def handshake_failure_reason(exc: Exception | None) -> str:
    """A short, bounded label for why a handshake failed: ``timeout`` (``exc`` is
    ``None``), a client certificate's verification (``certificate_expired``,
    ``unknown_ca``, …), else OpenSSL's reason in lower case (``no_shared_cipher``,
    ``peer_did_not_return_a_certificate``, ``unexpected_eof_while_reading``, …)."""
    if exc is None:
        return "timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_REASONS.get(exc.verify_code, "certificate_verify_failed")
    reason = getattr(exc, "reason", None)
    return reason.lower() if isinstance(reason, str) and reason else "other"

_READ_SIZE = 16 * 1024 + 256
"""At most one TLS record's plaintext comes out of one ``SSLObject.read``."""


class TLSStream(asyncio.Protocol):
    """Server-side TLS over one accepted TCP connection; the application's transport."""

    __slots__ = ("_app", "_app_factory", "_closing", "_failures", "_in", "_loop", "_out",
                 "_peername", "_read_paused", "_ssl", "_tcp", "_timer")

    def __init__(self, context: ssl.SSLContext,
                 app_factory: Callable[[], asyncio.Protocol],
                 handshake_timeout: float, *, peername: tuple[Any, ...] | None = None,
                 failures: HandshakeFailures | None = None) -> None:
        """
        :param peername: the client's address when it is not the socket's peer (a PROXY
            header's source); ``get_extra_info("peername")`` answers it.
        :param failures: counts each failed handshake by its reason.
        """
        self._peername = peername
        self._failures = failures
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_side=True)
        self._app_factory: Callable[[], asyncio.Protocol] | None = app_factory
        self._app: asyncio.Protocol | None = None
        self._tcp: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            handshake_timeout, self._handshake_timed_out)
        self._closing = False
        self._read_paused = False

    # -- TCP side (asyncio.Protocol) --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._in.write(data)
        if self._app is None:
            self._handshake()
        elif not self._read_paused:
            self._read_records()

    def eof_received(self) -> bool:
        self._in.write_eof()
        if self._app is not None and not self._closing and not self._read_paused:
            self._read_records()  # whatever complete records came before the FIN
        return False  # the TCP transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._cancel_timer()
        app, self._app = self._app, None
        self._app_factory = None
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()

    # -- TLS ----------------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_out()
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._handshake_failed(exc)
            return
        self._flush_out()
        self._cancel_timer()
        factory, self._app_factory = self._app_factory, None
        assert factory is not None
        self._app = app = factory()
        app.connection_made(self)  # type: ignore[arg-type]
        if not self._closing and not self._read_paused:
            self._read_records()  # application data that came with the client's Finished

    def _count_failure(self, exc: Exception | None) -> None:
        failures = self._failures
        if failures is not None:
            reason = handshake_failure_reason(exc)
            failures[reason] = failures.get(reason, 0) + 1

    def _handshake_failed(self, exc: Exception) -> None:
        self._count_failure(exc)
        log.info("TLS handshake with %s failed: %s", self.get_extra_info("peername"), exc)
        self._flush_out()  # OpenSSL's alert tells the client why
        self._closing = True
        self._cancel_timer()
        if self._tcp is not None:
            self._tcp.close()

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._app is None and self._tcp is not None:
            self._count_failure(None)
            log.info("TLS handshake with %s timed out", self.get_extra_info("peername"))
            self._closing = True
            self._tcp.abort()

    def _read_records(self) -> None:
        # SSLObject.read is only called while there is ciphertext to read: OpenSSL
        # allocates its ~17 KB record buffer on every read and frees it (with
        # SSL_MODE_RELEASE_BUFFERS, which CPython sets) only once a record has been
        # consumed, so a read of an empty BIO would pin that buffer to an idle connection.
        ssl_object, incoming, chunks = self._ssl, self._in, []
        eof = False
        while incoming.pending or ssl_object.pending() or incoming.eof:
            try:
                chunk = ssl_object.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # close_notify
                eof = True
                break
            except ssl.SSLEOFError:
                # TCP closed without close_notify: how most MQTT clients end a connection
                # (after their DISCONNECT, or not). Aborted as the docstring says, but not
                # logged as a TLS error: whether the MQTT session ended cleanly is the
                # connection's to judge (a will, the lifecycle event's reason).
                log.debug("%s closed TCP without close_notify",
                          self.get_extra_info("peername"))
                self.abort()
                return
            except ssl.SSLError as exc:  # bad record MAC, unexpected EOF, ...
                log.info("TLS error from %s: %s", self.get_extra_info("peername"), exc)
                self._flush_out()
                self.abort()
                return
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        if self._out.pending:  # key updates, alerts
            self._flush_out()
        app = self._app
        if chunks and app is not None:
            app.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if eof and not self._closing:
            self.close()

    def _flush_out(self) -> None:
        if self._out.pending and self._tcp is not None:
            self._tcp.write(self._out.read())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the application's transport ------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._closing or not data:
            return
        try:
            self._ssl.write(data)
        except ssl.SSLError as exc:
            log.info("TLS write to %s failed: %s", self.get_extra_info("peername"), exc)
            self.abort()
            return
        self._flush_out()

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        """Send ``close_notify`` and close once the TCP transport has flushed."""
        if self._closing:
            return
        self._closing = True
        try:
            self._ssl.unwrap()
        except ssl.SSLError:  # not waiting for the peer's close_notify
            pass
        self._flush_out()
        if self._tcp is not None:
            self._tcp.close()

    def abort(self) -> None:
        self._closing = True
        if self._tcp is not None:
            self._tcp.abort()

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        if not self._read_paused:
            self._read_paused = True
            if self._tcp is not None:
                self._tcp.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            if self._tcp is not None and not self._closing:
                self._tcp.resume_reading()
                # Records decrypted-ready in the BIO while paused are not waiting on the
                # socket: deliver them now.
                if self._in.pending or self._ssl.pending():
                    self._loop.call_soon(self._resume_records)

    def _resume_records(self) -> None:
        if not self._closing and not self._read_paused and self._app is not None:
            self._read_records()

    def get_write_buffer_size(self) -> int:
        return self._tcp.get_write_buffer_size() if self._tcp is not None else 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._ssl
        if name == "sslcontext":
            return self._ssl.context
        if name == "peercert":
            return self._ssl.getpeercert()
        if name == "cipher":
            return self._ssl.cipher()
        if name == "compression":
            return self._ssl.compression()
        if name == "peername" and self._peername is not None:
            return self._peername
        return self._tcp.get_extra_info(name, default) if self._tcp is not None else default
