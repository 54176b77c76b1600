"""The shadow service on both database backends, with a fake clock and an event recorder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.shadow import ShadowService
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
def shadows(store: Store, clock: ManualClock, events: list[object]) -> ShadowService:
    return ShadowService(store, publish=events.append, clock=clock)
