from __future__ import annotations

import base64
import ipaddress
import os
import select
import socket
import ssl
import stat
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from bastion.datadir import (
    DATA_DIR_ENV,
    DEFAULT_CONFIG,
    DataDir,
    DataDirError,
    default_data_dir,
    init_data_dir,
    issue_device_files,
    load_ca,
    server_ssl_context_for,
)
from bastion.pki import (
    MASTER_KEY_ENV,
    Keystore,
    KeystoreError,
    certificate_id,
    client_ssl_context,
    load_pem_certificate,
    load_pem_certificates,
    load_pem_private_key,
    peer_certificate,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    return init_data_dir(
        tmp_path_factory.mktemp("init") / "bastion-data",
        extra_names=["broker.example.com", "192.0.2.7", "localhost", "2001:db8::1"],
    )


def test_layout(initialised: DataDir) -> None:
    root = initialised.path
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert files == [
        "ca",
        "ca/root-ca.cert.pem",
        "ca/root-ca.key.pem",
        "config.toml",
        "devices",
        "master.key",
        "tls",
        "tls/server.cert.pem",
        "tls/server.key.pem",
    ]
    assert initialised.exists()
    assert initialised.db_path == root / "bastion.db"
    assert initialised.log_dir == root / "logs"
    assert initialised.devices_dir == root / "devices"


def test_modes(initialised: DataDir) -> None:
    for directory in (
        initialised.path,
        initialised.ca_dir,
        initialised.tls_dir,
        initialised.devices_dir,
    ):
        assert _mode(directory) == 0o700, directory
    assert not initialised.log_dir.exists()  # made by the first serve that logs there
    for secret in (
        initialised.master_key_path,
        initialised.ca_key_path,
        initialised.server_key_path,
    ):
        assert _mode(secret) == 0o600, secret


def test_keys_are_encrypted_at_rest(initialised: DataDir) -> None:
    for path in (initialised.ca_key_path, initialised.server_key_path):
        pem = path.read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):
            load_pem_private_key(pem)
        with pytest.raises(KeystoreError):
            Keystore.generate().load_private_key(path)
        initialised.open_keystore().load_private_key(path)


def test_config(initialised: DataDir) -> None:
    config = tomllib.loads(initialised.config_path.read_text())
    assert config == {
        "mqtt": {"host": "0.0.0.0", "port": 8883, "alpn_port": 0, "plaintext_port": 0},
        "limits": {"max_payload_bytes": 131072},
        "log": {"level": "INFO"},
    }
    assert config == DEFAULT_CONFIG


def test_server_certificate_chain_and_names(initialised: DataDir) -> None:
    ca_cert, _ = load_ca(initialised)
    chain = load_pem_certificates(initialised.server_cert_path.read_bytes())
    assert len(chain) == 2
    leaf, second = chain
    assert second == ca_cert
    leaf.verify_directly_issued_by(ca_cert)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku

    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    assert dns[0] == "localhost"
    assert dns.count("localhost") == 1
    assert "broker.example.com" in dns
    hostname = socket.gethostname().lower()
    if hostname and hostname != "localhost":
        assert hostname in dns
    assert len(dns) == len(set(dns))
    assert ips == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("2001:db8::1"),
    ]


def test_refuses_to_reinitialise(initialised: DataDir) -> None:
    before = initialised.ca_cert_path.read_bytes()
    with pytest.raises(DataDirError, match="already initialised"):
        init_data_dir(initialised.path)
    assert initialised.ca_cert_path.read_bytes() == before


def test_force_replaces_ca_server_and_config_but_keeps_master_key(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    master_key = datadir.master_key_path.read_bytes()
    ca_before = datadir.ca_cert_path.read_bytes()
    datadir.config_path.write_text("# edited\n")
    blob = datadir.open_keystore().seal(b"api secret")

    init_data_dir(datadir.path, force=True)
    assert datadir.master_key_path.read_bytes() == master_key
    assert datadir.open_keystore().unseal(blob) == b"api secret"
    assert datadir.ca_cert_path.read_bytes() != ca_before
    assert tomllib.loads(datadir.config_path.read_text()) == DEFAULT_CONFIG
    load_ca(datadir)


def test_interrupted_init_is_completed_and_keeps_the_ca(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    ca_before = datadir.ca_cert_path.read_bytes()
    # as if the run had stopped before the server certificate and the config
    datadir.server_cert_path.unlink()
    datadir.config_path.unlink()
    assert not datadir.exists()

    init_data_dir(datadir.path)
    assert datadir.exists()
    assert datadir.ca_cert_path.read_bytes() == ca_before
    ca_cert, _ = load_ca(datadir)
    load_pem_certificates(datadir.server_cert_path.read_bytes())[0].verify_directly_issued_by(
        ca_cert
    )


def test_interrupted_init_keeps_an_edited_config(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    datadir.config_path.write_text('[log]\nlevel = "DEBUG"\n')
    datadir.server_cert_path.unlink()
    init_data_dir(datadir.path)
    assert datadir.config_path.read_text() == '[log]\nlevel = "DEBUG"\n'


def test_orphan_ca_key_without_certificate_is_replaced(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    old_key = datadir.ca_key_path.read_bytes()
    for path in (datadir.ca_cert_path, datadir.server_cert_path, datadir.config_path):
        path.unlink()
    init_data_dir(datadir.path)
    assert datadir.ca_key_path.read_bytes() != old_key
    load_ca(datadir)


def test_ca_under_another_master_key_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datadir = init_data_dir(tmp_path / "data")
    datadir.config_path.unlink()
    ca_before = datadir.ca_key_path.read_bytes()
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(DataDirError, match="cannot be decrypted"):
        init_data_dir(datadir.path)
    assert datadir.ca_key_path.read_bytes() == ca_before


def test_master_key_from_environment_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master_key = os.urandom(32)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(master_key).decode())
    datadir = init_data_dir(tmp_path / "data")
    assert not datadir.master_key_path.exists()
    assert datadir.exists()
    Keystore(master_key).load_private_key(datadir.ca_key_path)
    monkeypatch.delenv(MASTER_KEY_ENV)
    with pytest.raises(KeystoreError, match="no master key"):
        load_ca(datadir)


def test_invalid_extra_name_fails_before_touching_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither an IP address nor a DNS name"):
        init_data_dir(tmp_path / "data", extra_names=["bad name"])
    assert not (tmp_path / "data").exists()
    with pytest.raises(TypeError):
        init_data_dir(tmp_path / "data", extra_names="single.string")


def test_wildcard_extra_name(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data", extra_names=["*.Devices.Example.COM."])
    leaf = load_pem_certificates(datadir.server_cert_path.read_bytes())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "*.devices.example.com" in san.get_values_for_type(x509.DNSName)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_data_dir() == Path("bastion-data")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path


def test_datadir_accepts_str_paths(tmp_path: Path) -> None:
    assert DataDir(str(tmp_path)).path == tmp_path  # type: ignore[arg-type]
    assert not DataDir(tmp_path).exists()
    with pytest.raises(TypeError):
        DataDir(42)  # type: ignore[arg-type]


def test_uninitialised_dir_has_no_ca(tmp_path: Path) -> None:
    with pytest.raises(DataDirError):
        load_ca(DataDir(tmp_path))
    with pytest.raises(DataDirError):
        server_ssl_context_for(DataDir(tmp_path))


# -- device files -----------------------------------------------------------------------


def test_issue_device_files(initialised: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = issue_device_files(initialised, "sensor-1", out)
    assert files.cert_path == out / "sensor-1.cert.pem"
    assert files.key_path == out / "sensor-1.key.pem"
    assert files.root_ca_path == out / "root-ca.pem"
    assert _mode(out) == 0o700
    assert _mode(files.key_path) == 0o600

    cert = load_pem_certificate(files.cert_path.read_bytes())
    key = load_pem_private_key(files.key_path.read_bytes())  # unencrypted: the device needs it
    assert cert.public_key() == key.public_key()
    assert cert.subject.rfc4514_string() == "CN=sensor-1"
    assert files.certificate_id == certificate_id(cert)
    ca_cert, _ = load_ca(initialised)
    assert load_pem_certificate(files.root_ca_path.read_bytes()) == ca_cert
    cert.verify_directly_issued_by(ca_cert)


def test_device_files_default_to_devices_dir(initialised: DataDir) -> None:
    files = issue_device_files(initialised, "default-dir")
    assert files.cert_path.parent == initialised.devices_dir


def test_device_files_are_not_overwritten(initialised: DataDir, tmp_path: Path) -> None:
    first = issue_device_files(initialised, "dev", tmp_path)
    key = first.key_path.read_bytes()
    with pytest.raises(FileExistsError):
        issue_device_files(initialised, "dev", tmp_path)
    assert first.key_path.read_bytes() == key
    second = issue_device_files(initialised, "dev", tmp_path, overwrite=True)
    assert second.key_path.read_bytes() != key
    assert second.certificate_id != first.certificate_id


@pytest.mark.parametrize(
    "name", ["", ".hidden", "../escape", "a/b", "with space", "x" * 65, "caf\u00e9"]
)
def test_device_name_is_validated(initialised: DataDir, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="device name"):
        issue_device_files(initialised, name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_aws_style_device_names(initialised: DataDir, tmp_path: Path) -> None:
    files = issue_device_files(initialised, "arn_thing:floor-2.v1", tmp_path)
    assert files.cert_path.name == "arn_thing:floor-2.v1.cert.pem"


# -- end to end: the broker's context and a device's files ------------------------------


def test_device_files_connect_to_data_dir_server(initialised: DataDir, tmp_path: Path) -> None:
    files = issue_device_files(initialised, "e2e", tmp_path)
    server_context = server_ssl_context_for(initialised)
    client_context = client_ssl_context(
        files.root_ca_path.read_bytes(),
        files.cert_path,
        files.key_path,
        alpn_protocols=["x-amzn-mqtt-ca"],
    )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            accepted, _ = listener.accept()
            with accepted:
                accepted.settimeout(5)
                server = server_context.wrap_socket(
                    accepted, server_side=True, do_handshake_on_connect=False
                )
                client = client_context.wrap_socket(
                    raw, server_hostname="localhost", do_handshake_on_connect=False
                )
                with server, client:
                    _pump_handshake(server, client)
                    peer = peer_certificate(server)
                    assert peer is not None
                    assert certificate_id(peer) == files.certificate_id
                    assert server.selected_alpn_protocol() == "x-amzn-mqtt-ca"


def _pump_handshake(server: ssl.SSLSocket, client: ssl.SSLSocket) -> None:
    """Drive both handshakes from one thread with non-blocking sockets."""
    server.setblocking(False)
    client.setblocking(False)
    done: set[ssl.SSLSocket] = set()
    for _ in range(1000):
        for side in (server, client):
            if side in done:
                continue
            try:
                side.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            done.add(side)
        if len(done) == 2:
            return
        select.select([s for s in (server, client) if s not in done], [], [], 0.1)
    raise AssertionError("handshake did not complete")
