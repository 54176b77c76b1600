"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp.

    PostgreSQL stores ``timestamptz``; SQLite stores the naive UTC wall time as text
    (whose lexical order is the chronological order). Values read back are always aware
    and in UTC; naive datetimes are refused on write.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, not {type(value).__name__}")
        if value.utcoffset() is None:
            raise ValueError("naive datetimes cannot be stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            raise TypeError(f"database returned {type(value).__name__} for a timestamp")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def name_type(length: int = 128) -> sa.types.TypeEngine[str]:
    """A name or key column compared byte-wise on both backends.

    SQLite compares text with ``BINARY`` by default; on PostgreSQL the column gets the
    ``"C"`` collation so that ordering (and therefore pagination order) does not depend
    on the server's locale.
    """
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")
