"""Alert delivery against real receivers (:mod:`support.receivers`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.pki import Keystore
from bastion.store import Store
from support.receivers import (
    Mailbox,
    Webhook,
    ca_file,
    plain_smtp_server,
    smtp_server,
    test_ca,
    webhook,
)

__all__ = ["Mailbox", "Webhook", "ca_file", "plain_smtp_server", "smtp_server", "test_ca",
           "webhook"]


@pytest.fixture
def alert_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'alerts.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def keystore() -> Keystore:
    return Keystore.generate()
