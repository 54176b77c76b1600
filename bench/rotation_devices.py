"""Simulated devices that rotate their certificates, and their generator's ceiling.

Theory of operation
-------------------
Each device is one MQTT 3.1.1 connection over mutual TLS with a certificate of its own
(client id = thing name, as the least-privilege device policy requires), hand-encoded
with ``wire`` like the rest of the generator: no device SDK, so that 10,000 of them fit
in a few processes. A :func:`device_job` worker opens its devices with their current
certificates, each subscribed to ``$aws/things/<thing>/jobs/notify-next`` and to the
answers of ``$aws/certificates/create-from-csr/json``, and reports ``ready``. When the
parent sets the ``rotate`` event, every device carries out the rotation of
``docs/rotation.md`` (the steps of ``examples/rotate_certificate.py``), at most
``concurrency`` devices of the worker at a time:

1. ``start-next`` on ``$aws/things/<thing>/jobs/start-next``: the answer holds the
   execution and its document (``operation: rotate-certificate``). With nothing pending
   yet, the device waits for ``notify-next`` and asks again;
2. a new EC P-256 key and a CSR for it (``cryptography``), published on
   ``$aws/certificates/create-from-csr/json``; Bastion answers, to this connection only,
   on ``.../accepted`` with the new certificate;
3. DISCONNECT, then a new connection (full handshake) with the new certificate;
4. ``SUCCEEDED`` on ``$aws/things/<thing>/jobs/<jobId>/update``, over the new connection;
   the rotation ends when ``.../update/accepted`` arrives.

A refusal at any step ends that device's rotation as a failure with the reason (a
refused CSR is also reported ``FAILED`` to the job, as the example does). Each rotation
has :data:`ROTATION_TIMEOUT` seconds. The worker reports ``rotated`` (durations per step,
failures by reason, the moments of the first start and the last end on the system-wide
monotonic clock), keeps the new connections open until the parent stops it (a rotated
device stays online), then disconnects them and reports ``result``.

:func:`ceiling_job` measures what the client side of one rotation costs alone: keys and
CSRs per second, TLS client contexts per second, and mutual-TLS handshakes with
CONNECT/CONNACK per second against the do-nothing server (``clients.MqttSink``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing.synchronize
import os
import ssl
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wire
from clients import Client, Endpoint, LoadError, TlsFiles, open_client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from workers import Control

OPERATION = "rotate-certificate"
CSR_TOPIC = "$aws/certificates/create-from-csr/json"
ROTATION_TIMEOUT = 120.0
"""Seconds one device's rotation may take, from its start-next to the SUCCEEDED answer."""
KEEP_ALIVE = 1200
"""AWS IoT's largest keep-alive: a device waits for its turn with an idle connection."""
CONNECT_CONCURRENCY = 32
"""Handshakes at once per worker while its devices connect with their old certificates."""
STEPS = ("start_next", "csr", "reconnect", "update")
"""The timed steps of one rotation, in order."""


def new_key_and_csr(thing: str) -> tuple[bytes, bytes]:
    """A new EC P-256 key (PKCS #8 PEM) and a CSR for it (PEM), as the device makes them."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, thing)]))
           .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def device_context(ca_file: str, chain_file: str) -> ssl.SSLContext:
    """A device's TLS client context: its key and certificate (one PEM file, key first)
    and Bastion's CA. The broker's chain is verified, its host name is not (as
    ``clients.client_ssl_context``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca_file)
    ctx.load_cert_chain(chain_file)
    return ctx


def scratch_dir() -> Path:
    """Where a new key and certificate are written for the moment ``load_cert_chain``
    reads them (it takes only file names): memory-backed when the machine has it."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(os.environ.get("TMPDIR", "/tmp"))
    path = base / f"bastion-bench-rot-{os.getpid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


class RotationFailed(Exception):
    """One device's rotation did not succeed; the message is the reason, as tallied."""


class DeviceConnection(Client):
    """One connection of a device: acknowledges QoS 1 deliveries and hands each PUBLISH
    to whoever awaits its topic (:meth:`expect`)."""

    def __init__(self, thing: str, *, subscribe: bool) -> None:
        filters = [(f"$aws/things/{thing}/jobs/notify-next", 1),
                   (f"{CSR_TOPIC}/accepted", 1), (f"{CSR_TOPIC}/rejected", 1)]
        super().__init__(wire.encode_connect(thing, keep_alive=KEEP_ALIVE),
                         wire.encode_subscribe_many(1, filters) if subscribe else None)
        self._waiters: dict[str, asyncio.Future[tuple[str, bytes]]] = {}
        self._packet_id = 1

    def on_packet(self, first: int, body: bytes) -> None:
        if first & 0xF0 != wire.PUBLISH:
            return  # PUBACKs of our requests: the answers say more
        qos, packet_id, offset = wire.publish_fields(first, body)
        if qos and self.transport is not None:
            self.transport.write(wire.PUBACK_PREFIX + packet_id.to_bytes(2, "big"))
        topic = body[2:2 + (body[0] << 8 | body[1])].decode("utf-8", "replace")
        waiter = self._waiters.get(topic)
        if waiter is not None and not waiter.done():
            waiter.set_result((topic, body[offset:]))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(RotationFailed("the broker closed the connection"))

    def expect(self, *topics: str) -> asyncio.Future[tuple[str, bytes]]:
        """A future for the next PUBLISH on any of ``topics`` (replacing older waiters)."""
        waiter: asyncio.Future[tuple[str, bytes]] = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        if self.lost:
            waiter.set_exception(RotationFailed("the broker closed the connection"))
        for topic in topics:
            self._waiters[topic] = waiter
        return waiter

    def publish(self, topic: str, document: dict[str, Any] | bytes) -> None:
        """One QoS 1 PUBLISH (its PUBACK is not awaited)."""
        payload = document if isinstance(document, bytes) else json.dumps(document).encode()
        self._packet_id = self._packet_id % 65535 + 1
        if self.transport is not None and not self.lost:
            self.transport.write(wire.encode_publish(topic, payload, qos=1,
                                                     packet_id=self._packet_id))


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """The devices of one worker."""

    things: tuple[str, ...]
    key_dir: str
    """Where ``<thing>.pem`` (key and current certificate) are."""
    ca_file: str
    concurrency: int
    """Rotations in progress at once in this worker."""


@dataclass
class _Tally:
    done: int = 0
    first_start: float | None = None
    last_end: float | None = None

    def __post_init__(self) -> None:
        self.durations = array("d")
        self.steps = {step: array("d") for step in STEPS}
        self.failures: Counter[str] = Counter()


async def _answer(conn: DeviceConnection, waiter: asyncio.Future[tuple[str, bytes]],
                  what: str) -> tuple[bool, dict[str, Any]]:
    """``(accepted, payload)`` of the answer ``waiter`` awaits."""
    topic, payload = await waiter
    try:
        document = json.loads(payload) if payload else {}
    except ValueError:
        raise RotationFailed(f"{what}: the answer is not JSON") from None
    return topic.endswith("/accepted"), document if isinstance(document, dict) else {}


async def rotate_device(thing: str, conn: DeviceConnection, endpoint: Endpoint,
                        spec: DeviceSpec, scratch: Path, steps: dict[str, float]
                        ) -> DeviceConnection:
    """One device's rotation (see the module docstring); returns its new connection.

    ``steps`` receives the seconds each step took.

    :raises RotationFailed: with the reason.
    """
    jobs = f"$aws/things/{thing}/jobs"
    began = time.monotonic()
    execution: dict[str, Any] | None = None
    while execution is None:
        waiter = conn.expect(f"{jobs}/start-next/accepted", f"{jobs}/start-next/rejected")
        conn.publish(f"{jobs}/start-next", {"statusDetails": {"step": "generating-key"}})
        accepted, answer = await _answer(conn, waiter, "start-next")
        if not accepted:
            raise RotationFailed(f"start-next rejected: {answer.get('code')}")
        execution = answer.get("execution")
        if execution is None:  # the sweep has not reached this thing yet
            await conn.expect(f"{jobs}/notify-next")
    document = execution.get("jobDocument") or {}
    if document.get("operation") != OPERATION:
        raise RotationFailed(f"the next job is not a rotation ({document.get('operation')!r})")
    job_id = str(execution["jobId"])
    now = time.monotonic()
    steps["start_next"], began = now - began, now

    key_pem, csr_pem = new_key_and_csr(thing)
    waiter = conn.expect(f"{CSR_TOPIC}/accepted", f"{CSR_TOPIC}/rejected")
    conn.publish(CSR_TOPIC, {"certificateSigningRequest": csr_pem.decode("ascii")})
    accepted, answer = await _answer(conn, waiter, "CreateCertificateFromCsr")
    if not accepted:
        reason = f"CSR rejected: {answer.get('statusCode')} {answer.get('errorCode')}"
        conn.publish(f"{jobs}/{job_id}/update", {"status": "FAILED", "statusDetails": {
            "reason": str(answer.get("errorCode")), "message": str(answer.get("errorMessage"))[:500]}})
        raise RotationFailed(reason)
    certificate_id, certificate_pem = answer["certificateId"], answer["certificatePem"]
    now = time.monotonic()
    steps["csr"], began = now - began, now

    chain = scratch / f"{thing}.pem"
    chain.write_bytes(key_pem + certificate_pem.encode("ascii"))
    try:
        ctx = device_context(spec.ca_file, str(chain))
    finally:
        chain.unlink()
    conn.close()
    try:
        new = await open_client(endpoint, ctx, lambda: DeviceConnection(thing, subscribe=False))
    except (OSError, LoadError, TimeoutError) as exc:
        raise RotationFailed(f"connect with the new certificate: {type(exc).__name__}: "
                             f"{str(exc)[:120]}") from None
    assert isinstance(new, DeviceConnection)
    now = time.monotonic()
    steps["reconnect"], began = now - began, now

    waiter = new.expect(f"{jobs}/{job_id}/update/accepted", f"{jobs}/{job_id}/update/rejected")
    new.publish(f"{jobs}/{job_id}/update",
                {"status": "SUCCEEDED", "statusDetails": {"certificateId": certificate_id}})
    accepted, answer = await _answer(new, waiter, "update")
    if not accepted:
        new.close()
        raise RotationFailed(f"SUCCEEDED rejected: {answer.get('code')}")
    steps["update"] = time.monotonic() - began
    return new


async def device_job(control: Control, endpoint: Endpoint, spec: DeviceSpec,
                     rotate: multiprocessing.synchronize.Event) -> None:
    """A worker of rotating devices (see the module docstring)."""
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    tally = _Tally()

    async def connect(thing: str) -> DeviceConnection | None:
        async with limit:
            try:
                ctx = device_context(spec.ca_file, os.path.join(spec.key_dir, f"{thing}.pem"))
                conn = await open_client(endpoint, ctx,
                                         lambda: DeviceConnection(thing, subscribe=True))
            except (OSError, LoadError, TimeoutError) as exc:
                tally.failures[f"connect with the old certificate: {type(exc).__name__}"] += 1
                return None
            assert isinstance(conn, DeviceConnection)
            return conn

    conns = await asyncio.gather(*(connect(t) for t in spec.things))
    control.report("ready", {"pid": os.getpid(), "connect_seconds": time.monotonic() - began,
                             "connected": sum(c is not None for c in conns)})
    await control.wait_go()
    timeout = max(0.0, control.deadline - time.monotonic())
    if not await loop.run_in_executor(None, rotate.wait, timeout):
        raise LoadError("the devices were never told to rotate")
    scratch = scratch_dir()
    turns = asyncio.Semaphore(max(1, spec.concurrency))
    rotated: list[DeviceConnection] = []

    async def one(thing: str, conn: DeviceConnection) -> None:
        async with turns:
            try:
                await attempt(thing, conn)
            finally:
                tally.done += 1
                control.counters[control.slot] = tally.done

    async def attempt(thing: str, conn: DeviceConnection) -> None:
        if not control.running():
            tally.failures["not started: the bench stopped"] += 1
            return
        started = time.monotonic()
        if tally.first_start is None:
            tally.first_start = started
        steps: dict[str, float] = {}
        try:
            new = await asyncio.wait_for(
                rotate_device(thing, conn, endpoint, spec, scratch, steps),
                ROTATION_TIMEOUT)
        except TimeoutError:
            step = STEPS[len(steps)] if len(steps) < len(STEPS) else "?"
            tally.failures[f"timed out in {step}"] += 1
            conn.close()
        except RotationFailed as failed:
            tally.failures[str(failed)] += 1
            conn.close()
        else:
            ended = time.monotonic()
            tally.durations.append(ended - started)
            for step, seconds in steps.items():
                tally.steps[step].append(seconds)
            tally.last_end = ended if tally.last_end is None else max(tally.last_end, ended)
            rotated.append(new)

    try:
        await asyncio.gather(*(one(t, c) for t, c in zip(spec.things, conns, strict=True)
                               if c is not None))
    finally:
        with contextlib.suppress(OSError):
            scratch.rmdir()
    control.report("rotated", {
        "devices": len(spec.things), "succeeded": len(tally.durations),
        "failures": dict(tally.failures), "durations": tally.durations.tobytes(),
        "steps": {k: v.tobytes() for k, v in tally.steps.items()},
        "first_start": tally.first_start, "last_end": tally.last_end,
        "still_open": sum(not c.lost for c in rotated)})
    await control.wait_stop()
    for c in rotated:
        c.close()
    control.report("result", {"closed": len(rotated)})


async def ceiling_job(control: Control, sink: Endpoint, client: TlsFiles, cycles: int) -> None:
    """The client side of a rotation, alone: ``cycles`` keys and CSRs, ``cycles`` TLS
    contexts, ``cycles`` handshakes with CONNECT/CONNACK against ``sink`` (eight at a
    time); reports each one's CPU seconds per unit, and the handshakes' wall rate."""
    control.report("ready", {"pid": os.getpid()})
    await control.wait_go()
    cpu = time.process_time
    began = cpu()
    for _ in range(cycles):
        new_key_and_csr("bench-rot-ceiling")
    keys = (cpu() - began) / cycles
    chain = scratch_dir() / "ceiling.pem"
    chain.write_bytes(Path(client.key_file).read_bytes() + Path(client.cert_file).read_bytes())
    began = cpu()
    contexts = [device_context(client.ca_file, str(chain)) for _ in range(cycles)]
    per_context = (cpu() - began) / cycles
    chain.unlink()
    chain.parent.rmdir()
    limit = asyncio.Semaphore(8)

    async def handshake(ctx: ssl.SSLContext, k: int) -> None:
        async with limit:
            conn = await open_client(sink, ctx, _ceiling_client(f"bench-rot-ceiling-{k}"))
            conn.close()

    wall, began = time.monotonic(), cpu()
    await asyncio.gather(*(handshake(ctx, k) for k, ctx in enumerate(contexts)))
    per_handshake = (cpu() - began) / cycles
    control.report("result", {"key_and_csr_s": keys, "context_s": per_context,
                              "handshake_s": per_handshake,
                              "handshakes_per_s": cycles / (time.monotonic() - wall)})


def _ceiling_client(client_id: str) -> Callable[[], Client]:
    return lambda: Client(wire.encode_connect(client_id))
