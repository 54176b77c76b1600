"""Statement execution shared by the repositories."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ._errors import ConflictError


def execute_write(conn: sa.Connection, stmt: sa.Executable, *params: Any) -> sa.CursorResult[Any]:
    """Execute a write, turning constraint violations into :class:`ConflictError`."""
    try:
        return conn.execute(stmt, *params)
    except exc.IntegrityError as error:
        raise ConflictError(f"constraint violated: {error.orig}") from error


def count(conn: sa.Connection, stmt: sa.Select[Any]) -> int:
    """The number of rows ``stmt`` would return."""
    value = conn.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    return int(value)
