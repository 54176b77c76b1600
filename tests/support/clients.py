"""Real MQTT clients (paho-mqtt) and raw TLS sockets pointed at a running Bastion."""

from __future__ import annotations

import queue
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

HOST = "127.0.0.1"
V311 = paho.MQTTv311
V5 = paho.MQTTv5


@dataclass(frozen=True)
class DeviceFiles:
    name: str
    cert: Path
    key: Path
    ca: Path
    certificate_id: str = ""
    certificate_arn: str = ""


def wait_for(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Client:
    """A paho client with blocking helpers: connect, subscribe, publish, expect messages."""

    def __init__(self, device: DeviceFiles, port: int, *, version: int = V311,
                 client_id: str | None = None, clean: bool = True,
                 session_expiry: int | None = None, will: tuple[str, bytes, int, bool] | None = None,
                 will_delay: int | None = None, keepalive: int = 30,
                 username: str | None = None, alpn: list[str] | None = None) -> None:
        self.client_id = client_id or f"{device.name}-{uuid.uuid4().hex[:8]}"
        self.version = version
        kwargs: dict[str, Any] = {}
        if version != V5:
            kwargs["clean_session"] = clean
        self.paho = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                protocol=version, **kwargs)
        context = ssl.create_default_context(cafile=str(device.ca))
        context.load_cert_chain(str(device.cert), str(device.key))
        if alpn:
            context.set_alpn_protocols(alpn)
        self.paho.tls_set_context(context)
        if username is not None:
            self.paho.username_pw_set(username)
        if will is not None:
            props = None
            if will_delay is not None:
                props = PahoProperties(PacketTypes.WILLMESSAGE)
                props.WillDelayInterval = will_delay
            self.paho.will_set(will[0], will[1], will[2], will[3], properties=props)
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack: Any = None
        self.session_present: bool | None = None
        self.disconnect_reason: Any = None
        self.closed_at = 0.0  # time.monotonic() when the connection ended
        self.acks: dict[int, Any] = {}
        self.subacks: dict[int, list[Any]] = {}
        self._port = port
        self._clean = clean
        self._session_expiry = session_expiry
        self._keepalive = keepalive
        self.paho.on_connect = self._on_connect
        self.paho.on_disconnect = self._on_disconnect
        self.paho.on_message = lambda c, u, m: self.messages.put(m)
        self.paho.on_publish = self._on_publish
        self.paho.on_subscribe = self._on_subscribe

    # callbacks (paho's network thread)
    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        self.session_present = flags.session_present
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnect_reason = rc
        self.closed_at = time.monotonic()
        self.disconnected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self.acks[mid] = rc

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self.subacks[mid] = list(rcs)

    def connect(self, timeout: float = 5.0, expect_success: bool = True,
                bind_address: str = "") -> Client:
        """Connect and wait for the CONNACK; ``bind_address``: the local address to
        connect from (``127.0.0.2``: another device on loopback)."""
        kwargs: dict[str, Any] = {}
        if self.version == V5:
            kwargs["clean_start"] = self._clean
            if self._session_expiry is not None:
                props = PahoProperties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self._session_expiry
                kwargs["properties"] = props
        self.paho.connect(HOST, self._port, keepalive=self._keepalive,
                          bind_address=bind_address, **kwargs)
        self.paho.loop_start()
        if not self.connected.wait(timeout):
            raise AssertionError("no CONNACK")
        if expect_success and self.connack.is_failure:
            raise AssertionError(f"connection refused: {self.connack}")
        return self

    def subscribe(self, topic: str, qos: int = 0, timeout: float = 5.0, **options: Any) -> list[Any]:
        if self.version == V5 and options:
            opts = paho.SubscribeOptions(qos=qos, **options)
            _, mid = self.paho.subscribe(topic, options=opts)
        else:
            _, mid = self.paho.subscribe(topic, qos)
        wait_for(lambda: mid in self.subacks, timeout, f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False,
                wait: bool = True, properties: Any = None) -> paho.MQTTMessageInfo:
        info = self.paho.publish(topic, payload, qos, retain, properties=properties)
        if wait and qos > 0:
            wait_for(lambda: info.mid in self.acks, 5.0, f"ack of publish to {topic}")
        return info

    def expect(self, count: int = 1, timeout: float = 5.0) -> list[paho.MQTTMessage]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} messages, got {len(got)}")
            try:
                got.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return got

    def expect_none(self, timeout: float = 0.3) -> None:
        """Nothing arrives within ``timeout`` (used only after a positive sync point)."""
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {message.topic}")

    def disconnect(self) -> None:
        self.paho.disconnect()
        self.disconnected.wait(5)
        self.paho.loop_stop()

    def stop(self) -> None:
        """Stop a client whose CONNECT was refused: paho's thread would otherwise connect
        again and again in the background, and leave a socket open."""
        self.paho.disconnect()
        self.paho.loop_stop()

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT (so the will fires)."""
        sock = self.paho.socket()
        self.paho.loop_stop()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def tls_socket(device: DeviceFiles | None, port: int, *, ca: Path,
               alpn: list[str] | None = None, timeout: float = 5.0,
               preamble: bytes = b"") -> ssl.SSLSocket:
    """A raw TLS socket to the broker (for hand-built packets); ``preamble`` is sent in
    the clear before the handshake (a load balancer's PROXY header)."""
    context = ssl.create_default_context(cafile=str(ca))
    if device is not None:
        context.load_cert_chain(str(device.cert), str(device.key))
    if alpn:
        context.set_alpn_protocols(alpn)
    raw = socket.create_connection((HOST, port), timeout=timeout)
    try:
        if preamble:
            raw.sendall(preamble)
        sock = context.wrap_socket(raw, server_hostname=HOST, do_handshake_on_connect=False)
    except BaseException:
        raw.close()
        raise
    try:  # the TLS socket owns the descriptor now: close it, not ``raw``, on failure
        sock.do_handshake()
    except BaseException:
        sock.close()
        raise
    return sock


def read_until_closed(sock: ssl.SSLSocket | socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            break
        except TimeoutError:
            raise AssertionError("server did not close the connection") from None
        if not data:
            break
        chunks.append(data)
    else:
        raise AssertionError("server did not close the connection")
    return b"".join(chunks)
