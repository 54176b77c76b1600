"""The audit on both database backends, with the fixture fleet of
:mod:`support.audit_fleet`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.defender.audit import (
    AuditService,
    CrlRegistry,
    WeakKeyLists,
)
from bastion.logging_options import LoggingOptions
from bastion.store import Store
from support.audit_fleet import ACCOUNT, NOW, Fleet
from support.clock import ManualClock
from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]


def inline(job: Callable[[], None]) -> None:
    """An executor that runs the job at once (the task is finished when start returns)."""
    job()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def audit_service(store: Store, fleet: Fleet | None, clock: ManualClock, *,
                  notifier: object = None) -> AuditService:
    crls = CrlRegistry(store, clock=clock)
    if fleet is not None:
        for issuer, path in fleet.crl_files.items():
            crls.register(str(path), ca_certificate_id=issuer)
    lists = WeakKeyLists.from_directory(fleet.weak_key_dir) if fleet else WeakKeyLists()
    return AuditService(store, account=ACCOUNT, crls=crls, logging=LoggingOptions(store, logging.getLogger("bastion-test.audit")),
                        key_lists=lists, notifier=notifier,  # type: ignore[arg-type]
                        executor=inline, clock=clock)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
