"""Detect against a real Bastion: real TLS, real devices (paho), a hand-moved clock.

Evaluation ticks are driven by the tests (``Detect.tick``), never by waiting: the
running app's detect interval is long, its clock is :class:`ManualClock`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, DetectConfig, MQTTConfig
from bastion.datadir import DataDir
from bastion.defender.detect import ViolationEvent
from support.clients import DeviceFiles
from support.clock import ManualClock
from support.receivers import Mailbox, Webhook, ca_file, smtp_server, test_ca, webhook
from support.running import RunningBastion

__all__ = ["Mailbox", "Webhook", "ca_file", "smtp_server", "test_ca", "webhook"]

INTERVAL = 60.0
TEST_LIMITS = BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5)


@dataclass
class Detect:
    """A running Bastion with detect, its clock, and helpers."""

    running: RunningBastion
    clock: ManualClock
    make_device: Callable[..., DeviceFiles]

    @property
    def app(self) -> Any:
        return self.running.app

    @property
    def service(self) -> Any:
        return self.running.app.detect.service

    def tick(self) -> list[ViolationEvent]:
        """Move the clock one interval and run one evaluation."""
        self.clock.advance(INTERVAL)
        return self.running.run(self.running.app.detect.tick())

    def group(self, *devices: DeviceFiles) -> str:
        name = f"detect-{uuid.uuid4().hex[:8]}"
        registry = self.app.plane.registry
        registry.create_thing_group(name)
        for device in devices:
            registry.add_thing_to_thing_group(thing_group_name=name, thing_name=device.name)
        return name

    def profile(self, group: str, *behaviors: dict[str, Any], **options: Any) -> str:
        name = f"sp-{uuid.uuid4().hex[:8]}"
        self.service.create_security_profile(name, behaviors=list(behaviors),
                                             now=self.clock.time(), **options)
        self.service.attach(name, self.service.target_arn(f"thinggroup/{group}"))
        return name


@pytest.fixture
def detect(datadir: DataDir, make_device: Callable[..., DeviceFiles]) -> Iterator[Detect]:
    clock = ManualClock(datetime.fromtimestamp(1_800_000_000, UTC))
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0), limits=TEST_LIMITS,
                    api=ApiConfig(enabled=False), detect=DetectConfig(interval=INTERVAL))
    running = RunningBastion(config, datadir, clock=clock)
    running.start()
    try:
        yield Detect(running, clock, make_device)
    finally:
        running.stop()
