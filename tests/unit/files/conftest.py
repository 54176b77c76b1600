"""The file service on both database backends, in a temporary directory, with a fake
clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bastion.files import FileService
from bastion.pki import Keystore
from bastion.store import Store
from support.clock import ManualClock
from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]

BASE_URL = "https://bastion.example:8443"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))


@pytest.fixture
def keystore() -> Keystore:
    return Keystore.generate()


@pytest.fixture
def files(store: Store, tmp_path: Path, keystore: Keystore, clock: ManualClock) -> FileService:
    with store.transaction() as uow:  # the session store is shared: start from no key
        uow.secrets.delete("files.url-signing-key")
    return FileService(store, tmp_path / "files", keystore, clock=clock, base_url=BASE_URL)
