"""Migration 0010 on a database written by an older Bastion (unkeyed trail), on both
backends: the old records stay, the head gets its keyed boundary, the first start seals
it, and verification covers old and new records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bastion.pki import Keystore
from bastion.store import Store
from bastion.trail import (
    GENESIS_HASH,
    Problem,
    Trail,
    TrailKeys,
    canonical_json,
    compute_hash,
    verify,
)

BACKENDS = ["sqlite", "postgresql"]
KEYS = TrailKeys.from_keystore(Keystore.generate())


def _old_trail(conn: sa.Connection, count: int) -> str:
    """``count`` unkeyed records and their head, in 0009's columns; the last link."""
    previous = GENESIS_HASH
    for sequence in range(1, count + 1):
        fields = {"sequence": sequence, "time": datetime(2024, 5, 1, 8, sequence, tzinfo=UTC),
                  "access_key_id": "AKIAOLDOLDOLDOLDOLD0", "role": "admin",
                  "source_ip": "192.0.2.1", "service": "iot", "operation": "ListThings",
                  "parameters": canonical_json({}), "outcome": "allowed", "error_code": None,
                  "http_status": 200, "previous_hash": previous}
        digest = compute_hash(keys=None, **fields)
        conn.execute(sa.text(
            "INSERT INTO trail_records (sequence, time, access_key_id, role, source_ip, "
            "service, operation, parameters, outcome, error_code, http_status, "
            "previous_hash, hash) VALUES (:sequence, :time, :access_key_id, :role, "
            ":source_ip, :service, :operation, :parameters, :outcome, :error_code, "
            ":http_status, :previous_hash, :hash)"), {**fields, "hash": digest})
        previous = digest
    if count:
        conn.execute(sa.text("INSERT INTO trail_head (chain, sequence, hash) "
                             "VALUES ('main', :sequence, :hash)"),
                     {"sequence": count, "hash": previous})
    return previous


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("count", [0, 3])
def test_an_unkeyed_trail_is_kept_and_sealed_over(fresh_database_url: Callable[[str], str],
                                                  backend: str, count: int) -> None:
    url = fresh_database_url(backend)
    with Store.open(url, migrate=False) as store:
        store.migrate("0009")
        with store.engine.begin() as conn:
            last = _old_trail(conn, count)
        store.migrate()
        with store.transaction(readonly=True) as uow:
            head = uow.trail.head()
        assert head is not None  # inserted by the migration even for an empty trail
        assert (head.sequence, head.hash, head.keyed_from, head.seal) == (
            count, last, count + 1, None)
        assert verify(store, KEYS).problem is Problem.HEAD_NOT_SEALED

        trail = Trail(store, KEYS)
        assert trail.seal() is True
        trail.record(caller=None, access_key_id="AKIANEWNEWNEWNEWNEW0", source_ip="::1",
                     service="iot", operation="ListThings", parameters={}, outcome="denied",
                     error_code="AccessDeniedException", http_status=403)
        result = verify(store, KEYS)
        assert result.ok and result.unkeyed == count
        assert result.checked == count + (2 if count else 1)  # SealTrail only over records
