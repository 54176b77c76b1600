"""Repository of uploaded files (tables ``files`` and ``file_uploads``).

The store holds what is known about a file (name, size, SHA-256, times); the bytes are the
file service's business (:mod:`bastion.files`), kept in the data directory. A file is
served only while its row exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import file_uploads, files
from ._sql import execute_write


@dataclass(frozen=True, slots=True)
class FileUploadRow:
    """A file a device uploaded for a job execution."""

    job_id: str
    thing_name: str
    execution_number: int
    file_name: str
    size: int
    sha256: str
    uploaded_at: datetime


@dataclass(frozen=True, slots=True)
class FileRow:
    name: str
    size: int
    sha256: str
    created_at: datetime
    last_modified_date: datetime


def _row(row: sa.Row[tuple[object, ...]]) -> FileRow:
    data = row._mapping
    return FileRow(name=data["name"], size=int(data["size"]), sha256=data["sha256"],
                   created_at=data["created_at"],
                   last_modified_date=data["last_modified_date"])


class FileRepository:
    """Uploaded files (table ``files``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> FileRow | None:
        found = self._conn.execute(sa.select(files).where(files.c.name == name)).first()
        return None if found is None else _row(found)

    def put(self, name: str, *, size: int, sha256: str, now: datetime) -> FileRow:
        """Record a new file, or new contents of an existing one (its ``created_at`` is
        kept).

        :raises ConflictError: a concurrent writer created the same name first.
        """
        updated = self._conn.execute(
            files.update().where(files.c.name == name)
            .values(size=size, sha256=sha256, last_modified_date=now))
        if updated.rowcount == 0:
            execute_write(self._conn, files.insert().values(
                name=name, size=size, sha256=sha256, created_at=now,
                last_modified_date=now))
        found = self.get(name)
        assert found is not None
        return found

    def delete(self, name: str) -> bool:
        result = self._conn.execute(files.delete().where(files.c.name == name))
        return result.rowcount == 1

    def list_page(self, *, limit: int, token: str | None = None
                  ) -> tuple[list[FileRow], str | None]:
        """Files by name, ``limit`` at a time.

        :raises InvalidPageTokenError: ``token`` is not one this method returned.
        """
        rows, next_token = keyset_page(self._conn, sa.select(files), (files.c.name,),
                                       kind="files", limit=limit, token=token)
        return [_row(r) for r in rows], next_token

    # -- files devices uploaded for a job execution (file_uploads) ---------------------

    def upload_of(self, job_id: str, thing_name: str,
                  execution_number: int) -> FileUploadRow | None:
        found = self._conn.execute(sa.select(file_uploads).where(
            (file_uploads.c.job_id == job_id) & (file_uploads.c.thing_name == thing_name)
            & (file_uploads.c.execution_number == execution_number))).first()
        return None if found is None else FileUploadRow(**dict(found._mapping))

    def record_upload(self, row: FileUploadRow) -> None:
        """:raises ConflictError: that execution uploaded already."""
        execute_write(self._conn, file_uploads.insert().values(
            job_id=row.job_id, thing_name=row.thing_name,
            execution_number=row.execution_number, file_name=row.file_name, size=row.size,
            sha256=row.sha256, uploaded_at=row.uploaded_at))

    def uploads_of_thing(self, thing_name: str) -> list[FileUploadRow]:
        """What ``thing_name``'s devices uploaded, oldest first."""
        rows = self._conn.execute(sa.select(file_uploads).where(
            file_uploads.c.thing_name == thing_name).order_by(
                file_uploads.c.uploaded_at, file_uploads.c.job_id))
        return [FileUploadRow(**dict(r._mapping)) for r in rows]

    def uploads_of_files(self, names: list[str]) -> dict[str, FileUploadRow]:
        """The upload behind each of ``names`` that a device made."""
        if not names:
            return {}
        rows = self._conn.execute(sa.select(file_uploads).where(
            file_uploads.c.file_name.in_(names)))
        return {r.file_name: FileUploadRow(**dict(r._mapping)) for r in rows}
