"""Repository of streams (table ``streams``), MQTT-based file delivery.

A stream's files are a JSON list: for each file id, the Bastion file it delivers and
that file's size and SHA-256 when the stream was made or updated. The bytes are the file
service's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import streams
from ._sql import execute_write


@dataclass(frozen=True, slots=True)
class StreamFileRow:
    file_id: int
    bucket: str
    key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class StreamRow:
    stream_id: str
    version: int
    description: str | None
    role_arn: str
    files: tuple[StreamFileRow, ...]
    created_at: datetime
    last_updated_at: datetime


def _files_json(files: Sequence[StreamFileRow]) -> list[dict[str, Any]]:
    return [{"fileId": f.file_id, "bucket": f.bucket, "key": f.key, "size": f.size,
             "sha256": f.sha256} for f in files]


def _files(value: Sequence[Mapping[str, Any]]) -> tuple[StreamFileRow, ...]:
    return tuple(StreamFileRow(int(f["fileId"]), str(f["bucket"]), str(f["key"]),
                               int(f["size"]), str(f["sha256"])) for f in value)


def _row(found: sa.Row[tuple[object, ...]]) -> StreamRow:
    data = found._mapping
    return StreamRow(stream_id=data["stream_id"], version=int(data["version"]),
                     description=data["description"], role_arn=data["role_arn"],
                     files=_files(data["files"]), created_at=data["created_at"],
                     last_updated_at=data["last_updated_at"])


class StreamRepository:
    """Streams (table ``streams``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: StreamRow) -> None:
        """:raises ConflictError: a stream of that id exists."""
        execute_write(self._conn, streams.insert().values(
            stream_id=row.stream_id, version=row.version, description=row.description,
            role_arn=row.role_arn, files=_files_json(row.files), created_at=row.created_at,
            last_updated_at=row.last_updated_at))

    def get(self, stream_id: str) -> StreamRow | None:
        found = self._conn.execute(sa.select(streams).where(
            streams.c.stream_id == stream_id)).first()
        return None if found is None else _row(found)

    def update(self, row: StreamRow, *, expected_version: int) -> bool:
        """Replace a stream's version, description, role and files, if its version is
        still ``expected_version``; ``False``: no such stream, or another update won."""
        result = self._conn.execute(streams.update().where(
            (streams.c.stream_id == row.stream_id)
            & (streams.c.version == expected_version)).values(
                version=row.version, description=row.description, role_arn=row.role_arn,
                files=_files_json(row.files), last_updated_at=row.last_updated_at))
        return result.rowcount == 1

    def delete(self, stream_id: str) -> bool:
        result = self._conn.execute(streams.delete().where(streams.c.stream_id == stream_id))
        return result.rowcount == 1

    def list_page(self, *, limit: int, token: str | None = None, ascending: bool = True
                  ) -> tuple[list[StreamRow], str | None]:
        """Streams by id, ``limit`` at a time.

        :raises InvalidPageTokenError: ``token`` is not one this method returned.
        """
        rows, next_token = keyset_page(
            self._conn, sa.select(streams), (streams.c.stream_id,),
            kind="streams" if ascending else "streams-descending", limit=limit, token=token,
            descending=not ascending)
        return [_row(r) for r in rows], next_token
