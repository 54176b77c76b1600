"""The jobs service on both database backends, with a fake clock and an event recorder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bastion.jobs import JobService
from bastion.registry import RegistryService, ResourceNotFoundError
from bastion.store import Store
from support.clock import ManualClock
from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def events() -> list[object]:
    return []


@pytest.fixture
def registry(store: Store, clock: ManualClock, events: list[object]) -> RegistryService:
    return RegistryService(store, publish=events.append, clock=clock)


@pytest.fixture
def jobs(store: Store, registry: RegistryService, clock: ManualClock,
         events: list[object]) -> JobService:
    return JobService(store, registry, clock, events.append)


@pytest.fixture
def things(registry: RegistryService) -> Callable[..., list[str]]:
    """``things("a", "b", group="g")`` creates the things (in the group, created when
    missing) and returns their ARNs."""

    def make(*names: str, group: str | None = None) -> list[str]:
        if group is not None:
            try:
                registry.describe_thing_group(group)
            except ResourceNotFoundError:
                registry.create_thing_group(group)
        for name in names:
            registry.create_thing(name)
            if group is not None:
                registry.add_thing_to_thing_group(thing_group_name=group, thing_name=name)
        return [registry.account.arn(f"thing/{name}") for name in names]

    return make
