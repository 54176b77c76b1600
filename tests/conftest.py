"""Shared fixtures: an initialised data directory, device certificates, a running Bastion."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.broker import BrokerLimits
from bastion.config import Config, MQTTConfig
from bastion.datadir import DataDir, init_data_dir, issue_device_files
from support.clients import DeviceFiles
from support.running import RunningBastion

# Short deadlines so the bad-client tests finish quickly; normal clients are unaffected.
TEST_LIMITS = BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5)


@pytest.fixture(scope="session")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    return init_data_dir(tmp_path_factory.mktemp("bastion") / "data")


_names = itertools.count(1)


@pytest.fixture(scope="session")
def make_device(datadir: DataDir, tmp_path_factory: pytest.TempPathFactory
                ) -> Callable[..., DeviceFiles]:
    out = tmp_path_factory.mktemp("devices")

    def make(name: str | None = None) -> DeviceFiles:
        name = name or f"device-{next(_names)}"
        files = issue_device_files(datadir, name, out)
        return DeviceFiles(name, files.cert_path, files.key_path, files.root_ca_path)

    return make


@pytest.fixture
def device(make_device: Callable[..., DeviceFiles]) -> DeviceFiles:
    return make_device()


def start_bastion(datadir: DataDir, limits: BrokerLimits = TEST_LIMITS, **mqtt: object
                  ) -> RunningBastion:
    config = Config(mqtt=dataclasses.replace(MQTTConfig(host="127.0.0.1", port=0), **mqtt),
                    limits=limits)
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
