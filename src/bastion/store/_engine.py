"""Engines for the two supported backends.

SQLite (the embedded default) gets, on every new connection: WAL journaling (readers do
not block the writer), ``foreign_keys=ON`` (SQLite ignores foreign keys otherwise),
``busy_timeout`` (wait for a competing writer instead of failing at once) and
``synchronous=NORMAL`` (durable in WAL mode except for the last transactions on power
loss). The driver's own transaction handling is switched off and transactions are begun
explicitly: ``BEGIN IMMEDIATE`` for writing transactions takes the write lock up front, so
two writers never deadlock on a lock upgrade; read-only transactions use a plain
``BEGIN``.

PostgreSQL goes through psycopg 3 (``postgresql+psycopg://``); a bare ``postgresql://``
or ``postgres://`` URL is mapped to it.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from ._errors import StoreError

READONLY_OPTION: Final = "bastion_readonly"
"""Execution option marking a connection's next transaction as read-only."""

SQLITE_BUSY_TIMEOUT_MS: Final = 10_000


def create_store_engine(url: str | URL, **engine_options: Any) -> Engine:
    """Create an engine for ``url`` with Bastion's per-backend settings.

    :param url: ``sqlite:///path/to/bastion.db`` or
        ``postgresql+psycopg://user@host:port/db`` (``postgresql://`` is accepted).
        ``sqlite://`` is an in-memory database on one shared connection: for tests and
        tools, not for concurrent use.
    :param engine_options: passed to :func:`sqlalchemy.create_engine`.
    :raises StoreError: the URL names another database or driver.
    :raises sqlalchemy.exc.ArgumentError: the URL does not parse.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise StoreError(f"unsupported SQLite driver {parsed.drivername!r}")
        if parsed.database in (None, "", ":memory:"):
            engine_options.setdefault("poolclass", StaticPool)
            engine_options.setdefault("connect_args", {"check_same_thread": False})
        engine = sa.create_engine(parsed, **engine_options)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend in ("postgresql", "postgres"):
        if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        else:
            raise StoreError(
                f"unsupported PostgreSQL driver {parsed.drivername!r}; use postgresql+psycopg"
            )
        engine_options.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **engine_options)
    raise StoreError(f"unsupported database {backend!r}: use sqlite or postgresql")


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):  # pragma: no cover
        return
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    readonly = connection.get_execution_options().get(READONLY_OPTION, False)
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
