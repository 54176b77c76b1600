"""Migrations on fresh databases of both backends, and the engines' settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import bastion.store
from bastion.store import Store, StoreError, create_store_engine, metadata
from bastion.store._store import _alembic_config

BACKENDS = ["sqlite", "postgresql"]


# The newest migration: every revision file is numbered, the highest one is the head.
HEAD = max(p.name.split("_")[0] for p in (
    Path(bastion.store.__file__).parent / "migrations" / "versions").glob("0*.py"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_creates_the_schema_on_a_fresh_database(
        fresh_database_url: Callable[[str], str], backend: str) -> None:
    url = fresh_database_url(backend)
    with Store.open(url, migrate=False) as bare:
        assert bare.current_revision() is None
        assert not bare.is_current()
        assert sa.inspect(bare.engine).get_table_names() == []
    with Store.open(url) as store:
        assert store.dialect_name == backend
        assert store.current_revision() == HEAD
        assert store.is_current()
        tables = set(sa.inspect(store.engine).get_table_names())
        assert tables == set(metadata.tables) | {"alembic_version"}
        # The migrations produce exactly the schema the code describes.
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        store.migrate()  # idempotent
        assert store.current_revision() == HEAD
        with store.transaction() as uow:
            assert uow.settings.get("anything") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_to_base_and_back(fresh_database_url: Callable[[str], str],
                                    backend: str) -> None:
    with Store.open(fresh_database_url(backend)) as store:
        config = _alembic_config()
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(sa.inspect(store.engine).get_table_names()) <= {"alembic_version"}
        store.migrate()
        assert store.is_current()


def test_sqlite_connection_settings(fresh_database_url: Callable[[str], str]) -> None:
    with Store.open(fresh_database_url("sqlite")) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_sqlite_file_helper_creates_the_database(tmp_path: Path) -> None:
    path = tmp_path / "bastion.db"
    with Store.for_sqlite_file(path) as store:
        assert store.is_current()
    assert path.is_file()


def test_in_memory_sqlite_shares_one_database() -> None:
    with Store.open("sqlite://") as store:
        assert store.is_current()
        with store.transaction() as uow:
            uow.settings.put("k", "v", datetime.now(UTC))
        with store.transaction(readonly=True) as uow:
            assert uow.settings.get("k") == "v"


@pytest.mark.parametrize(
    "url",
    ["mysql://user@localhost/db", "sqlite+aiosqlite:///x.db", "postgresql+asyncpg://h/db"],
    ids=["mysql", "async-sqlite", "asyncpg"],
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(StoreError):
        create_store_engine(url)


def test_plain_postgresql_urls_use_psycopg() -> None:
    engine = create_store_engine("postgresql://user@localhost/db")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_schema_from_a_newer_bastion_is_refused(fresh_database_url: Callable[[str], str],
                                                  backend: str) -> None:
    url = fresh_database_url(backend)
    with Store.open(url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="9999"):
        Store.open(url)
