"""The sealed chain head: truncation, deletion, rewrites and forged heads are detected
without an anchor; a trail written before the keyed trail is sealed over, not lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bastion.pki import Keystore
from bastion.store import Store, metadata
from bastion.trail import (
    GENESIS_HASH,
    KEYED_FORMAT,
    SEAL_OPERATION,
    UNKEYED_FORMAT,
    Problem,
    Trail,
    TrailIntegrityError,
    TrailKeys,
    TrailRecord,
    canonical_json,
    compute_hash,
    head_seal,
    verify,
)
from support.clock import ManualClock

KEYS = TrailKeys.from_keystore(Keystore.generate())
OTHER_KEYS = TrailKeys.from_keystore(Keystore.generate())
records_table = metadata.tables["trail_records"]
head_table = metadata.tables["trail_head"]


@dataclass(frozen=True)
class FakeCaller:
    role: str


@pytest.fixture
def trail(store: Store) -> Trail:
    clock = ManualClock(datetime(2025, 3, 1, 12, tzinfo=UTC), tick=timedelta(seconds=1))
    return Trail(store, KEYS, clock=clock)


def call(trail: Trail, n: int) -> TrailRecord:
    return trail.append(caller=FakeCaller("admin"), access_key_id="AKIAEXAMPLEEXAMPLE00",
                        source_ip="192.0.2.10", service="iot", operation="CreateThing",
                        parameters={"thingName": f"thing-{n}"}, outcome="allowed",
                        error_code=None, http_status=200)


@pytest.fixture
def filled(trail: Trail) -> list[TrailRecord]:
    return [call(trail, n) for n in range(1, 9)]


def _execute(store: Store, *statements: sa.Executable) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def _row(record: TrailRecord, **changes: Any) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in (
        "sequence", "time", "access_key_id", "role", "source_ip", "service", "operation",
        "parameters", "outcome", "error_code", "http_status", "previous_hash", "hash")}
    values.update(changes)
    return values


def _rechain(records: list[TrailRecord], keys: TrailKeys | None) -> list[dict[str, Any]]:
    """The rows of ``records`` relinked from the start under ``keys``, with record 2's
    operation changed."""
    previous = GENESIS_HASH
    rows = []
    for r in records:
        row = _row(r, previous_hash=previous)
        if r.sequence == 2:
            row["operation"] = "DeleteThing"
        row["hash"] = compute_hash(keys=keys, **{k: v for k, v in row.items() if k != "hash"})
        previous = row["hash"]
        rows.append(row)
    return rows


# -- intact ------------------------------------------------------------------------------


def test_an_untouched_trail_with_the_right_key_is_intact(filled: list[TrailRecord],
                                                         store: Store) -> None:
    result = verify(store, KEYS)
    assert result.ok and result.checked == 8 and result.unkeyed == 0
    assert (result.last_sequence, result.last_hash) == (8, filled[-1].hash)
    assert all(r.format == KEYED_FORMAT for r in filled)
    with store.transaction(readonly=True) as uow:
        head = uow.trail.head()
    assert head is not None and head.seal == head_seal(KEYS, sequence=8, hash=filled[-1].hash,
                                                       keyed_from=1)


def test_another_master_key_cannot_verify(filled: list[TrailRecord], store: Store) -> None:
    result = verify(store, OTHER_KEYS)
    assert (result.ok, result.problem) == (False, Problem.HEAD_SEAL_INVALID)


def test_no_key_is_a_failure(filled: list[TrailRecord], store: Store) -> None:
    result = verify(store, None)
    assert (result.ok, result.problem) == (False, Problem.KEY_UNAVAILABLE)


# -- tampering ---------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "value"), [
    ("outcome", "denied"), ("operation", "DescribeThing"), ("source_ip", "10.9.9.9"),
    ("parameters", '{"thingName":"other"}'), ("http_status", 500)])
def test_one_tampered_field_is_named_by_sequence(filled: list[TrailRecord], store: Store,
                                                 column: str, value: object) -> None:
    _execute(store, records_table.update().where(records_table.c.sequence == 5)
             .values({column: value}))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 5, Problem.RECORD_ALTERED)
    assert result.checked == 4


@pytest.mark.parametrize("k", [1, 3, 8])
def test_deleting_the_last_k_records_is_truncation(filled: list[TrailRecord], store: Store,
                                                   k: int) -> None:
    _execute(store, records_table.delete().where(records_table.c.sequence > 8 - k))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 8 - k + 1, Problem.TRUNCATED)
    if k == 8:
        assert "the sealed head says 8 records, none remain" in (result.reason or "")
    else:
        assert f"truncated after record {8 - k}" in (result.reason or "")


def test_truncating_and_moving_the_head_back_breaks_its_seal(filled: list[TrailRecord],
                                                             store: Store) -> None:
    _execute(store, records_table.delete().where(records_table.c.sequence > 5),
             head_table.update().values(sequence=5, hash=filled[4].hash))
    result = verify(store, KEYS)
    assert (result.ok, result.problem) == (False, Problem.HEAD_SEAL_INVALID)
    assert "claims record 5" in (result.reason or "")


def test_deleting_every_record_and_the_head_is_detected(filled: list[TrailRecord],
                                                        store: Store, trail: Trail) -> None:
    _execute(store, records_table.delete(), head_table.delete())
    result = verify(store, KEYS)
    assert (result.ok, result.problem) == (False, Problem.HEAD_MISSING)
    assert "the trail was deleted" in (result.reason or "")
    with pytest.raises(TrailIntegrityError):
        call(trail, 9)  # and it is not quietly restarted
    with pytest.raises(TrailIntegrityError):
        trail.seal()


def test_resetting_the_head_to_empty_breaks_its_seal(filled: list[TrailRecord], store: Store,
                                                     trail: Trail) -> None:
    """Delete everything and put back an empty head that claims to be sealed."""
    _execute(store, records_table.delete(),
             head_table.update().values(sequence=0, hash=GENESIS_HASH, seal="ab" * 32))
    assert verify(store, KEYS).problem is Problem.HEAD_SEAL_INVALID
    with pytest.raises(TrailIntegrityError, match="seal"):
        call(trail, 9)


@pytest.mark.parametrize("keys", [None, OTHER_KEYS], ids=["unkeyed", "another-key"])
def test_recomputing_the_whole_chain_without_the_key_is_detected(
        filled: list[TrailRecord], store: Store, keys: TrailKeys | None) -> None:
    rows = _rechain(filled, keys)
    forged_seal = head_seal(OTHER_KEYS, sequence=8, hash=rows[-1]["hash"], keyed_from=1)
    _execute(store, records_table.delete(), records_table.insert().values(rows),
             head_table.update().values(hash=rows[-1]["hash"], seal=forged_seal))
    result = verify(store, KEYS)
    assert (result.ok, result.problem) == (False, Problem.HEAD_SEAL_INVALID)
    # With the head left as it was, the first rewritten record is named.
    _execute(store, head_table.update().values(
        hash=filled[-1].hash,
        seal=head_seal(KEYS, sequence=8, hash=filled[-1].hash, keyed_from=1)))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 1, Problem.RECORD_ALTERED)


def test_downgrading_a_keyed_record_to_unkeyed_is_detected(filled: list[TrailRecord],
                                                           store: Store) -> None:
    """Moving the keyed boundary (to pass rewritten records off as old, unkeyed ones)
    breaks the head's seal."""
    _execute(store, head_table.update().values(keyed_from=9))
    assert verify(store, KEYS).problem is Problem.HEAD_SEAL_INVALID


def test_a_record_added_beyond_the_head_is_detected(filled: list[TrailRecord],
                                                    store: Store) -> None:
    last = filled[-1]
    extra = _row(last, sequence=9, previous_hash=last.hash, operation="CreateThing")
    extra["hash"] = compute_hash(keys=OTHER_KEYS,
                                 **{k: v for k, v in extra.items() if k != "hash"})
    _execute(store, records_table.insert().values(extra))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 9, Problem.BEYOND_HEAD)


def test_appends_after_verification_do_not_count_as_beyond_the_head(
        filled: list[TrailRecord], store: Store, trail: Trail) -> None:
    call(trail, 9)
    assert verify(store, KEYS).checked == 9


# -- a trail from before the keyed trail --------------------------------------------------


def _legacy(store: Store, count: int) -> list[dict[str, Any]]:
    """``count`` unkeyed records and an unsealed head, as migration 0010 leaves a
    database written by an older Bastion."""
    previous = GENESIS_HASH
    rows = []
    for sequence in range(1, count + 1):
        row: dict[str, Any] = {
            "sequence": sequence, "time": datetime(2024, 5, 1, 8, sequence, tzinfo=UTC),
            "access_key_id": "AKIAOLDOLDOLDOLDOLD0", "role": "admin",
            "source_ip": "192.0.2.1", "service": "iot", "operation": "ListThings",
            "parameters": canonical_json({}), "outcome": "allowed", "error_code": None,
            "http_status": 200, "previous_hash": previous}
        row["hash"] = compute_hash(keys=None, **row)
        previous = row["hash"]
        rows.append(row)
    _execute(store, records_table.insert().values(rows),
             head_table.update().values(sequence=count, hash=previous,
                                        keyed_from=count + 1, seal=None))
    return rows


def test_an_unsealed_legacy_trail_is_reported_until_sealed(store: Store, trail: Trail) -> None:
    rows = _legacy(store, 4)
    before = verify(store, KEYS)
    assert (before.ok, before.problem) == (False, Problem.HEAD_NOT_SEALED)
    assert trail.seal() is True
    exported = list(trail.export())
    assert [line["format"] for line in exported] == [UNKEYED_FORMAT] * 4 + [KEYED_FORMAT]
    seal_record = exported[-1]
    assert (seal_record["sequence"], seal_record["operation"]) == (5, SEAL_OPERATION)
    assert seal_record["previous_hash"] == rows[-1]["hash"]
    assert seal_record["parameters"] == {"unsealedSequence": 4,
                                         "unsealedHash": rows[-1]["hash"], "keyedFrom": 5}
    call(trail, 6)
    after = verify(store, KEYS)
    assert after.ok and after.checked == 6 and after.unkeyed == 4


def test_the_first_append_seals_a_legacy_trail(store: Store, trail: Trail) -> None:
    _legacy(store, 2)
    record = call(trail, 1)
    assert record.sequence == 4  # after the SealTrail record
    assert verify(store, KEYS).ok


def test_sealed_legacy_records_are_pinned(store: Store, trail: Trail) -> None:
    """Once sealed over, a legacy record can no longer be rewritten, even though its
    link is a plain SHA-256 anyone can recompute."""
    rows = _legacy(store, 3)
    trail.seal()
    forged = dict(rows[1], operation="DeleteThing")
    forged["hash"] = compute_hash(keys=None, **{k: v for k, v in forged.items() if k != "hash"})
    _execute(store, records_table.update().where(records_table.c.sequence == 2)
             .values(operation="DeleteThing", hash=forged["hash"]))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 3, Problem.LINK_MISMATCH)


def test_an_unkeyed_record_after_the_boundary_is_altered(filled: list[TrailRecord],
                                                         store: Store) -> None:
    r = filled[2]
    row = _row(r)
    unkeyed = compute_hash(keys=None, **{k: v for k, v in row.items() if k != "hash"})
    _execute(store, records_table.update().where(records_table.c.sequence == 3)
             .values(hash=unkeyed))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 3, Problem.RECORD_ALTERED)
