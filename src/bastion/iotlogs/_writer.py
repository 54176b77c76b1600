"""Where log entries go: a size-rotated JSON-lines file and, optionally, syslog.

Theory of operation
-------------------
:meth:`EntryWriter.put` is called on the broker's event loop: it only appends the entry
(a dict) to a bounded queue, and when the queue is full the entry is dropped and counted
(:attr:`EntryWriter.dropped`, logged at most once a minute) — a slow disk never slows the
message path. One writer thread takes the entries, encodes each as one line of JSON and
hands it to the handlers: a :class:`logging.handlers.RotatingFileHandler` (the file is
renamed to ``.1``, ``.2`` … past ``max_bytes``) and a
:class:`logging.handlers.SysLogHandler` (UDP ``host:port`` or a local socket path), with
the syslog severity of the entry's ``logLevel``. The handlers are used directly, never
through the ``logging`` tree: Bastion's own log levels do not filter IoT logs.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

log = logging.getLogger("bastion.iotlogs")

DROP_LOG_INTERVAL: Final = 60.0
_STOP: Final = object()
_SEVERITY: Final = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
                    "ERROR": logging.ERROR}
_FACILITIES: Final = logging.handlers.SysLogHandler.facility_names


def syslog_handler(address: str, facility: str) -> logging.handlers.SysLogHandler:
    """A syslog handler for ``host:port`` (UDP) or a socket path.

    :raises ValueError: unknown facility, or a port that is not a number.
    """
    if facility not in _FACILITIES:
        raise ValueError(f"unknown syslog facility {facility!r}")
    target: str | tuple[str, int]
    if address.startswith("/"):
        target = address
    else:
        host, _, port = address.rpartition(":")
        target = (host.strip("[]"), int(port))
    handler = logging.handlers.SysLogHandler(address=target, facility=_FACILITIES[facility],
                                             socktype=socket.SOCK_DGRAM)
    handler.ident = "bastion-iot: "
    handler.append_nul = False  # one JSON document per datagram, nothing after it
    return handler


class EntryWriter:
    """A bounded queue of entries and the thread that writes them (module docstring).

    :param path: the JSON-lines file (its directory is created).
    :param syslog: ``host:port`` or a socket path; empty: no syslog.
    """

    def __init__(self, path: Path, *, max_bytes: int, files_kept: int, queue_size: int,
                 syslog: str = "", syslog_facility: str = "user") -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._files_kept = files_kept
        self._syslog = syslog
        self._facility = syslog_facility
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._handlers: list[logging.Handler] = []
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._drop_logged = 0.0

    def start(self) -> None:
        """Open the file (and syslog) and start the writer thread.

        :raises OSError: the file cannot be opened.
        :raises ValueError: a bad syslog address or facility.
        """
        handlers: list[logging.Handler] = []
        if self._syslog:  # first: a bad address leaves no file open
            handlers.append(syslog_handler(self._syslog, self._facility))
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handlers.insert(0, logging.handlers.RotatingFileHandler(
                self.path, maxBytes=self._max_bytes, backupCount=self._files_kept,
                encoding="utf-8"))
        except OSError:
            for handler in handlers:
                handler.close()
            raise
        for handler in handlers:
            handler.setFormatter(logging.Formatter("%(message)s"))
        self._handlers = handlers
        self._thread = threading.Thread(target=self._run, name="iot-logs", daemon=True)
        self._thread.start()

    def put(self, entry: Mapping[str, Any]) -> None:
        """Queue ``entry`` for writing; drop (and count) it when the queue is full.
        Never blocks, never raises."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
            now = time.monotonic()
            if now - self._drop_logged >= DROP_LOG_INTERVAL:
                self._drop_logged = now
                log.warning("IoT logs: the writer is behind; %d entries dropped so far "
                            "(see [iot_logs] queue_size)", self.dropped)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every entry queued so far is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, stop the thread, close the file."""
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                continue
        thread.join(max(0.0, deadline - time.monotonic()))
        for handler in self._handlers:
            handler.close()
        self._handlers = []

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, Mapping)
                self._write(item)
            finally:
                self._queue.task_done()

    def _write(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False, default=str)
        record = logging.LogRecord("bastion.iotlogs", _SEVERITY.get(
            str(entry.get("logLevel")), logging.INFO), "", 0, line, None, None)
        for handler in self._handlers:
            try:
                handler.emit(record)
            except Exception:  # noqa: BLE001 - the writer thread must go on
                self.failed += 1
        self.written += 1
