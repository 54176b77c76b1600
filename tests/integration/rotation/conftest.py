"""Certificate rotation against a running Bastion whose clock the test moves: devices
running AWS's device SDK through the steps of ``examples/rotate_certificate.py`` (the
example's own code, imported from the repository), with certificates from Bastion's CA.

Each test gets a thing group of its own with a rotation policy; the fleet default starts
no jobs, so certificates of other tests' devices are never rotated here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.config import ApiConfig, Config, MQTTConfig, RotationConfig
from bastion.controlplane import ControlPlane, device_policy_document
from bastion.datadir import DataDir
from bastion.rotation import GroupPolicy, RotationKeeper, RotationService, RotationStatus
from bastion.rotation._sweep import LAST_SWEEP_KEY
from conftest import TEST_LIMITS
from support.clients import DeviceFiles
from support.clock import ManualClock
from support.examples import load_example
from support.running import RunningBastion

ROTATION_DEVICE_POLICY = "bastion-test-rotation-device"
DEADLINE = 10.0


example = load_example("rotate_certificate.py")


def rotation_device_policy(plane: ControlPlane) -> str:
    """The least-privilege device policy plus the CSR topics a rotating device uses (JSON
    and CBOR)."""
    document = json.loads(device_policy_document(plane.account))
    arn = plane.account.arn
    csrs = [f"$aws/certificates/create-from-csr/{form}" for form in ("json", "cbor")]
    document["Statement"] += [
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [arn(f"topic/{csr}{tail}") for csr in csrs for tail in ("", "/*")]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [arn(f"topicfilter/{csr}/*") for csr in csrs]},
    ]
    return json.dumps(document)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE,
               poke: Callable[[], None] | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy (poking between tries)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if poke is not None:
            poke()
        time.sleep(0.05)


@dataclasses.dataclass
class Rig:
    """The running Bastion, its hand-moved clock, and helpers."""

    bastion: RunningBastion
    clock: ManualClock
    group: str
    make: Callable[..., DeviceFiles]

    @property
    def service(self) -> RotationService:
        return self.bastion.app.services.rotation.service

    @property
    def plane(self) -> ControlPlane:
        return self.bastion.app.plane

    @property
    def keeper(self) -> RotationKeeper:
        return self.bastion.app.component(RotationKeeper)

    def device(self, *, in_group: bool = True, policy: str = ROTATION_DEVICE_POLICY
               ) -> DeviceFiles:
        files = self.make(f"rot-{uuid.uuid4().hex[:10]}", policy=policy)
        if in_group:
            self.plane.registry.add_thing_to_thing_group(thing_group_name=self.group,
                                                         thing_name=files.name)
        return files

    def sdk(self, files: DeviceFiles, *, cert: Path | None = None, key: Path | None = None,
            payload_format: str = "json") -> Any:
        return example.RotationDevice(endpoint="localhost", port=self.bastion.port,
                                      thing_name=files.name, cert=cert or files.cert,
                                      key=key or files.key, ca=files.ca,
                                      payload_format=payload_format)

    def set_max_age(self, days: int) -> None:
        policies = self.service.policies
        policy = policies.get(self.group)
        policies.put(dataclasses.replace(policy, max_age_days=days))

    def round(self) -> None:
        """Poke the keeper and wait until it has run a whole round after the poke."""
        keeper = self.keeper
        target = keeper.rounds + 2
        wait_until(lambda: keeper.rounds >= target, "a rotation round", poke=self.poke)

    def advance(self, delta: timedelta) -> None:
        """Move the clock and let the keeper (and the jobs scheduler) look again."""
        self.clock.advance(delta)
        self.poke()

    def poke(self) -> None:
        from bastion.jobs import JobScheduler
        self.bastion.app.component(JobScheduler).poke()
        self.keeper.poke()

    def status(self, rotation_id: str) -> RotationStatus:
        return self.service.describe_rotation(rotation_id).status

    def wait_status(self, rotation_id: str, status: RotationStatus) -> None:
        wait_until(lambda: self.status(rotation_id) is status, f"rotation {status.value}",
                   poke=self.poke)


@pytest.fixture(scope="module")
def rotation_bastion(datadir: DataDir, plane: ControlPlane) -> Iterator[tuple[RunningBastion,
                                                                            ManualClock]]:
    """A running Bastion on a hand-moved clock; rotation jobs time out after 60 minutes,
    a thing rotates at most once per 30 days, the sweep is daily."""
    with contextlib.suppress(Exception):
        plane.policies.create_policy(ROTATION_DEVICE_POLICY, rotation_device_policy(plane))
    clock = ManualClock()
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0), limits=TEST_LIMITS,
                    api=ApiConfig(enabled=False),
                    rotation=RotationConfig(min_interval_hours=24 * 30,
                                            job_timeout_minutes=60))
    running = RunningBastion(config, datadir, clock=clock).start()
    try:
        yield running, clock
    finally:
        running.stop()


@pytest.fixture
def rig(rotation_bastion: tuple[RunningBastion, ManualClock],
        make_device: Callable[..., DeviceFiles]) -> Iterator[Rig]:
    """A thing group with a rotation policy: jobs started by the sweep, a day's grace
    before deactivation and a week's before revocation, and a maximum age of ten years —
    the module's clock only moves forward, so a test that wants the sweep to find its
    devices due sets a shorter one (:meth:`Rig.set_max_age`)."""
    bastion, clock = rotation_bastion
    group = f"rotation-{uuid.uuid4().hex[:10]}"
    app = bastion.app
    app.plane.registry.create_thing_group(group)
    policies = app.services.rotation.service.policies
    policies.put(GroupPolicy(group, max_age_days=3650, start_jobs=True,
                             deactivate_after_hours=24, revoke_after_hours=24 * 7))
    with app.services.store.transaction() as uow:
        uow.settings.delete(LAST_SWEEP_KEY)
    yield Rig(bastion, clock, group, make_device)
    with contextlib.suppress(Exception):
        policies.delete(group)


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """SDK connections a test opened, closed at the end."""
    connections: list[Any] = []
    yield connections
    for connection in connections:
        with contextlib.suppress(Exception):
            connection.close()
