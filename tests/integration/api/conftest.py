"""A real Bastion with its REST API (HTTPS, access keys for three roles), a second one in
emulator mode (plain HTTP), and boto3 clients pointed at them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from sqlalchemy.engine import URL

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import (
    ApiConfig,
    Config,
    CredentialsConfig,
    MQTTConfig,
    StoreConfig,
    ThreatsConfig,
)
from bastion.datadir import DataDir, init_data_dir
from support.clients import DeviceFiles
from support.databases import BACKENDS, _pg_schemas, fresh_database_url
from support.running import RunningBastion

__all__ = ["_pg_schemas", "fresh_database_url"]  # the store fixtures, for the crash test

REGION = "us-east-1"
ACCOUNT = "123456789012"
KEYS = {
    "admin": ("AKIAADMIN0000000001", "admin-secret/abcdefghijklmnopqrstuvwxyz01"),
    "operator": ("AKIAOPERATOR0000001", "operator-secret/abcdefghijklmnopqrstuvwx"),
    "auditor": ("AKIAAUDITOR00000001", "auditor-secret/abcdefghijklmnopqrstuvwxy"),
}
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                        read_timeout=10)
OPEN_DOCUMENT = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*",'
                 '"Resource":"*"}]}')


@dataclass
class ApiBastion:
    """A running Bastion and how to reach its API."""

    running: RunningBastion
    trail: MemoryTrail
    url: str
    datadir: DataDir
    verify: str | bool

    @property
    def mqtt_port(self) -> int:
        return self.running.port

    @property
    def credentials_url(self) -> str:
        """The credentials provider's ``https://host:port`` (``api_bastion`` only)."""
        server = self.running.app.credentials
        assert server is not None, "this Bastion runs no credentials provider"
        return f"https://127.0.0.1:{server.port}"

    def client(self, service: str = "iot", role: str = "admin", *, region: str = REGION,
               key: tuple[str, str] | None = None) -> Any:
        key_id, secret = key or KEYS[role]
        return boto3.client(service, endpoint_url=self.url, region_name=region,
                            aws_access_key_id=key_id, aws_secret_access_key=secret,
                            verify=self.verify, config=NO_RETRIES)


def _start(datadir: DataDir, api: ApiConfig, trail: MemoryTrail, *,
           credentials_provider: bool = False) -> RunningBastion:
    # The session's server answers many deliberately bad signatures from 127.0.0.1 (the
    # security tests): threat detection still finds the bursts, but does not block the
    # address every other test calls from (tests/integration/threats test the block).
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=api, credentials=CredentialsConfig(
                        enabled=credentials_provider, host="127.0.0.1", port=0),
                    threats=ThreatsConfig(block_seconds=0))
    running = RunningBastion(config, datadir, credentials=StaticCredentials(
        {key_id: (secret, Role(role)) for role, (key_id, secret) in KEYS.items()}), trail=trail)
    return running.start()


@pytest.fixture(scope="session")
def api_bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiBastion]:
    """Normal mode, HTTPS with the data directory's server certificate; with the
    credentials provider (devices that call AWS APIs, e.g. the OTA examples' revocation
    check)."""
    datadir = init_data_dir(tmp_path_factory.mktemp("api") / "data")
    trail = MemoryTrail()
    running = _start(datadir, ApiConfig(host="127.0.0.1", port=0), trail,
                     credentials_provider=True)
    try:
        api = running.app.api
        assert api is not None
        yield ApiBastion(running, trail, api.url, datadir, str(datadir.ca_cert_path))
    finally:
        running.stop()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiBastion]:
    """Emulator mode over plain HTTP on loopback."""
    datadir = init_data_dir(tmp_path_factory.mktemp("emulator") / "data")
    trail = MemoryTrail()
    running = _start(datadir, ApiConfig(host="127.0.0.1", port=0, plaintext=True,
                                        emulator=True), trail)
    try:
        api = running.app.api
        assert api is not None
        yield ApiBastion(running, trail, api.url, datadir, False)
    finally:
        running.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def indexed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            _pg_schemas: Callable[[], URL]) -> Iterator[ApiBastion]:
    """A Bastion of its own (the indexing configuration is account-wide), on each store."""
    datadir = init_data_dir(tmp_path_factory.mktemp("indexed") / "data")
    url = ("" if request.param == "sqlite"
           else _pg_schemas().render_as_string(hide_password=False))
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0), store=StoreConfig(url))
    trail = MemoryTrail()
    running = RunningBastion(config, datadir, credentials=StaticCredentials(
        {key_id: (secret, Role(role)) for role, (key_id, secret) in KEYS.items()}),
        trail=trail).start()
    try:
        api = running.app.api
        assert api is not None
        yield ApiBastion(running, trail, api.url, datadir, str(datadir.ca_cert_path))
    finally:
        running.stop()


@pytest.fixture(scope="session")
def iot(api_bastion: ApiBastion) -> Any:
    return api_bastion.client()


@pytest.fixture(scope="session")
def iot_data(api_bastion: ApiBastion) -> Any:
    return api_bastion.client("iot-data")


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that no other test uses: ``unique("thing")`` → ``thing-1a2b3c4d``."""
    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"
    return make


def device_through_api(api: ApiBastion, iot: Any, name: str, out: Path,
                       policy_document: str = OPEN_DOCUMENT) -> DeviceFiles:
    """Register a device with API calls only (thing, keys and certificate, policy) and
    write its files for an MQTT client."""
    iot.create_thing(thingName=name)
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName=name, principal=created["certificateArn"])
    iot.create_policy(policyName=f"{name}-policy", policyDocument=policy_document)
    iot.attach_policy(policyName=f"{name}-policy", target=created["certificateArn"])
    out.mkdir(parents=True, exist_ok=True)
    cert, key = out / f"{name}.cert.pem", out / f"{name}.key.pem"
    cert.write_text(created["certificatePem"])
    key.write_text(created["keyPair"]["PrivateKey"])
    key.chmod(0o600)
    return DeviceFiles(name, cert, key, api.datadir.ca_cert_path, created["certificateId"],
                       created["certificateArn"])
