"""The broker's listeners as one component: the TLS context that follows the registry's
CAs, and every MQTT listener the configuration asks for."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from ..broker import Broker, ListenerConfig, ProxyTrust, bound_port, start_listener
from ..config import MQTTConfig
from ..controlplane import ControlPlane
from ..datadir import DataDir, server_ssl_context_for
from ..events import EventBus
from ..lifecycle import Component
from ..registry import CaCertificateRegistered, CaCertificateStatus, CaCertificateStatusChanged
from ._model import BoundListener

log = logging.getLogger("bastion")


class Listeners(Component):
    """Binds the MQTT listeners; on stop, disconnects every client and closes them.

    Device certificates are checked in the TLS handshake against Bastion's CA and every
    ACTIVE CA in the registry; a CA that becomes ACTIVE later is added to the live
    context (new handshakes see it at once). A CA that leaves ACTIVE stays in the TLS
    store, but its devices are refused at CONNECT and dropped live: the registry is the
    authority, TLS only a first gate.
    """

    name = "mqtt-listeners"

    def __init__(self, broker: Broker, config: MQTTConfig, datadir: DataDir,
                 plane: ControlPlane, bus: EventBus) -> None:
        self._broker = broker
        self._config = config
        self._datadir = datadir
        self._plane = plane
        self._bus = bus
        self._tls: ssl.SSLContext | None = None
        self._servers: list[asyncio.Server] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self.bound: list[BoundListener] = []

    async def start(self) -> None:
        mqtt = self._config
        self._unsubscribe = [
            self._bus.subscribe(CaCertificateRegistered, self._trust_changed),
            self._bus.subscribe(CaCertificateStatusChanged, self._trust_changed),
        ]
        self._tls = server_ssl_context_for(self._datadir,
                                           extra_trusted_ca_pems=await self._active_ca_pems(),
                                           session_tickets=mqtt.tls_session_tickets)
        # Behind a load balancer, both TLS listeners take only its connections, each with a
        # PROXY v2 header; the plaintext one (loopback, opt-in) is never behind one.
        proxy = ProxyTrust.parse(mqtt.proxy_trusted) if mqtt.proxy_protocol else None
        if proxy is not None:
            log.info("MQTT TLS listeners expect PROXY v2 headers from %s",
                     ", ".join(map(str, proxy.networks)))
        wanted = [ListenerConfig("mqtts", mqtt.host, mqtt.port, self._tls, proxy)]
        if mqtt.alpn_port:
            wanted.append(ListenerConfig("mqtts-alpn", mqtt.host, mqtt.alpn_port, self._tls,
                                         proxy))
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
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        for server in self._servers:
            server.close()
        await self._broker.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    def _trust_changed(self, event: CaCertificateRegistered | CaCertificateStatusChanged
                       ) -> None:
        status = event.status if isinstance(event, CaCertificateRegistered) else event.new
        # Before start() has the context, every ACTIVE CA is collected by _active_ca_pems.
        if status is CaCertificateStatus.ACTIVE and self._tls is not None:
            self._broker.spawn(self._trust_ca(event.ca_certificate_id))

    async def _trust_ca(self, ca_certificate_id: str) -> None:
        record = await asyncio.to_thread(self._plane.identity.describe_ca_certificate,
                                         ca_certificate_id)
        if self._tls is not None and record.status is CaCertificateStatus.ACTIVE:
            self._tls.load_verify_locations(cadata=record.certificate_pem)
            log.info("now trusting CA %s for device certificates", ca_certificate_id)

    async def _active_ca_pems(self) -> list[str]:
        identity = self._plane.identity

        def collect() -> list[str]:
            pems: list[str] = []
            token: str | None = None
            while True:
                page, token = identity.list_ca_certificates(next_token=token)
                pems.extend(r.certificate_pem for r in page
                            if r.status is CaCertificateStatus.ACTIVE)
                if not token:
                    return pems
        return await asyncio.to_thread(collect)
