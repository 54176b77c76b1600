"""The jobs service on both database backends, with a fake clock and an event recorder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bastion.jobs import JobService
from bastion.registry import RegistryService, ResourceNotFoundError
from bastion.store import Store
from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[object]:
    return []


@pytest.fixture
def registry(store: Store, clock: FakeClock, events: list[object]) -> RegistryService:
    return RegistryService(store, publish=events.append, clock=clock)


@pytest.fixture
def jobs(store: Store, registry: RegistryService, clock: FakeClock,
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
        return [registry.config.arn("thing", name) for name in names]

    return make
