"""The data directory of an embedded Bastion installation (``bastion-data/`` by default).

Layout (directories 0700, secrets 0600)::

    bastion-data/
      config.toml              settings read by the config loader
      master.key               base64 master key (absent when BASTION_MASTER_KEY is set)
      bastion.db               SQLite database (created by the store, not by init)
      ca/root-ca.cert.pem      the Bastion root CA certificate
      ca/root-ca.key.pem       its private key, encrypted under the master key
      tls/server.cert.pem      the broker's certificate, followed by the CA certificate
      tls/server.key.pem       its private key, encrypted under the master key
      trail-digest.pub.pem     the public key of the trail's signed digests (written by
                               `bastion init` or the first start; its private key is
                               sealed in the database)
      trail-digests/           the signed digests of the trail ([trail] digest_dir)
      metrics.token            the bearer token a Prometheus scraper presents (0600;
                               created by `bastion init` or the first start)
      logs/                    bastion.log (rotated; [log] file) and aws-iot.jsonl,
                               created by the first `bastion serve` that writes there
      devices/                 default output of issue_device_files

Theory of operation of :func:`init_data_dir`: every file is written atomically, private
keys before the certificates that reference them and ``config.toml`` last, so an
interrupted run leaves no partial key and no "initialised" directory (:meth:`DataDir.exists`
is false). Running it again completes the directory: an existing master key is kept, and
an existing CA (certificate *and* key, matching) is reused rather than replaced, so device
certificates issued by it stay valid. ``force=True`` replaces the CA, the server
certificate and ``config.toml`` of an initialised directory; it still keeps the master key
(secrets sealed in the database depend on it), the database, logs and devices.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import tomli_w
from cryptography import x509

from bastion.pki import (
    DEFAULT_ALPN_PROTOCOLS,
    TLS12_CIPHERS,
    IPAddress,
    Keystore,
    KeystoreError,
    PrivateKey,
    cert_to_pem,
    certificate_id,
    create_root_ca,
    issue_device_certificate,
    issue_server_certificate,
    load_pem_certificate,
    private_key_to_pem,
    server_ssl_context,
    write_file_atomically,
)

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_CONFIG",
    "DataDir",
    "DataDirError",
    "DeviceFiles",
    "default_data_dir",
    "init_data_dir",
    "issue_device_files",
    "load_ca",
    "server_ssl_context_for",
]

DATA_DIR_ENV: Final = "BASTION_DATA_DIR"
"""Environment variable naming the data directory (default ``./bastion-data``)."""

DEFAULT_CONFIG: Final[Mapping[str, Mapping[str, Any]]] = {
    "mqtt": {
        "host": "0.0.0.0",
        "port": 8883,
        "alpn_port": 0,
        "plaintext_port": 0,
    },
    "limits": {"max_payload_bytes": 131072},
    "log": {"level": "INFO"},
}
"""The ``config.toml`` written by :func:`init_data_dir`."""

_CONFIG_HEADER = b"""\
# Bastion configuration, written by `bastion init`.
# [mqtt] port: mutual-TLS MQTT listener.
#        alpn_port: extra TLS listener for AWS SDKs using ALPN x-amzn-mqtt-ca (e.g. 443);
#                   0 = off.
#        websocket_port: MQTT over WebSocket Secure (wss://host:port/mqtt, SigV4-presigned
#                   or a client certificate; AWS uses 443); 0 = off (docs/websockets.md).
#        plaintext_port: unauthenticated plaintext listener, explicit opt-in only; 0 = off.

"""

_DIR_MODE = 0o700
_PUBLIC_MODE = 0o644
_DEVICE_NAME = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


class DataDirError(Exception):
    """The data directory cannot be initialised or used as asked (an operator problem)."""


@dataclass(frozen=True, slots=True)
class DataDir:
    """Paths of a data directory. Creating the object touches nothing on disk.

    :raises TypeError: ``path`` is not a path (a ``str`` is converted to :class:`Path`).
    """

    path: Path

    def __post_init__(self) -> None:
        if not isinstance(self.path, str | os.PathLike):
            raise TypeError(f"path must be a path, not {type(self.path).__name__}")
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def master_key_path(self) -> Path:
        return self.path / "master.key"

    @property
    def metrics_token_path(self) -> Path:
        """The scrape token's default file (``[metrics] token_file`` may name another)."""
        return self.path / "metrics.token"

    @property
    def db_path(self) -> Path:
        return self.path / "bastion.db"

    @property
    def ca_dir(self) -> Path:
        return self.path / "ca"

    @property
    def ca_cert_path(self) -> Path:
        return self.ca_dir / "root-ca.cert.pem"

    @property
    def ca_key_path(self) -> Path:
        """The CA private key, encrypted under the master key."""
        return self.ca_dir / "root-ca.key.pem"

    @property
    def tls_dir(self) -> Path:
        return self.path / "tls"

    @property
    def server_cert_path(self) -> Path:
        """The server certificate followed by the CA certificate (a chain file)."""
        return self.tls_dir / "server.cert.pem"

    @property
    def server_key_path(self) -> Path:
        """The server private key, encrypted under the master key."""
        return self.tls_dir / "server.key.pem"

    @property
    def trail_digest_public_key_path(self) -> Path:
        """The public key that verifies the trail's signed digests (PEM, 0644)."""
        return self.path / "trail-digest.pub.pem"

    @property
    def log_dir(self) -> Path:
        return self.path / "logs"

    @property
    def devices_dir(self) -> Path:
        return self.path / "devices"

    @property
    def serve_state_path(self) -> Path:
        """What a running ``bastion serve`` listens on (JSON; ``bastion status`` reads it),
        written when it is ready and removed when it stops."""
        return self.path / "serve.json"

    def exists(self) -> bool:
        """Whether the directory is initialised: config, CA and server certificate present."""
        return all(
            p.is_file()
            for p in (
                self.config_path,
                self.ca_cert_path,
                self.ca_key_path,
                self.server_cert_path,
                self.server_key_path,
            )
        )

    def open_keystore(self, *, create: bool = False) -> Keystore:
        """The keystore of this installation (``BASTION_MASTER_KEY``, else ``master.key``).

        :param create: create ``master.key`` if there is neither the variable nor the file.
        :raises KeystoreError: malformed master key, or a key file readable by others.
        :raises FileNotFoundError: no master key and ``create`` is false.
        """
        return Keystore.open(self.master_key_path, create=create)


@dataclass(frozen=True, slots=True)
class DeviceFiles:
    """What :func:`issue_device_files` wrote."""

    name: str
    cert_path: Path
    key_path: Path
    root_ca_path: Path
    certificate_id: str


def default_data_dir() -> Path:
    """``$BASTION_DATA_DIR`` if set (and not empty), else ``./bastion-data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or "bastion-data")


def init_data_dir(
    path: str | os.PathLike[str], *, extra_names: Sequence[str] = (), force: bool = False,
    database_url: str | None = None,
) -> DataDir:
    """Create (or complete) a data directory: master key, root CA, server certificate,
    ``config.toml``. See the module docstring for what is kept and what is replaced.

    :param database_url: written to ``config.toml`` as ``[store] database_url`` (also
        into a kept ``config.toml``); ``None`` leaves the store as configured.

    The server certificate's subjectAltName holds ``localhost``, ``127.0.0.1``, ``::1``,
    this host's name and FQDN, and ``extra_names`` (an IP address if it parses as one,
    else a DNS name), without duplicates.

    :raises DataDirError: the directory is already initialised and ``force`` is false, or
        its CA key cannot be decrypted with the master key in use.
    :raises ValueError: an extra name is neither an IP address nor a DNS name.
    :raises KeystoreError: the master key (variable or file) is malformed or exposed.
    :raises OSError: the directory cannot be created or written.
    """
    datadir = DataDir(Path(path))
    dns_names, ip_addresses = _server_names(extra_names)
    if datadir.exists() and not force:
        raise DataDirError(
            f"{datadir.path} is already initialised; pass force=True to replace its CA, "
            "server certificate and config"
        )
    for directory in (
        datadir.path,
        datadir.ca_dir,
        datadir.tls_dir,
        datadir.devices_dir,
    ):
        directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        directory.chmod(_DIR_MODE)
    keystore = datadir.open_keystore(create=True)

    ca = None if force else _existing_ca(datadir, keystore)
    if ca is None:
        ca_cert, ca_key = create_root_ca()
        keystore.save_private_key(datadir.ca_key_path, ca_key)
        write_file_atomically(datadir.ca_cert_path, cert_to_pem(ca_cert), mode=_PUBLIC_MODE)
    else:
        ca_cert, ca_key = ca

    server_cert, server_key = issue_server_certificate(
        ca_cert, ca_key, dns_names=dns_names, ip_addresses=ip_addresses
    )
    keystore.save_private_key(datadir.server_key_path, server_key)
    write_file_atomically(
        datadir.server_cert_path,
        cert_to_pem(server_cert) + cert_to_pem(ca_cert),
        mode=_PUBLIC_MODE,
    )

    if force or not datadir.config_path.exists():
        config: dict[str, Any] = {k: dict(v) for k, v in DEFAULT_CONFIG.items()}
        if database_url is not None:
            config["store"] = {"database_url": database_url}
        write_file_atomically(
            datadir.config_path,
            _CONFIG_HEADER + tomli_w.dumps(config).encode("utf-8"),
            mode=0o600, overwrite=True,
        )
    elif database_url is not None:
        kept = tomllib.loads(datadir.config_path.read_text(encoding="utf-8"))
        kept.setdefault("store", {})["database_url"] = database_url
        write_file_atomically(
            datadir.config_path,
            _CONFIG_HEADER + tomli_w.dumps(kept).encode("utf-8"), mode=0o600, overwrite=True,
        )
    return datadir


def load_ca(
    datadir: DataDir, keystore: Keystore | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """Load the root CA certificate and decrypt its private key.

    :param keystore: defaults to ``datadir.open_keystore()``.
    :raises DataDirError: the CA files are missing.
    :raises KeystoreError: the key cannot be decrypted (another master key) or the
        master key is missing/malformed.
    :raises ValueError: the certificate file does not hold one PEM certificate.
    """
    if not (datadir.ca_cert_path.is_file() and datadir.ca_key_path.is_file()):
        raise DataDirError(f"{datadir.path} has no CA; run `bastion init`")
    if keystore is None:
        keystore = _open_existing_keystore(datadir)
    cert = load_pem_certificate(datadir.ca_cert_path.read_bytes())
    key = keystore.load_private_key(datadir.ca_key_path)
    if key.public_key() != cert.public_key():
        raise DataDirError(f"{datadir.ca_key_path} is not the key of {datadir.ca_cert_path}")
    return cert, key


def server_ssl_context_for(
    datadir: DataDir,
    *,
    extra_trusted_ca_pems: Sequence[bytes | str] = (),
    alpn_protocols: Sequence[str] | None = DEFAULT_ALPN_PROTOCOLS,
    keystore: Keystore | None = None,
    session_tickets: int = 0,
    tls12_ciphers: str | None = TLS12_CIPHERS,
) -> ssl.SSLContext:
    """The broker's server context from the data directory's certificate and key.

    ``tls12_ciphers``: see :func:`bastion.pki.server_ssl_context`.

    Devices are trusted when issued by the data directory's root CA or by one of
    ``extra_trusted_ca_pems`` (e.g. CAs registered in the registry).

    :raises DataDirError: the directory is not initialised.
    :raises KeystoreError: the master key is missing or malformed.
    :raises ssl.SSLError: the key cannot be decrypted with the master key.
    """
    if not datadir.exists():
        raise DataDirError(f"{datadir.path} is not initialised; run `bastion init`")
    if keystore is None:
        keystore = _open_existing_keystore(datadir)
    return server_ssl_context(
        datadir.server_cert_path,
        datadir.server_key_path,
        trusted_ca_pems=[datadir.ca_cert_path.read_bytes(), *extra_trusted_ca_pems],
        alpn_protocols=alpn_protocols,
        key_password=keystore.private_key_password,
        session_tickets=session_tickets,
        tls12_ciphers=tls12_ciphers,
    )


def issue_device_files(
    datadir: DataDir,
    name: str,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    valid_days: int = 3650,
    overwrite: bool = False,
    keystore: Keystore | None = None,
) -> DeviceFiles:
    """Issue a device certificate from the data directory's CA and write the files a
    device needs: ``NAME.cert.pem``, ``NAME.key.pem`` (unencrypted, mode 0600) and
    ``root-ca.pem``.

    :param name: the certificate's CN and file name stem: 1-64 characters of
        ``A-Z a-z 0-9 _ - : .``, not starting with a dot.
    :param out_dir: created (0700) if missing; defaults to ``datadir.devices_dir``.
    :param overwrite: replace an existing certificate and key of that name.
    :raises ValueError: invalid ``name``, ``valid_days`` < 1.
    :raises FileExistsError: the key or certificate file exists and ``overwrite`` is false.
    :raises DataDirError: the directory has no CA.
    :raises KeystoreError: the CA key cannot be decrypted.
    :raises OSError: the files cannot be written.
    """
    if not isinstance(name, str) or not _DEVICE_NAME.fullmatch(name):
        raise ValueError(
            f"device name {name!r} must be 1-64 characters of A-Z a-z 0-9 _ - : . "
            "and not start with a dot"
        )
    directory = datadir.devices_dir if out_dir is None else Path(out_dir)
    cert_path = directory / f"{name}.cert.pem"
    key_path = directory / f"{name}.key.pem"
    root_ca_path = directory / "root-ca.pem"
    if not overwrite:
        for existing in (cert_path, key_path):
            if existing.exists():
                raise FileExistsError(f"{existing} exists; pass overwrite=True to replace it")
    ca_cert, ca_key = load_ca(datadir, keystore)
    cert, key = issue_device_certificate(ca_cert, ca_key, common_name=name, valid_days=valid_days)
    directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    write_file_atomically(key_path, private_key_to_pem(key), mode=0o600, overwrite=overwrite)
    write_file_atomically(cert_path, cert_to_pem(cert), mode=_PUBLIC_MODE, overwrite=overwrite)
    write_file_atomically(root_ca_path, cert_to_pem(ca_cert), mode=_PUBLIC_MODE)
    return DeviceFiles(
        name=name,
        cert_path=cert_path,
        key_path=key_path,
        root_ca_path=root_ca_path,
        certificate_id=certificate_id(cert),
    )


def _open_existing_keystore(datadir: DataDir) -> Keystore:
    try:
        return datadir.open_keystore()
    except FileNotFoundError:
        raise KeystoreError(
            f"no master key: set BASTION_MASTER_KEY or restore {datadir.master_key_path}"
        ) from None


def _existing_ca(
    datadir: DataDir, keystore: Keystore
) -> tuple[x509.Certificate, PrivateKey] | None:
    """The CA to reuse when completing a directory, or ``None`` to create a new one."""
    if not (datadir.ca_cert_path.is_file() and datadir.ca_key_path.is_file()):
        return None  # never complete: nothing was issued by it
    try:
        cert = load_pem_certificate(datadir.ca_cert_path.read_bytes())
    except ValueError:
        return None  # a certificate file is written whole or not at all; unusable anyway
    try:
        key = keystore.load_private_key(datadir.ca_key_path)
    except KeystoreError as exc:
        raise DataDirError(
            f"{datadir.ca_key_path} cannot be decrypted with the master key in use; "
            "refusing to replace the CA (pass force=True to create a new one)"
        ) from exc
    if key.public_key() != cert.public_key():
        return None  # interrupted force run: the key was replaced, its certificate not yet
    return cert, key


def _server_names(extra_names: Sequence[str]) -> tuple[list[str], list[IPAddress]]:
    if isinstance(extra_names, str):
        raise TypeError("extra_names must be a sequence of names, not a single string")
    dns_names: list[str] = []
    ip_addresses: list[IPAddress] = []
    host_names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    for raw, strict in [(n, False) for n in host_names] + [(n, True) for n in extra_names]:
        parsed = _parse_name(raw)
        if parsed is None:
            if strict:
                raise ValueError(f"{raw!r} is neither an IP address nor a DNS name")
            continue  # an odd local host name must not break `bastion init`
        if isinstance(parsed, str):
            if parsed not in dns_names:
                dns_names.append(parsed)
        elif parsed not in ip_addresses:
            ip_addresses.append(parsed)
    return dns_names, ip_addresses


def _parse_name(raw: str) -> str | IPAddress | None:
    if not isinstance(raw, str):
        raise TypeError(f"server names must be str, not {type(raw).__name__}")
    name = raw.strip()
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    name = name.rstrip(".").lower()
    labels = name.split(".")
    if labels and labels[0] == "*":
        labels = labels[1:]  # wildcard in the leftmost label only
        if len(labels) < 2:
            return None
    if not name or len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return None
    return name
