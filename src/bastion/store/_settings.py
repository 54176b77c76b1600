"""Key-value settings and sealed secrets."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ._schema import sealed_secrets, settings


class SettingsRepository:
    """Installation-wide settings (table ``settings``): plain text values that are not
    secret (e.g. the CA registration code)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, key: str) -> str | None:
        stmt = sa.select(settings.c.value).where(settings.c.key == key)
        value: str | None = self._conn.execute(stmt).scalar_one_or_none()
        return value

    def put(self, key: str, value: str, now: datetime) -> None:
        updated = self._conn.execute(
            settings.update()
            .where(settings.c.key == key)
            .values(value=value, last_modified_date=now)
        )
        if updated.rowcount == 0:
            self._conn.execute(
                settings.insert().values(key=key, value=value, last_modified_date=now)
            )

    def delete(self, key: str) -> bool:
        result = self._conn.execute(settings.delete().where(settings.c.key == key))
        return result.rowcount == 1


class SealedSecretRepository:
    """Secrets at rest (table ``sealed_secrets``).

    The store holds only the opaque blobs returned by :meth:`bastion.pki.Keystore.seal`;
    sealing and unsealing (with the secret's name as associated data, so that a blob
    cannot be moved to another name) is the caller's job.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> bytes | None:
        stmt = sa.select(sealed_secrets.c.sealed).where(sealed_secrets.c.name == name)
        value = self._conn.execute(stmt).scalar_one_or_none()
        return None if value is None else bytes(value)

    def put(self, name: str, sealed: bytes, now: datetime) -> None:
        if not isinstance(sealed, bytes):
            raise TypeError(f"sealed must be bytes, not {type(sealed).__name__}")
        updated = self._conn.execute(
            sealed_secrets.update()
            .where(sealed_secrets.c.name == name)
            .values(sealed=sealed, last_modified_date=now)
        )
        if updated.rowcount == 0:
            self._conn.execute(
                sealed_secrets.insert().values(name=name, sealed=sealed, last_modified_date=now)
            )

    def delete(self, name: str) -> bool:
        result = self._conn.execute(sealed_secrets.delete().where(sealed_secrets.c.name == name))
        return result.rowcount == 1
