"""A real Bastion with its REST API (SigV4 keys), the rules engine writing to a temporary
log directory and a fresh PostgreSQL schema, and boto3/paho clients pointed at it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config as BotoConfig
from sqlalchemy.engine import URL

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig, RulesConfig
from bastion.datadir import DataDir
from bastion.rules import RulesProcess
from support.clients import DeviceFiles
from support.databases import _pg_schemas, _session_store, store
from support.receivers import Webhook, ca_file, test_ca, webhook
from support.running import RunningBastion

__all__ = ["Webhook", "_pg_schemas", "_session_store", "ca_file", "store", "test_ca",
           "webhook"]

NATS_URL = "nats://127.0.0.1:4222"  # the machine's NATS, as the cluster tests use it
REGION = "us-east-1"
KEY = ("AKIARULESADMIN000001", "rules-secret/abcdefghijklmnopqrstuvwxyz012")
OBJECT_STORE_KEY = ("rules-test", "rules-test-secret")
"""What the rules process finds in its environment for the s3 action (boto3's chain)."""
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                        read_timeout=10)


@dataclass
class RulesBastion:
    running: RunningBastion
    trail: MemoryTrail
    url: str
    ca: str
    log_dir: Path
    sql_url: URL
    object_store: str
    make_device: Callable[..., DeviceFiles]

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def engine(self) -> RulesProcess:
        engine = self.running.app.rules
        assert engine is not None
        return engine

    def client(self, service: str = "iot") -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=KEY[0], aws_secret_access_key=KEY[1],
                            verify=self.ca, config=NO_RETRIES)

    def wait_enabled(self, name: str, present: bool = True, timeout: float = 5.0) -> None:
        """Until the engine has (or no longer has) the rule ``name`` in its working set."""
        deadline = time.monotonic() + timeout
        while (name in self.engine.enabled_rules()) != present:
            if time.monotonic() > deadline:
                raise AssertionError(f"rule {name} never became {'en' if present else 'dis'}"
                                     "abled in the engine")
            time.sleep(0.01)

    def database(self) -> sa.Engine:
        return sa.create_engine(self.sql_url)

    @contextmanager
    def table(self, name: str, columns: str) -> Iterator[sa.Engine]:
        """A table ``name`` (``columns`` as in CREATE TABLE) in the rules database for
        the length of the block, and an engine on that database."""
        database = self.database()
        try:
            with database.begin() as conn:
                conn.exec_driver_sql(f"CREATE TABLE {name} ({columns})")
            yield database
        finally:
            with database.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            database.dispose()


@pytest.fixture(scope="session")
def object_store() -> Iterator[str]:
    """The endpoint of an S3-compatible store for the s3 action: moto's server, a local
    stand-in for S3 (no real S3-compatible server installs from the package registries
    this project uses). It accepts any credentials."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rules_bastion(datadir: DataDir, make_device: Callable[..., DeviceFiles], ca_file: str,
                  object_store: str,
                  tmp_path_factory: pytest.TempPathFactory,
                  _pg_schemas: Callable[[], URL]) -> Iterator[RulesBastion]:
    sql_url = _pg_schemas()
    log_dir = tmp_path_factory.mktemp("rules-logs")
    config = Config(
        mqtt=MQTTConfig(host="127.0.0.1", port=0),
        limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
        api=ApiConfig(host="127.0.0.1", port=0),
        rules=RulesConfig(attempts=2, backoff_seconds=0.05, action_timeout=5.0,
                          sql_url=sql_url.render_as_string(hide_password=False),
                          log_dir=str(log_dir), http_cafile=ca_file, nats_url=NATS_URL,
                          s3_endpoint_url=object_store))
    trail = MemoryTrail()
    with pytest.MonkeyPatch.context() as environment:
        # The rules process starts with these in its environment, as an operator would
        # start Bastion with the object store's credentials.
        environment.setenv("AWS_ACCESS_KEY_ID", OBJECT_STORE_KEY[0])
        environment.setenv("AWS_SECRET_ACCESS_KEY", OBJECT_STORE_KEY[1])
        running = RunningBastion(config, datadir, trail=trail, credentials=StaticCredentials(
            {KEY[0]: (KEY[1], Role.ADMIN)})).start()
        try:
            api = running.app.api
            assert api is not None
            yield RulesBastion(running, trail, api.url, str(datadir.ca_cert_path), log_dir,
                               sql_url, object_store, make_device)
        finally:
            running.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses: ``unique("rule")`` → ``rule_1a2b3c4d``."""
    def make(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:8]}"
    return make
