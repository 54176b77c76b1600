"""Composition root: builds the broker and its listeners from a config and a data directory.

Nothing else wires services together. ``bastion serve`` calls :func:`run`; tests use
:class:`App` directly inside their own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from .broker import Broker, ListenerConfig, bound_port, start_listener
from .config import Config
from .datadir import DataDir, server_ssl_context_for

log = logging.getLogger("bastion")


@dataclass(frozen=True, slots=True)
class BoundListener:
    name: str
    host: str
    port: int
    tls: bool


class App:
    """A running Bastion: the broker plus its listeners."""

    def __init__(self, config: Config, datadir: DataDir) -> None:
        self.config = config
        self.datadir = datadir
        self.broker = Broker(limits=config.limits)
        self.listeners: list[BoundListener] = []
        self._servers: list[asyncio.Server] = []
        self._tls: ssl.SSLContext | None = None

    async def start(self) -> None:
        """Bind every configured listener.

        :raises OSError: a port is in use.
        """
        mqtt = self.config.mqtt
        self._tls = server_ssl_context_for(self.datadir)
        wanted = [ListenerConfig("mqtts", mqtt.host, mqtt.port, self._tls)]
        if mqtt.alpn_port:
            wanted.append(ListenerConfig("mqtts-alpn", mqtt.host, mqtt.alpn_port, self._tls))
        if mqtt.plaintext_port:
            log.warning("plaintext MQTT listener enabled on %s:%d (no client authentication)",
                        mqtt.plaintext_host, mqtt.plaintext_port)
            wanted.append(ListenerConfig("mqtt-plaintext", mqtt.plaintext_host,
                                         mqtt.plaintext_port, None))
        try:
            for listener in wanted:
                server = await start_listener(self.broker, listener)
                self._servers.append(server)
                self.listeners.append(BoundListener(listener.name, listener.host,
                                                    bound_port(server), listener.tls is not None))
        except BaseException:
            await self.stop()
            raise

    def port(self, name: str = "mqtts") -> int:
        for listener in self.listeners:
            if listener.name == name:
                return listener.port
        raise KeyError(name)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        await self.broker.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def run(config: Config, datadir: DataDir, on_ready: Callable[[App], None]) -> None:
    """Run until SIGINT/SIGTERM, on uvloop when available."""

    async def main() -> None:
        app = App(config, datadir)
        await app.start()
        on_ready(app)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            await app.stop()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(main())
    else:
        uvloop.run(main())
