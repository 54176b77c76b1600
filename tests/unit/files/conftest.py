"""The file service on both database backends, in a temporary directory, with a fake
clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bastion.files import FileService
from bastion.pki import Keystore
from bastion.store import Store
from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]

BASE_URL = "https://bastion.example:8443"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keystore() -> Keystore:
    return Keystore.generate()


@pytest.fixture
def files(store: Store, tmp_path: Path, keystore: Keystore, clock: FakeClock) -> FileService:
    with store.transaction() as uow:  # the session store is shared: start from no key
        uow.secrets.delete("files.url-signing-key")
    return FileService(store, tmp_path / "files", keystore, clock=clock, base_url=BASE_URL)
