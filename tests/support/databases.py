"""Database backends for the store and registry tests: SQLite always, PostgreSQL too.

PostgreSQL is the server at ``$BASTION_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, trust authentication). Each test
session works in its own schema (``bastion_test_<random>``, selected with
``options=-csearch_path=…``) that is dropped at the end, so runs never see each other.

When the server cannot be reached, PostgreSQL tests are skipped locally — and *fail* when
``CI=true``, because CI always has the server and a silent skip would hide the backend.

Fixtures (import them into a ``conftest.py``):

* ``store`` — a migrated :class:`Store` on each backend (the test is run once per
  backend), emptied before every test (back to the state migrations leave: the trail's
  empty, unsealed chain head row); migrated once per session for speed.
* ``fresh_database_url`` — factory of URLs of brand-new, empty databases (a new SQLite
  file, a new PostgreSQL schema), for migration tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL, make_url

from bastion.store import Store, metadata

POSTGRES_URL_ENV = "BASTION_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def postgres_url() -> URL:
    return make_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)


@cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or ``None`` when it can. Creates the test database
    when the server is up but the database is missing."""
    url = postgres_url()
    try:
        _probe(url)
        return None
    except exc.OperationalError as error:
        if "does not exist" not in str(error.orig):
            return f"PostgreSQL at {url.render_as_string(hide_password=True)}: {error.orig}"
    try:
        admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
        finally:
            admin.dispose()
        _probe(url)
    except exc.SQLAlchemyError as error:
        return f"PostgreSQL test database {url.database!r} is unusable: {error}"
    return None


def _probe(url: URL) -> None:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()


def require_postgres() -> URL:
    """The PostgreSQL URL; skips the test (fails it under ``CI=true``) when unreachable."""
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but PostgreSQL is unavailable: {problem}", pytrace=False)
        pytest.skip(problem)
    return postgres_url()


class _Schemas:
    """Creates PostgreSQL schemas and drops them all at the end."""

    def __init__(self, base: URL) -> None:
        self._engine = sa.create_engine(base)
        self._names: list[str] = []

    def new(self) -> URL:
        name = f"bastion_test_{secrets.token_hex(6)}"
        with self._engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self._names.append(name)
        base = make_url(self._engine.url)
        return base.update_query_dict({"options": f"-csearch_path={name}"})

    def drop_all(self) -> None:
        try:
            # One transaction per schema: dropping them all in one takes a lock per table
            # and index of every schema, past PostgreSQL's shared lock table.
            for name in self._names:
                with self._engine.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            self._engine.dispose()


@pytest.fixture(scope="session")
def _pg_schemas() -> Iterator[Callable[[], URL]]:
    schemas: _Schemas | None = None

    def new() -> URL:
        nonlocal schemas
        if schemas is None:
            schemas = _Schemas(require_postgres())
        return schemas.new()

    yield new
    if schemas is not None:
        schemas.drop_all()


@pytest.fixture
def fresh_database_url(
    tmp_path: Path,
    _pg_schemas: Callable[[], URL],
) -> Callable[[str], str]:
    """``make(backend)`` → the URL of a new, empty database on that backend."""
    counter = iter(range(1_000_000))

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'fresh-{next(counter)}.db'}"
        if backend == "postgresql":
            return _pg_schemas().render_as_string(hide_password=False)
        raise ValueError(backend)

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def _session_store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _pg_schemas: Callable[[], URL],
) -> Iterator[Store]:
    backend: str = request.param
    if backend == "sqlite":
        url: str | URL = f"sqlite:///{tmp_path_factory.mktemp('store') / 'bastion.db'}"
    else:
        url = _pg_schemas()
    store = Store.open(url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def store(_session_store: Store) -> Store:
    """A migrated store, empty at the start of the test."""
    with _session_store.engine.begin() as conn:
        # ON DELETE RESTRICT is checked row by row: cut the group hierarchy first.
        conn.execute(metadata.tables["thing_groups"].update().values(parent_name=None))
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        # As migration 0010 leaves a new database: an empty, not yet sealed chain head.
        conn.execute(metadata.tables["trail_head"].insert().values(
            chain="main", sequence=0, hash="0" * 64, keyed_from=1, seal=None))
    return _session_store
