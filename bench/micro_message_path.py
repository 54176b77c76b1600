"""The broker's whole message path in one process, without sockets: µs per message.

    .venv/bin/python bench/micro_message_path.py [--messages N] [--rounds R] [--tls]

Ten publisher connections and one subscriber on ``bench/#`` are real
:class:`bastion.broker.MQTTConnection` objects on a real :class:`Broker` (allow-all
authorizer) whose transports only collect what is written. Each publisher receives its
PUBLISH packets 64 per ``data_received`` call, as the fan-in bench sends them, and the
event loop runs so that coalesced writes are flushed. With ``--tls`` every connection is
wrapped in the broker's :class:`~bastion.broker._tls.TLSStream` with a real handshake
against in-memory client ``SSLObject``\\ s, so decryption and encryption are counted too.

This is where a change to the hot path is measured first (repeatable within a few per
cent on a quiet core); ``bench/run.py`` then shows what it is worth end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time
from typing import Any

import trustme

from bastion.broker import AcceptVerifiedCertificates, AllowAll, Broker, MQTTConnection
from bastion.broker._listener import server_limits
from bastion.broker._tls import TLSStream
from bastion.mqtt import Connect, Publish, Subscribe, Subscription, encode

PUBLISHERS = 10
BATCH = 64


class Sink:
    """A transport that keeps nothing but a byte count (and the bytes, when asked)."""

    def __init__(self, keep: bool = False) -> None:
        self.written = 0
        self.keep = keep
        self.chunks: list[bytes] = []
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.keep:
            self.chunks.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class TlsPeer:
    """A client-side SSLObject wired to a server-side TLSStream through memory."""

    def __init__(self, client_ctx: ssl.SSLContext, stream: TLSStream, tcp: Sink) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl = client_ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.stream, self.tcp = stream, tcp

    def handshake(self) -> None:
        for _ in range(10):
            try:
                self.ssl.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            if self.outgoing.pending:
                self.stream.data_received(self.outgoing.read())
            self.pump()
            if done:
                return
        raise RuntimeError("handshake did not finish")

    def pump(self) -> None:
        """What the server wrote, into the client (decrypted and thrown away)."""
        if self.tcp.chunks:
            self.incoming.write(b"".join(self.tcp.chunks))
            self.tcp.chunks.clear()
            try:
                while self.ssl.read(1 << 20):
                    pass
            except ssl.SSLWantReadError:
                pass

    def send(self, data: bytes) -> None:
        self.ssl.write(data)
        self.stream.data_received(self.outgoing.read())


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server, client = ca.issue_cert("localhost"), ca.issue_cert("device")
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.configure_cert(sctx)
    ca.configure_trust(sctx)
    sctx.verify_mode = ssl.CERT_REQUIRED
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(cctx)
    client.configure_cert(cctx)
    return sctx, cctx


async def run(messages: int, use_tls: bool) -> float:
    broker = Broker(authenticator=AcceptVerifiedCertificates(), authorizer=AllowAll())
    limits = server_limits(broker)
    sctx, cctx = tls_contexts() if use_tls else (None, None)
    feeders = []
    peers: list[TlsPeer] = []
    for index in range(PUBLISHERS + 1):
        client_id = f"bench-{index}"
        tcp = Sink(keep=use_tls)
        if sctx is not None and cctx is not None:
            stream = TLSStream(sctx, lambda: MQTTConnection(broker, "mqtts", limits), 10)
            stream.connection_made(tcp)  # type: ignore[arg-type]
            peer = TlsPeer(cctx, stream, tcp)
            peer.handshake()
            peers.append(peer)
            feed = peer.send
        else:
            conn = MQTTConnection(broker, "mqtt", limits)
            conn.connection_made(tcp)  # type: ignore[arg-type]
            feed = conn.data_received
        feed(encode(Connect(client_id=client_id, keep_alive=600), 4))
        for _ in range(20):
            await asyncio.sleep(0)
        feeders.append((feed, tcp))
    subscriber_feed, subscriber_tcp = feeders[-1]
    subscriber_feed(encode(Subscribe(1, (Subscription("bench/#", 0),)), 4))
    await asyncio.sleep(0)
    batches = [b"".join(encode(Publish(f"bench/bench-{index}", bytes(64)), 4)
                        for _ in range(BATCH)) for index in range(PUBLISHERS)]
    rounds = max(1, messages // (BATCH * PUBLISHERS))
    before = subscriber_tcp.written
    started = time.perf_counter()
    for _ in range(rounds):
        for index in range(PUBLISHERS):
            feeders[index][0](batches[index])
        await asyncio.sleep(0)  # the coalesced writes go out
        for peer in peers:
            peer.pump()
    took = time.perf_counter() - started
    sent = rounds * BATCH * PUBLISHERS
    delivered_bytes = subscriber_tcp.written - before
    per_message = len(batches[0]) // BATCH
    if not use_tls and delivered_bytes < sent * per_message:
        raise SystemExit(f"only {delivered_bytes // per_message:,} of {sent:,} delivered")
    return took / sent * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tls", action="store_true")
    args = parser.parse_args()
    import uvloop

    best = min(uvloop.run(run(args.messages, args.tls)) for _ in range(args.rounds))
    label = "TLS" if args.tls else "plain"
    print(f"QoS 0 fan-in {PUBLISHERS}->1, {label}: {best:.2f} µs per message "
          f"(best of {args.rounds}; {1e6 / best:,.0f} msg/s on one core)")


if __name__ == "__main__":
    main()
