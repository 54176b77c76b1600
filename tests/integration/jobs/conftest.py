"""The job service of the running Bastion, and cleanup of SDK devices (see
:mod:`support.jobs_sdk`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from awscrt.exceptions import AwsCrtError

from bastion.jobs import JobScheduler, JobService
from support.jobs_sdk import QOS1, TIMEOUT, SdkDevice, SdkDeviceV2, take, take_matching, token
from support.running import RunningBastion

__all__ = ["QOS1", "TIMEOUT", "SdkDevice", "SdkDeviceV2", "take", "take_matching", "token"]


@pytest.fixture
def jobs(bastion: RunningBastion) -> JobService:
    """The job service of the running Bastion (the one both doors call)."""
    return bastion.app.services.jobs


@pytest.fixture
def scheduler(bastion: RunningBastion) -> JobScheduler:
    return bastion.app.component(JobScheduler)


@pytest.fixture
def sdk_devices() -> Iterator[list[Any]]:
    """Close every SDK device a test opened."""
    opened: list[Any] = []
    yield opened
    for device in opened:
        try:
            device.close()
        except (AwsCrtError, TimeoutError) as error:  # already gone
            logging.getLogger(__name__).info("closing an SDK device: %s", error)
