"""Listeners: TCP (+TLS) servers that hand each accepted socket to an MQTTConnection."""

from __future__ import annotations

import asyncio
import socket
import ssl
from asyncio import sslproto
from dataclasses import dataclass

from ..mqtt import ServerLimits
from ._broker import Broker
from ._connection import MQTTConnection

# CPython's SSL transport keeps a 256 KiB read buffer per connection; MQTT packets here are
# at most ~146 KiB and usually tiny. 16 KiB (one TLS record) costs no measurable CPU and
# cuts memory per idle TLS connection by ~240 KB (cpython issue 109534).
sslproto.SSLProtocol.max_size = 16 * 1024


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    name: str
    host: str
    port: int
    tls: ssl.SSLContext | None


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

    :raises OSError: the address is in use or cannot be bound.
    """
    loop = asyncio.get_running_loop()
    limits = server_limits(broker)

    def factory() -> MQTTConnection:
        return MQTTConnection(broker, config.name, limits)

    server = await loop.create_server(
        factory, config.host, config.port, reuse_address=True, backlog=4096,
        ssl=config.tls,
        ssl_handshake_timeout=(
            broker.limits.tls_handshake_timeout if config.tls is not None else None),
    )
    for sock in server.sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server


def bound_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])
