"""Cluster tests: two or more Bastion nodes on the machine's NATS and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.cluster import ServedFleet, drop_nats_state
from support.databases import _pg_schemas, fresh_database_url, require_postgres

__all__ = ["_pg_schemas", "fresh_database_url"]


@pytest.fixture
def served_fleet(tmp_path: Path,
                 fresh_database_url: Callable[[str], str]) -> Iterator[ServedFleet]:
    require_postgres()
    fleet = ServedFleet(tmp_path, fresh_database_url("postgresql"))
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture
def cluster() -> Iterator[str]:
    """A cluster name of the test's own; what it made on the machine's NATS is dropped
    after it."""
    name = f"t{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_nats_state(name)
