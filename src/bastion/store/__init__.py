"""Bastion's storage: SQLAlchemy Core on SQLite (embedded default) or PostgreSQL.

Only this package knows SQL. Services open a unit of work and use its repositories::

    store = Store.open("sqlite:///bastion-data/bastion.db")   # migrates to the newest schema
    with store.transaction() as uow:
        row = uow.things.get("dev1")

* :class:`Store` — the engine, Alembic migrations (``migrations/``), and
  :meth:`Store.transaction` yielding a :class:`UnitOfWork`.
* Repositories, one per aggregate: things, thing types, thing groups (hierarchy and
  membership), thing principals, certificates, CA certificates, policies (versions and
  attachments), settings, sealed secrets.
* Rows: frozen values read and written by the repositories (no ARNs; services add them).
* Pagination: listings return ``(rows, next_token)`` with opaque, stable tokens;
  :class:`InvalidPageTokenError` for a token that is not one of ours.
"""

from __future__ import annotations

from ._connections import ConnectionJournalRepository, ConnectionSessionRow
from ._engine import create_store_engine
from ._errors import ConflictError, InvalidPageTokenError, StoreError
from ._groups import ThingGroupRepository
from ._identity import CaCertificateRepository, CertificateRepository
from ._pages import Page, page_of_sorted
from ._policies import PolicyRepository
from ._rows import (
    AttachedPolicy,
    CaCertificateRow,
    CertificateRow,
    PolicyRow,
    PolicyTarget,
    PolicyVersionRow,
    ThingGroupRow,
    ThingRow,
    ThingTypeRow,
)
from ._schema import metadata
from ._settings import SealedSecretRepository, SettingsRepository
from ._store import Store, UnitOfWork
from ._things import ThingPrincipalRepository, ThingRepository, ThingTypeRepository

__all__ = [
    "AttachedPolicy",
    "CaCertificateRepository",
    "CaCertificateRow",
    "CertificateRepository",
    "CertificateRow",
    "ConnectionJournalRepository",
    "ConnectionSessionRow",
    "ConflictError",
    "InvalidPageTokenError",
    "Page",
    "PolicyRepository",
    "PolicyRow",
    "PolicyTarget",
    "PolicyVersionRow",
    "SealedSecretRepository",
    "SettingsRepository",
    "Store",
    "StoreError",
    "ThingGroupRepository",
    "ThingGroupRow",
    "ThingPrincipalRepository",
    "ThingRepository",
    "ThingRow",
    "ThingTypeRepository",
    "ThingTypeRow",
    "UnitOfWork",
    "create_store_engine",
    "metadata",
    "page_of_sorted",
]
