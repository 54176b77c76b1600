"""The SQL behind the session journal.

Theory of operation
-------------------
The journal hands :meth:`SqlSessionRecords.apply` a list of ops (see
``bastion.broker._durable`` for the vocabulary). Consecutive ops of one kind become one
``executemany``, in order, inside one transaction on a connection this object keeps for
the writer thread: ``BEGIN IMMEDIATE`` on SQLite (the write lock up front, waiting out
another writer for the store's busy timeout), an implicit transaction on PostgreSQL. The
commit is the durability point. On SQLite, ``synchronous`` decides what it survives: WAL
with ``normal`` survives the process being killed (the commit is in the operating system's
hands); ``full`` also survives power loss (an fsync per commit). PostgreSQL commits are
durable as the server is configured.

The statements are plain SQL that both backends run (``INSERT ... ON CONFLICT``); only
the parameter marker differs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa

from ..broker import (
    Op,
    Snapshot,
    StoredDelivery,
    StoredRetained,
    StoredSession,
    StoredSubscription,
)

SYNCHRONOUS_MODES: Final = ("normal", "full")

_STATEMENTS: Final[dict[str, tuple[str, ...]]] = {
    "session": (
        ("INSERT INTO mqtt_sessions (client_id, session_id, certificate_id, source_ip,"
         " source_port, expiry_interval, detached_at, will, will_delay)"
         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
         " ON CONFLICT (client_id) DO UPDATE SET session_id = excluded.session_id,"
         " certificate_id = excluded.certificate_id, source_ip = excluded.source_ip,"
         " source_port = excluded.source_port, expiry_interval = excluded.expiry_interval,"
         " detached_at = excluded.detached_at, will = excluded.will,"
         " will_delay = excluded.will_delay"),
    ),
    "forget": (
        "DELETE FROM mqtt_sessions WHERE client_id = ?",
        "DELETE FROM mqtt_subscriptions WHERE client_id = ?",
        "DELETE FROM mqtt_deliveries WHERE client_id = ?",
        "DELETE FROM mqtt_inbound_qos2 WHERE client_id = ?",
    ),
    "subscribe": (
        ("INSERT INTO mqtt_subscriptions (client_id, topic_filter, qos, no_local,"
         " retain_as_published, retain_handling, subscription_id)"
         " VALUES (?, ?, ?, ?, ?, ?, ?)"
         " ON CONFLICT (client_id, topic_filter) DO UPDATE SET qos = excluded.qos,"
         " no_local = excluded.no_local, retain_as_published = excluded.retain_as_published,"
         " retain_handling = excluded.retain_handling,"
         " subscription_id = excluded.subscription_id"),
    ),
    "unsubscribe": (
        "DELETE FROM mqtt_subscriptions WHERE client_id = ? AND topic_filter = ?",
    ),
    "store": (
        ("INSERT INTO mqtt_deliveries (client_id, seq, message, qos, retain,"
         " subscription_ids, packet_id, size, released)"
         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, FALSE)"),
    ),
    "sent": (
        "UPDATE mqtt_deliveries SET packet_id = ? WHERE client_id = ? AND seq = ?",
    ),
    "released": (
        "UPDATE mqtt_deliveries SET released = TRUE WHERE client_id = ? AND seq = ?",
    ),
    "done": (
        "DELETE FROM mqtt_deliveries WHERE client_id = ? AND seq = ?",
    ),
    "await": (
        ("INSERT INTO mqtt_inbound_qos2 (client_id, packet_id) VALUES (?, ?)"
         " ON CONFLICT (client_id, packet_id) DO NOTHING"),
    ),
    "release": (
        "DELETE FROM mqtt_inbound_qos2 WHERE client_id = ? AND packet_id = ?",
    ),
    "retain": (
        ("INSERT INTO mqtt_retained (topic, message, received_at) VALUES (?, ?, ?)"
         " ON CONFLICT (topic) DO UPDATE SET message = excluded.message,"
         " received_at = excluded.received_at"),
    ),
    "unretain": (
        "DELETE FROM mqtt_retained WHERE topic = ?",
    ),
    "cursor": (
        ("INSERT INTO mqtt_stream_cursors (node, seq) VALUES (?, ?)"
         " ON CONFLICT (node) DO UPDATE SET seq = excluded.seq"),
    ),
}

_DELIVERY_COLUMNS: Final = ("client_id, seq, message, qos, retain, subscription_ids,"
                            " packet_id, released")


class SqlSessionRecords:
    """:class:`bastion.broker.SessionRecords` on the store's engine.

    :param synchronous: SQLite only: ``normal`` (survives a killed process) or ``full``
        (survives power loss too).
    :raises ValueError: an unknown ``synchronous`` mode.
    """

    def __init__(self, engine: sa.Engine, *, synchronous: str = "normal") -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, "
                             f"not {synchronous!r}")
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._synchronous = synchronous
        self._conn: Any = None  # the writer thread's DBAPI connection, made on first use
        self._owner: threading.Thread | None = None
        self._sql = {kind: tuple(self._marked(s) for s in statements)
                     for kind, statements in _STATEMENTS.items()}

    def _marked(self, statement: str) -> str:
        return statement if self._sqlite else statement.replace("?", "%s")

    def _connect(self) -> Any:
        conn = self._engine.raw_connection()
        if self._sqlite:
            dbapi = conn.driver_connection
            assert isinstance(dbapi, sqlite3.Connection)
            dbapi.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
        return conn

    # -- the writer thread ------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> None:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        cursor = conn.cursor()
        try:
            if self._sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            start = 0
            count = len(ops)
            while start < count:
                kind = ops[start][0]
                end = start + 1
                while end < count and ops[end][0] == kind:
                    end += 1
                rows = [op[1] for op in ops[start:end]]
                for statement in self._sql[kind]:
                    if len(rows) == 1:
                        cursor.execute(statement, rows[0])
                    else:
                        cursor.executemany(statement, rows)
                start = end
            if self._sqlite:
                cursor.execute("COMMIT")
            else:
                conn.commit()
        except BaseException:
            self._abandon()
            raise
        finally:
            cursor.close()

    def _abandon(self) -> None:
        """After a failure: roll back and drop the connection (the next apply reconnects)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._sqlite:
                conn.driver_connection.execute("ROLLBACK")
            else:
                conn.rollback()
        except Exception:  # noqa: BLE001, S110 - the connection is dropped anyway
            pass
        try:
            conn.invalidate()
        except Exception:  # noqa: BLE001, S110 - as above
            pass

    def page(self, client_id: str, after_seq: int, limit: int) -> list[StoredDelivery]:
        if self._conn is None:
            self._conn = self._connect()
        cursor = self._conn.cursor()
        try:
            cursor.execute(self._marked(
                f"SELECT {_DELIVERY_COLUMNS} FROM mqtt_deliveries WHERE client_id = ?"
                " AND seq > ? AND packet_id IS NULL ORDER BY seq LIMIT ?"),
                (client_id, after_seq, limit))
            rows = [_delivery(row) for row in cursor.fetchall()]
            if not self._sqlite:
                self._conn.commit()  # end the read transaction
            return rows
        finally:
            cursor.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def stream_cursor(self, node: str) -> int | None:
        """The last message of the cluster's stream ``node`` applied (None: it never
        wrote one)."""
        with self._engine.connect() as conn:
            row = conn.exec_driver_sql(
                self._marked("SELECT seq FROM mqtt_stream_cursors WHERE node = ?"),
                (node,)).first()
            conn.rollback()
        return None if row is None else int(row[0])

    # -- at start -----------------------------------------------------------------------------

    def load(self, per_session: int, client_id: str | None = None) -> Snapshot:
        """Everything stored; at most ``per_session`` unsent deliveries of each session
        (every sent one), the rest counted in ``totals``. With ``client_id``: only that
        client's session, and no retained messages (a session another node handed over)."""
        snapshot = Snapshot()
        only = "" if client_id is None else " WHERE client_id = ?"
        args: tuple[object, ...] = () if client_id is None else (client_id,)
        with self._engine.connect() as conn:
            def q(sql: str, extra: tuple[object, ...] = ()) -> Any:
                return conn.exec_driver_sql(self._marked(sql), (*args, *extra))

            snapshot.sessions = [
                StoredSession(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]),
                              int(r[5]), None if r[6] is None else float(r[6]),
                              None if r[7] is None else bytes(r[7]), int(r[8]))
                for r in q("SELECT client_id, session_id, certificate_id, source_ip,"
                           " source_port, expiry_interval, detached_at, will, will_delay"
                           " FROM mqtt_sessions" + only)]
            snapshot.subscriptions = [
                StoredSubscription(str(r[0]), str(r[1]), int(r[2]), bool(r[3]), bool(r[4]),
                                   int(r[5]), None if r[6] is None else int(r[6]))
                for r in q("SELECT client_id, topic_filter, qos, no_local,"
                           " retain_as_published, retain_handling, subscription_id"
                           " FROM mqtt_subscriptions" + only)]
            snapshot.deliveries = [_delivery(r) for r in q(
                f"SELECT {_DELIVERY_COLUMNS} FROM (SELECT {_DELIVERY_COLUMNS},"
                " ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY seq) AS n"
                f" FROM mqtt_deliveries{only}) AS ranked"
                " WHERE n <= ? OR packet_id IS NOT NULL ORDER BY client_id, seq",
                (per_session,))]
            snapshot.totals = {
                str(r[0]): (int(r[1]), int(r[2]), int(r[3]))
                for r in q("SELECT client_id, COUNT(*), COALESCE(SUM(size), 0), MAX(seq)"
                           f" FROM mqtt_deliveries{only} GROUP BY client_id")}
            snapshot.inbound = [(str(r[0]), int(r[1])) for r in q(
                "SELECT client_id, packet_id FROM mqtt_inbound_qos2" + only)]
            if client_id is None:
                snapshot.retained = [
                    StoredRetained(str(r[0]), bytes(r[1]), float(r[2]))
                    for r in q("SELECT topic, message, received_at FROM mqtt_retained")]
            conn.rollback()
        return snapshot


def _delivery(row: Sequence[Any]) -> StoredDelivery:
    return StoredDelivery(str(row[0]), int(row[1]), bytes(row[2]), int(row[3]),
                          bool(row[4]), str(row[5]), None if row[6] is None else int(row[6]),
                          bool(row[7]))
