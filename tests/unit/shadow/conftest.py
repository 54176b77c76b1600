"""The shadow service on both database backends, with a fake clock and an event recorder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bastion.shadow import ShadowService
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

    @property
    def seconds(self) -> int:
        return int(self.now.timestamp())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[object]:
    return []


@pytest.fixture
def shadows(store: Store, clock: FakeClock, events: list[object]) -> ShadowService:
    return ShadowService(store, publish=events.append, clock=clock)
