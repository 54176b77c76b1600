"""Shared fixtures: an initialised data directory, device certificates, a running Bastion."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig
from bastion.controlplane import ControlPlane, open_control_plane, provision_device
from bastion.datadir import DataDir, init_data_dir
from support.clients import DeviceFiles
from support.running import RunningBastion

# Short deadlines so the bad-client tests finish quickly; normal clients are unaffected.
TEST_LIMITS = BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5)


@pytest.fixture(scope="session")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    return init_data_dir(tmp_path_factory.mktemp("bastion") / "data")


_names = itertools.count(1)

# Broker-behaviour tests are about MQTT, not authorization: their devices get this policy.
OPEN_POLICY = "bastion-test-open"
OPEN_DOCUMENT = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}'
)


@pytest.fixture(scope="session")
def plane(datadir: DataDir) -> Iterator[ControlPlane]:
    """The registry of the session's data directory, seen from the test thread. Changes
    made here do not notify a running broker: use ``bastion.app.plane`` for those."""
    control = open_control_plane(Config(), datadir)
    control.policies.create_policy(OPEN_POLICY, OPEN_DOCUMENT)
    yield control
    control.close()


@pytest.fixture(scope="session")
def make_device(datadir: DataDir, plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
                ) -> Callable[..., DeviceFiles]:
    """Register a device (thing + ACTIVE certificate + policy) and write its files.

    ``policy=None`` attaches the least-privilege device policy of ``bastion device create``.
    """
    out = tmp_path_factory.mktemp("devices")

    def make(name: str | None = None, *, policy: str | None = OPEN_POLICY) -> DeviceFiles:
        name = name or f"device-{next(_names)}"
        files = provision_device(plane, datadir, name, out, policy_name=policy)
        return DeviceFiles(name, files.cert_path, files.key_path, files.root_ca_path,
                           files.certificate_id, files.certificate_arn)

    return make


@pytest.fixture
def device(make_device: Callable[..., DeviceFiles]) -> DeviceFiles:
    return make_device()


def start_bastion(datadir: DataDir, limits: BrokerLimits = TEST_LIMITS,
                  api: ApiConfig | None = None, **mqtt: object) -> RunningBastion:
    """A running Bastion on free ports. The REST API is off unless ``api`` is given."""
    config = Config(mqtt=dataclasses.replace(MQTTConfig(host="127.0.0.1", port=0), **mqtt),
                    limits=limits, api=api or ApiConfig(enabled=False))
    return RunningBastion(config, datadir).start()


@pytest.fixture
def bastion(datadir: DataDir) -> Iterator[RunningBastion]:
    running = start_bastion(datadir)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def ca_path(datadir: DataDir) -> Path:
    return datadir.ca_cert_path
