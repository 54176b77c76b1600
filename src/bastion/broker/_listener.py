"""Listeners: TCP (+TLS) servers that hand each accepted socket to an MQTTConnection
(directly, or through a WebSocket upgrade: ``_websocket.py``)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from ..mqtt import ServerLimits
from ._broker import Broker
from ._connection import MQTTConnection
from ._plugs import KeyIdentity, UpgradeAuthenticator
from ._proxy import PeerName, ProxyHeaderGate, ProxyTrust
from ._tls import TLSStream
from ._websocket import WebSocketStream


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One listener. With ``proxy``, it is behind a load balancer: only those balancers may
    connect, and each connection starts with a PROXY v2 header (TLS listeners only).

    With ``websocket``, MQTT runs over WebSocket (TLS required): each connection starts
    with an HTTP upgrade on ``/mqtt``, authenticated by a client certificate or, with
    ``presigned``, by a SigV4-presigned URL (``_websocket.py``).
    """

    name: str
    host: str
    port: int
    tls: ssl.SSLContext | None
    proxy: ProxyTrust | None = None
    websocket: bool = False
    presigned: UpgradeAuthenticator | None = None


def server_limits(broker: Broker) -> ServerLimits:
    limits = broker.limits
    return ServerLimits(
        max_packet_size=limits.max_packet_bytes,
        receive_maximum=limits.max_inflight_messages,
        topic_alias_maximum=limits.topic_alias_maximum,
        maximum_qos=limits.maximum_qos,
        min_keep_alive=limits.min_keep_alive,
        max_keep_alive=limits.max_keep_alive,
        max_session_expiry=limits.max_session_expiry,
    )


async def start_listener(broker: Broker, config: ListenerConfig) -> asyncio.Server:
    """Bind and start serving. Port 0 picks a free port (read it from ``sockets``).

    :raises ValueError: ``config`` asks for the PROXY protocol or WebSocket without TLS.
    :raises OSError: the address is in use or cannot be bound.
    """
    loop = asyncio.get_running_loop()
    limits = server_limits(broker)

    def mqtt_of(key: KeyIdentity | None) -> MQTTConnection:
        return MQTTConnection(broker, config.name, limits, key=key)

    def mqtt() -> MQTTConnection:
        return MQTTConnection(broker, config.name, limits)

    tls, handshake_timeout = config.tls, broker.limits.tls_handshake_timeout
    proxy, header_timeout = config.proxy, broker.limits.connect_timeout
    failures = broker.stats.tls_handshake_failures
    if proxy is not None and tls is None:
        raise ValueError(f"listener {config.name}: the PROXY protocol needs TLS")
    if config.websocket and tls is None:
        raise ValueError(f"listener {config.name}: MQTT over WebSocket needs TLS")
    app: Callable[[], asyncio.Protocol] = mqtt
    if config.websocket:
        presigned = config.presigned

        def websocket() -> asyncio.Protocol:
            return WebSocketStream(mqtt_of, presigned, broker.spawn, header_timeout)
        app = websocket
    factory: Callable[[], asyncio.Protocol] = app
    if tls is not None and proxy is not None:
        def behind_proxy(peername: PeerName) -> asyncio.Protocol:
            return TLSStream(tls, app, handshake_timeout, peername=peername,
                             failures=failures)

        def factory() -> asyncio.Protocol:
            return ProxyHeaderGate(proxy, behind_proxy, header_timeout)
    elif tls is not None:
        # TLS runs in the broker's own lean stream, not the event loop's TLS transport
        # (see _tls.py: memory per idle connection, Python calls per message).
        def factory() -> asyncio.Protocol:
            return TLSStream(tls, app, handshake_timeout, failures=failures)

    server = await loop.create_server(
        factory, config.host, config.port, reuse_address=True, backlog=4096)
    for sock in server.sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server


def bound_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])
