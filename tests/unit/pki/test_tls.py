"""Mutual-TLS handshakes over real loopback TCP connections.

The server runs in a thread and reports what it saw; its verdict is authoritative (with
TLS 1.3 a client finishes its handshake before the server has checked its certificate,
and learns of the rejection only when it reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.pki import (
    DEFAULT_ALPN_PROTOCOLS,
    PrivateKey,
    cert_to_pem,
    certificate_id,
    client_ssl_context,
    issue_device_certificate,
    peer_certificate,
    private_key_to_pem,
    server_ssl_context,
)

if TYPE_CHECKING:
    from tests.unit.pki.conftest import CA, ServerFiles

TIMEOUT = 5.0


@dataclass
class Outcome:
    server_error: BaseException | None = None
    client_error: BaseException | None = None
    peer: x509.Certificate | None = None
    server_alpn: str | None = None
    client_alpn: str | None = None
    version: str | None = None
    received: bytes = b""

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None

    def server_reason(self) -> str:
        assert self.server_error is not None, "the server accepted the client"
        error = self.server_error
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"{error.reason}: {error.verify_message}"
        return str(getattr(error, "reason", None) or error)


def handshake(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    *,
    server_hostname: str = "localhost",
) -> Outcome:
    outcome = Outcome()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                connection, _ = listener.accept()
            except OSError as exc:
                outcome.server_error = exc
                return
            with connection:
                connection.settimeout(TIMEOUT)
                try:
                    with server_context.wrap_socket(connection, server_side=True) as tls:
                        outcome.peer = peer_certificate(tls)
                        outcome.server_alpn = tls.selected_alpn_protocol()
                        outcome.version = tls.version()
                        tls.sendall(b"hello")
                except (ssl.SSLError, OSError) as exc:
                    outcome.server_error = exc

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
                try:
                    with client_context.wrap_socket(raw, server_hostname=server_hostname) as tls:
                        outcome.client_alpn = tls.selected_alpn_protocol()
                        outcome.received = _read(tls, 5)
                except (ssl.SSLError, OSError) as exc:
                    outcome.client_error = exc
        finally:
            thread.join(TIMEOUT * 2)
            assert not thread.is_alive()
    if outcome.server_error is None and outcome.received != b"hello":
        outcome.client_error = outcome.client_error or EOFError(outcome.received)
    return outcome


def _read(tls: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = tls.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@dataclass(frozen=True, slots=True)
class DeviceFiles:
    cert: x509.Certificate
    cert_path: Path
    key_path: Path


def write_device(
    directory: Path, ca: CA, name: str, *, not_before: datetime | None = None, valid_days: int = 30
) -> DeviceFiles:
    cert, key = issue_device_certificate(
        ca.cert, ca.key, common_name=name, not_before=not_before, valid_days=valid_days
    )
    return _write(directory, name, cert, key)


def _write(directory: Path, name: str, cert: x509.Certificate, key: PrivateKey) -> DeviceFiles:
    cert_path = directory / f"{name}.cert.pem"
    key_path = directory / f"{name}.key.pem"
    cert_path.write_bytes(cert_to_pem(cert))
    key_path.write_bytes(private_key_to_pem(key))
    return DeviceFiles(cert, cert_path, key_path)


@pytest.fixture(scope="module")
def devices(
    ca: CA, other_ca: CA, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, DeviceFiles]:
    directory = tmp_path_factory.mktemp("devices")
    long_ago = datetime.now(UTC) - timedelta(days=30)
    return {
        "good": write_device(directory, ca, "good"),
        "foreign": write_device(directory, other_ca, "foreign"),
        "expired": write_device(directory, ca, "expired", not_before=long_ago, valid_days=1),
        "future": write_device(
            directory, ca, "future", not_before=datetime.now(UTC) + timedelta(days=1)
        ),
    }


@pytest.fixture(scope="module")
def server_context(ca: CA, server_files: ServerFiles) -> ssl.SSLContext:
    return server_ssl_context(
        server_files.chain_path,
        server_files.key_path,
        trusted_ca_pems=[ca.pem],
        key_password=server_files.keystore.private_key_password,
    )


def client_for(
    ca: CA,
    device: DeviceFiles | None,
    *,
    alpn: Sequence[str] | None = None,
    version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = client_ssl_context(
        ca.pem,
        device.cert_path if device else None,
        device.key_path if device else None,
        alpn_protocols=alpn,
    )
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


# -- who gets in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "name"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
    ids=["tls1.2", "tls1.3"],
)
def test_device_from_trusted_ca_connects(
    ca: CA,
    devices: dict[str, DeviceFiles],
    server_context: ssl.SSLContext,
    version: ssl.TLSVersion,
    name: str,
) -> None:
    outcome = handshake(server_context, client_for(ca, devices["good"], version=version))
    assert outcome.ok, outcome
    assert outcome.version == name
    assert outcome.peer == devices["good"].cert
    assert outcome.peer is not None
    assert certificate_id(outcome.peer) == certificate_id(devices["good"].cert)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_without_certificate_is_rejected(
    ca: CA, server_context: ssl.SSLContext, version: ssl.TLSVersion
) -> None:
    outcome = handshake(server_context, client_for(ca, None, version=version))
    assert not outcome.ok
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in outcome.server_reason()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_device_from_another_ca_is_rejected(
    ca: CA,
    devices: dict[str, DeviceFiles],
    server_context: ssl.SSLContext,
    version: ssl.TLSVersion,
) -> None:
    outcome = handshake(server_context, client_for(ca, devices["foreign"], version=version))
    assert not outcome.ok
    assert outcome.server_reason() == (
        "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"
    )


def test_expired_device_certificate_is_rejected(
    ca: CA, devices: dict[str, DeviceFiles], server_context: ssl.SSLContext
) -> None:
    outcome = handshake(server_context, client_for(ca, devices["expired"]))
    assert not outcome.ok
    assert outcome.server_reason() == "CERTIFICATE_VERIFY_FAILED: certificate has expired"


def test_not_yet_valid_device_certificate_is_rejected(
    ca: CA, devices: dict[str, DeviceFiles], server_context: ssl.SSLContext
) -> None:
    outcome = handshake(server_context, client_for(ca, devices["future"]))
    assert outcome.server_reason() == "CERTIFICATE_VERIFY_FAILED: certificate is not yet valid"


def test_self_signed_device_certificate_is_rejected(
    ca: CA, other_ca: CA, server_context: ssl.SSLContext, tmp_path: Path
) -> None:
    # A client presenting a CA certificate (here: one we do not trust) as its own.
    device = _write(tmp_path, "self", other_ca.cert, other_ca.key)
    outcome = handshake(server_context, client_for(ca, device))
    assert outcome.server_reason() == "CERTIFICATE_VERIFY_FAILED: self-signed certificate"


def test_tls_1_1_client_is_rejected(
    ca: CA, devices: dict[str, DeviceFiles], server_context: ssl.SSLContext
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca.pem.decode())
    context.load_cert_chain(devices["good"].cert_path, devices["good"].key_path)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client really offer TLS 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    outcome = handshake(server_context, context)
    assert not outcome.ok
    # the server saw a TLS 1.1 ClientHello and refused it
    assert outcome.server_reason() == "UNSUPPORTED_PROTOCOL"


# -- the certificate chain and trust anchors --------------------------------------------


def test_registered_intermediate_ca_is_a_trust_anchor(
    ca: CA, server_files: ServerFiles, tmp_path: Path
) -> None:
    """As in AWS IoT, registering an intermediate CA suffices: devices send only the leaf."""
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=Intermediate"))
        .issuer_name(ca.cert.subject)
        .public_key(intermediate_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    cert, key = issue_device_certificate(intermediate, intermediate_key, common_name="leaf")
    device = _write(tmp_path, "leaf", cert, key)

    def context(trusted: bytes) -> ssl.SSLContext:
        return server_ssl_context(
            server_files.chain_path,
            server_files.key_path,
            trusted_ca_pems=[trusted],
            key_password=server_files.keystore.private_key_password,
        )

    assert handshake(context(cert_to_pem(intermediate)), client_for(ca, device)).ok
    # Trusting only the root, a leaf sent without its intermediate does not verify.
    outcome = handshake(context(ca.pem), client_for(ca, device))
    assert outcome.server_reason() == (
        "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"
    )


def test_several_trusted_cas(
    ca: CA, other_ca: CA, devices: dict[str, DeviceFiles], server_files: ServerFiles
) -> None:
    context = server_ssl_context(
        server_files.chain_path,
        server_files.key_path,
        trusted_ca_pems=[ca.pem, other_ca.pem.decode()],
        key_password=server_files.keystore.private_key_password,
    )
    assert handshake(context, client_for(ca, devices["good"])).ok
    assert handshake(context, client_for(ca, devices["foreign"])).ok


# -- ALPN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "selected"),
    [
        pytest.param(["x-amzn-mqtt-ca"], "x-amzn-mqtt-ca", id="aws"),
        pytest.param(["mqtt"], "mqtt", id="mqtt"),
        pytest.param(["mqtt", "x-amzn-mqtt-ca"], "x-amzn-mqtt-ca", id="server-preference"),
        pytest.param(None, None, id="no-alpn"),
        pytest.param(["h2", "http/1.1"], None, id="unknown-alpn"),
    ],
)
def test_alpn(
    ca: CA,
    devices: dict[str, DeviceFiles],
    server_context: ssl.SSLContext,
    offered: list[str] | None,
    selected: str | None,
) -> None:
    outcome = handshake(server_context, client_for(ca, devices["good"], alpn=offered))
    assert outcome.ok, outcome
    assert outcome.server_alpn == selected
    assert outcome.client_alpn == selected


def test_default_alpn_protocols() -> None:
    assert DEFAULT_ALPN_PROTOCOLS == ("x-amzn-mqtt-ca", "mqtt")


# -- building the server context --------------------------------------------------------


def test_server_context_settings(server_context: ssl.SSLContext) -> None:
    assert server_context.verify_mode == ssl.CERT_REQUIRED
    assert server_context.minimum_version == ssl.TLSVersion.TLSv1_2
    # (OP_SINGLE_ECDH_USE is also set, but is 0 - always on - in OpenSSL 3.)
    for option in (ssl.OP_NO_COMPRESSION, ssl.OP_NO_RENEGOTIATION):
        assert server_context.options & option
    tls12 = [c for c in server_context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    assert all(c["kea"] == "kx-ecdhe" for c in tls12), tls12


def test_server_key_as_object(
    ca: CA, devices: dict[str, DeviceFiles], server_files: ServerFiles
) -> None:
    key = server_files.keystore.load_private_key(server_files.key_path)
    context = server_ssl_context(server_files.chain_path, key, trusted_ca_pems=[ca.pem])
    assert handshake(context, client_for(ca, devices["good"])).ok


def test_server_key_with_wrong_password_fails(ca: CA, server_files: ServerFiles) -> None:
    with pytest.raises(ssl.SSLError):
        server_ssl_context(
            server_files.chain_path,
            server_files.key_path,
            trusted_ca_pems=[ca.pem],
            key_password=b"0" * 64,
        )


def test_server_context_needs_a_trusted_ca(server_files: ServerFiles) -> None:
    with pytest.raises(ValueError, match="at least one"):
        server_ssl_context(server_files.chain_path, server_files.key_path, trusted_ca_pems=[])
    with pytest.raises(ValueError):
        server_ssl_context(
            server_files.chain_path, server_files.key_path, trusted_ca_pems=[b"garbage"]
        )
    with pytest.raises(TypeError):
        server_ssl_context(
            server_files.chain_path,
            server_files.key_path,
            trusted_ca_pems=b"a single pem",  # type: ignore[arg-type]
        )


def test_client_key_path_needs_cert_path(ca: CA, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        client_ssl_context(ca.pem, None, tmp_path / "key.pem")


def test_client_checks_server_name(
    ca: CA, devices: dict[str, DeviceFiles], server_context: ssl.SSLContext
) -> None:
    outcome = handshake(
        server_context, client_for(ca, devices["good"]), server_hostname="other.example"
    )
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert "Hostname mismatch" in str(outcome.client_error.verify_message)


# -- peer_certificate -------------------------------------------------------------------


def test_peer_certificate_with_asyncio(
    ca: CA, devices: dict[str, DeviceFiles], server_context: ssl.SSLContext
) -> None:
    """The broker's path: ``transport.get_extra_info("ssl_object")``."""

    async def main() -> tuple[x509.Certificate | None, x509.Certificate | None]:
        seen: asyncio.Future[x509.Certificate | None] = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.set_result(peer_certificate(writer.get_extra_info("ssl_object")))
            writer.write(b"hello")
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_context)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=client_for(ca, devices["good"]),
                server_hostname="localhost",
            )
            try:
                assert await asyncio.wait_for(reader.readexactly(5), TIMEOUT) == b"hello"
                client_view = peer_certificate(writer.get_extra_info("ssl_object"))
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await writer.wait_closed()
            return await asyncio.wait_for(seen, TIMEOUT), client_view

    device_cert, server_cert = asyncio.run(main())
    assert device_cert == devices["good"].cert
    assert server_cert is not None
    assert server_cert.subject.rfc4514_string() == "CN=localhost"


def test_peer_certificate_is_none_without_client_certificate(
    ca: CA, server_files: ServerFiles
) -> None:
    context = server_ssl_context(
        server_files.chain_path,
        server_files.key_path,
        trusted_ca_pems=[ca.pem],
        key_password=server_files.keystore.private_key_password,
    )
    context.verify_mode = ssl.CERT_OPTIONAL  # only to observe the helper's None case
    outcome = handshake(context, client_for(ca, None))
    assert outcome.ok, outcome
    assert outcome.peer is None
