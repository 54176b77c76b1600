"""The broker's MQTT listeners as one component, on the TLS contexts of the device
trust (:mod:`._trust`)."""

from __future__ import annotations

import asyncio
import logging
import ssl

from ..broker import (
    Broker,
    ListenerConfig,
    ProxyTrust,
    UpgradeAuthenticator,
    bound_port,
    start_listener,
)
from ..config import MQTTConfig
from ..lifecycle import Component
from ..pki import DEFAULT_ALPN_PROTOCOLS
from ._domains import DomainRouting
from ._model import BoundListener
from ._trust import DeviceTrust

log = logging.getLogger("bastion")

WEBSOCKET_LISTENER = "mqtt-wss"
"""The name of the MQTT-over-WebSocket listener (``App.port(WEBSOCKET_LISTENER)``)."""


class Listeners(Component):
    """Binds the MQTT listeners; on stop, disconnects every client and closes them.

    Device certificates are checked in the TLS handshake against the CAs of the
    :class:`~._trust.DeviceTrust` (Bastion's CA and every ACTIVE registered CA, followed
    live); the registry decides the rest at CONNECT. With a :class:`~._domains.DomainRouting`,
    the server certificate and TLS policy follow the server name the client sends.
    """

    name = "mqtt-listeners"

    def __init__(self, broker: Broker, config: MQTTConfig, trust: DeviceTrust,
                 presigned: UpgradeAuthenticator | None = None,
                 domains: DomainRouting | None = None) -> None:
        self._broker = broker
        self._presigned = presigned
        self._config = config
        self._trust = trust
        self._domains = domains
        self._servers: list[asyncio.Server] = []
        self.bound: list[BoundListener] = []

    async def start(self) -> None:
        mqtt = self._config
        tls = self._trust.server_context(alpn_protocols=DEFAULT_ALPN_PROTOCOLS,
                                         session_tickets=mqtt.tls_session_tickets)
        if self._domains is not None:  # server names by SNI (domain configurations)
            self._domains.attach(tls)
        # Behind a load balancer, both TLS listeners take only its connections, each with a
        # PROXY v2 header; the plaintext one (loopback, opt-in) is never behind one.
        proxy = ProxyTrust.parse(mqtt.proxy_trusted) if mqtt.proxy_protocol else None
        if proxy is not None:
            log.info("MQTT TLS listeners expect PROXY v2 headers from %s",
                     ", ".join(map(str, proxy.networks)))
        wanted = [ListenerConfig("mqtts", mqtt.host, mqtt.port, tls, proxy)]
        if mqtt.alpn_port:
            wanted.append(ListenerConfig("mqtts-alpn", mqtt.host, mqtt.alpn_port, tls,
                                         proxy))
        if mqtt.websocket_port:
            wss = self._trust.server_context(alpn_protocols=["http/1.1"],
                                             session_tickets=mqtt.tls_session_tickets)
            wss.verify_mode = ssl.CERT_OPTIONAL  # a presigned URL may authenticate instead
            wanted.append(ListenerConfig(WEBSOCKET_LISTENER, mqtt.host, mqtt.websocket_port, wss,
                                         proxy, websocket=True, presigned=self._presigned))
        if mqtt.plaintext_port:
            log.warning("plaintext MQTT listener enabled on %s:%d (no client authentication)",
                        mqtt.plaintext_host, mqtt.plaintext_port)
            wanted.append(ListenerConfig("mqtt-plaintext", mqtt.plaintext_host,
                                         mqtt.plaintext_port, None))
        try:
            for listener in wanted:
                server = await start_listener(self._broker, listener)
                self._servers.append(server)
                self.bound.append(BoundListener(listener.name, listener.host,
                                                bound_port(server), listener.tls is not None))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self.bound.clear()  # readiness: not listening from now on
        for server in self._servers:
            server.close()
        await self._broker.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
