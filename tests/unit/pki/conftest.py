"""Shared certificates for the PKI tests: generated once per session (EC keys are cheap)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from bastion.datadir import DATA_DIR_ENV
from bastion.pki import (
    MASTER_KEY_ENV,
    Keystore,
    PrivateKey,
    cert_to_pem,
    create_root_ca,
    issue_server_certificate,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's shell must not change what the tests see."""
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    yield


@dataclass(frozen=True, slots=True)
class CA:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return cert_to_pem(self.cert)


@dataclass(frozen=True, slots=True)
class ServerFiles:
    """A server certificate chain and its key, encrypted under ``keystore``, on disk."""

    cert: x509.Certificate
    chain_path: Path
    key_path: Path
    keystore: Keystore


@pytest.fixture(scope="session")
def ca() -> CA:
    return CA(*create_root_ca("Test Root CA"))


@pytest.fixture(scope="session")
def other_ca() -> CA:
    return CA(*create_root_ca("Someone Else's CA"))


@pytest.fixture(scope="session")
def server_files(ca: CA, tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    directory = tmp_path_factory.mktemp("server")
    cert, key = issue_server_certificate(
        ca.cert,
        ca.key,
        dns_names=["localhost"],
        ip_addresses=[ipaddress.ip_address("127.0.0.1")],
    )
    keystore = Keystore.generate()
    chain_path = directory / "server.cert.pem"
    chain_path.write_bytes(cert_to_pem(cert) + ca.pem)
    key_path = directory / "server.key.pem"
    keystore.save_private_key(key_path, key)
    return ServerFiles(cert=cert, chain_path=chain_path, key_path=key_path, keystore=keystore)
