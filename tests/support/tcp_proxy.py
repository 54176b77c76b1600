"""A TCP forwarder that a test can turn into a black hole: a network partition between one
process and a server, without touching anyone else's connections."""

from __future__ import annotations

import socket
import threading


class Partitionable:
    """Forwards ``127.0.0.1:<port>`` to ``target``. :meth:`cut` makes every byte vanish
    (connections stay open and silent, as across a partition); :meth:`heal` forwards
    again (from new connections: what was sent meanwhile is lost, as it would be)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._cut = threading.Event()
        self._down = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()

    def down(self) -> None:
        """Refuse: every connection is closed, and each new one at once (a server that
        is down, rather than one behind a partition)."""
        self._down.set()
        self.heal()

    def up(self) -> None:
        self._down.clear()

    def heal(self) -> None:
        """Forward again; the connections of the partition are closed (their peers find
        out and reconnect)."""
        with self._lock:
            stale, self._sockets = self._sockets, []
        self._cut.clear()
        for sock in stale:
            _close(sock)

    def close(self) -> None:
        self._closed.set()
        _close(self._server)
        self.heal()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._down.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            if self._cut.is_set():
                continue  # into the black hole
            try:
                sink.sendall(data)
            except OSError:
                break
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
