"""The keyed chain: building it, and verification catching edits, deletions, reorders
(the sealed head's own cases are in ``test_sealed_head.py``)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bastion.pki import Keystore
from bastion.store import ConflictError, Store, TrailRecordRow, TrailRepository, metadata
from bastion.trail import (
    GENESIS_HASH,
    KEYED_FORMAT,
    Problem,
    Trail,
    TrailIntegrityError,
    TrailKeys,
    TrailRecord,
    compute_hash,
    head_seal,
    record_from_json,
    verify,
    verify_chain,
)
from support.clock import ManualClock

MASTER_KEY = bytes(range(32))
KEYS = TrailKeys.from_keystore(Keystore(MASTER_KEY))
records_table = metadata.tables["trail_records"]
head_table = metadata.tables["trail_head"]


@dataclass(frozen=True)
class FakeCaller:
    role: str


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), tick=timedelta(seconds=1))


@pytest.fixture
def trail(store: Store, clock: ManualClock) -> Trail:
    return Trail(store, KEYS, clock=clock)


def call(trail: Trail, n: int, **overrides: Any) -> TrailRecord:
    fields: dict[str, Any] = {
        "caller": FakeCaller("operator"),
        "access_key_id": "AKIAEXAMPLEEXAMPLE00",
        "source_ip": "192.0.2.10",
        "service": "iot",
        "operation": "CreateThing",
        "parameters": {"thingName": f"thing-{n}", "attributePayload": {"attributes": {}}},
        "outcome": "allowed",
        "error_code": None,
        "http_status": 200,
    }
    fields.update(overrides)
    return trail.append(**fields)


@pytest.fixture
def filled(trail: Trail) -> list[TrailRecord]:
    """Six records, one of them denied and unauthenticated."""
    made = [call(trail, n) for n in range(1, 4)]
    made.append(call(trail, 4, caller=None, access_key_id="AKIABOGUSBOGUSBOGUS0",
                     operation="DeleteThing", outcome="denied",
                     error_code="AccessDeniedException", http_status=403))
    made += [call(trail, n) for n in range(5, 7)]
    return made


def _execute(store: Store, *statements: sa.Executable) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def _where(sequence: int) -> sa.ColumnElement[bool]:
    return records_table.c.sequence == sequence


# -- building -------------------------------------------------------------------------


def test_records_are_numbered_and_linked(filled: list[TrailRecord], store: Store) -> None:
    assert [r.sequence for r in filled] == [1, 2, 3, 4, 5, 6]
    assert filled[0].previous_hash == GENESIS_HASH == "0" * 64
    for before, after in itertools.pairwise(filled):
        assert after.previous_hash == before.hash
    assert len({r.hash for r in filled}) == 6
    assert filled[3].role is None and filled[3].outcome == "denied"
    assert filled[0].role == "operator"
    assert filled[0].time.microsecond % 1000 == 0  # millisecond precision
    with store.transaction(readonly=True) as uow:
        head = uow.trail.head()
        stored = uow.trail.records()
    assert head is not None and (head.sequence, head.hash) == (6, filled[-1].hash)
    assert [row.hash for row in stored] == [r.hash for r in filled]
    assert [row.time for row in stored] == [r.time for r in filled]


def test_the_link_format_is_the_documented_one(filled: list[TrailRecord]) -> None:
    """An independent implementation of the module docstring's format: HMAC-SHA256 under
    HKDF-SHA256(master key, info="bastion trail chain v1")."""
    record = filled[3]
    assert record.format == KEYED_FORMAT
    body = {
        "v": 2, "sequence": 4, "time": record.time.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{record.time.microsecond // 1000:03d}Z", "access_key_id": "AKIABOGUSBOGUSBOGUS0",
        "role": None, "source_ip": "192.0.2.10", "service": "iot", "operation": "DeleteThing",
        "parameters": '{"attributePayload":{"attributes":{}},"thingName":"thing-4"}',
        "outcome": "denied", "error_code": "AccessDeniedException", "http_status": 403,
        "previous_hash": filled[2].hash,
    }
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    chain_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                     info=b"bastion trail chain v1").derive(MASTER_KEY)
    assert record.hash == hmac.new(chain_key, encoded, hashlib.sha256).hexdigest()
    assert record.hash != hashlib.sha256(encoded).hexdigest()


def test_an_intact_chain_verifies(filled: list[TrailRecord], trail: Trail,
                                  store: Store) -> None:
    result = trail.verify()
    assert result.ok and result.checked == 6
    assert result.first_broken_sequence is None and result.reason is None
    assert (result.last_sequence, result.last_hash) == (6, filled[-1].hash)
    assert verify(store, KEYS) == result


def test_an_empty_trail_verifies_once_sealed(store: Store, trail: Trail) -> None:
    assert verify(store, KEYS).problem is Problem.HEAD_NOT_SEALED  # as migrated
    assert trail.seal() is True
    assert trail.seal() is False
    result = verify(store, KEYS)
    assert result.ok and result.checked == 0 and result.last_hash == GENESIS_HASH


def test_there_is_no_way_to_change_or_remove_records() -> None:
    words = ("delete", "update", "remove", "truncate", "replace", "edit", "set")
    for cls in (Trail, TrailRepository):
        public = [name for name in dir(cls) if not name.startswith("_")]
        assert not [name for name in public if any(word in name for word in words)], cls


# -- tampering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [("outcome", "allowed"), ("http_status", 200), ("error_code", None), ("role", "admin"),
     ("access_key_id", "AKIAEXAMPLEEXAMPLE00"), ("source_ip", "10.0.0.1"),
     ("operation", "DescribeThing"), ("parameters", '{"thingName":"innocent"}'),
     ("time", datetime(2024, 1, 1, tzinfo=UTC))],
)
def test_an_edited_record_is_named(filled: list[TrailRecord], store: Store, column: str,
                                   value: object) -> None:
    _execute(store, records_table.update().where(_where(4)).values({column: value}))
    result = verify(store, KEYS)
    assert not result.ok
    assert result.first_broken_sequence == 4
    assert "record 4 does not match its hash" in (result.reason or "")
    assert result.problem is Problem.RECORD_ALTERED
    assert result.checked == 3 and result.last_sequence == 3


def _forged_link(r: TrailRecord, keys: TrailKeys | None, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "sequence": r.sequence, "time": r.time, "access_key_id": r.access_key_id,
        "role": r.role, "source_ip": r.source_ip, "service": r.service,
        "operation": r.operation, "parameters": r.parameters, "outcome": r.outcome,
        "error_code": r.error_code, "http_status": r.http_status,
        "previous_hash": r.previous_hash}
    fields.update(changes)
    return compute_hash(keys=keys, **fields)


@pytest.mark.parametrize("keys", [None, TrailKeys.from_keystore(Keystore.generate())],
                         ids=["unkeyed", "another-key"])
def test_an_edit_with_a_link_recomputed_without_the_key_is_named(
        filled: list[TrailRecord], store: Store, keys: TrailKeys | None) -> None:
    forged = _forged_link(filled[1], keys, operation="DescribeThing")
    _execute(store, records_table.update().where(_where(2))
             .values(operation="DescribeThing", hash=forged))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 2, Problem.RECORD_ALTERED)


def test_an_edit_by_a_key_holder_still_breaks_the_next_link(
        filled: list[TrailRecord], store: Store) -> None:
    forged = _forged_link(filled[1], KEYS, operation="DescribeThing")
    _execute(store, records_table.update().where(_where(2))
             .values(operation="DescribeThing", hash=forged))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence) == (False, 3)
    assert result.problem is Problem.LINK_MISMATCH
    assert "does not link to record 2" in (result.reason or "")


@pytest.mark.parametrize("deleted", [1, 3, 5])
def test_a_deleted_record_is_named(filled: list[TrailRecord], store: Store,
                                   deleted: int) -> None:
    _execute(store, records_table.delete().where(_where(deleted)))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence) == (False, deleted)
    assert f"record {deleted} is missing" in (result.reason or "")
    assert result.problem is Problem.GAP


def test_a_deleted_last_record_is_caught_by_the_head(filled: list[TrailRecord],
                                                     store: Store) -> None:
    _execute(store, records_table.delete().where(_where(6)))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence, result.problem) == (
        False, 6, Problem.TRUNCATED)
    assert "truncated after record 5" in (result.reason or "")


@pytest.mark.parametrize(("a", "b"), [(2, 3), (1, 6), (4, 5)])
def test_reordered_records_are_named(filled: list[TrailRecord], store: Store, a: int,
                                     b: int) -> None:
    """Swap two rows' sequence numbers (via a free number: the sequence is the key)."""
    _execute(store,
             records_table.update().where(_where(a)).values(sequence=-1),
             records_table.update().where(_where(b)).values(sequence=a),
             records_table.update().where(_where(-1)).values(sequence=b))
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence) == (False, a)
    assert result.checked == a - 1


def test_renumbered_records_are_named(filled: list[TrailRecord], store: Store) -> None:
    """Delete record 3 and close the gap by renumbering the rest (the head is left
    alone: moving it breaks its seal, see test_sealed_head)."""
    _execute(store, records_table.delete().where(_where(3)),
             *[records_table.update().where(_where(n)).values(sequence=n - 1)
               for n in range(4, 7)])
    result = verify(store, KEYS)
    assert (result.ok, result.first_broken_sequence) == (False, 3)
    assert result.problem is Problem.RECORD_ALTERED


def test_anchors_catch_a_complete_rewrite_by_a_key_holder(filled: list[TrailRecord],
                                                          store: Store) -> None:
    """Someone holding the master key can relink and reseal everything; only an anchor
    noted outside the database tells."""
    noted = verify(store, KEYS)
    previous = filled[0].hash
    statements: list[sa.Executable] = []
    for r in filled[1:]:
        operation = "DescribeThing" if r.sequence == 2 else r.operation
        digest = _forged_link(r, KEYS, operation=operation, previous_hash=previous)
        statements.append(records_table.delete().where(_where(r.sequence)))
        statements.append(records_table.insert().values(
            sequence=r.sequence, time=r.time, access_key_id=r.access_key_id, role=r.role,
            source_ip=r.source_ip, service=r.service, operation=operation,
            parameters=r.parameters, outcome=r.outcome, error_code=r.error_code,
            http_status=r.http_status, previous_hash=previous, hash=digest))
        previous = digest
    statements.append(head_table.update().values(
        hash=previous, seal=head_seal(KEYS, sequence=6, hash=previous, keyed_from=1)))
    _execute(store, *statements)
    assert verify(store, KEYS).ok
    result = verify(store, KEYS, anchors={noted.last_sequence: noted.last_hash})
    assert (result.ok, result.first_broken_sequence) == (False, 6)
    assert "anchored" in (result.reason or "")
    truncated = verify(store, KEYS, anchors={99: "a" * 64})
    assert (truncated.ok, truncated.first_broken_sequence) == (False, 99)


# -- writers ----------------------------------------------------------------------------


def test_appends_refuse_a_chain_whose_head_row_was_lost(filled: list[TrailRecord],
                                                        trail: Trail, store: Store) -> None:
    """Recreating the head from the last record would bless a truncated tail."""
    _execute(store, head_table.delete())
    with pytest.raises(TrailIntegrityError, match="missing"):
        call(trail, 7)
    with store.transaction(readonly=True) as uow:
        assert len(uow.trail.records()) == 6


def test_a_stale_writer_cannot_fork_the_chain(filled: list[TrailRecord], store: Store) -> None:
    r = filled[-1]
    fork = TrailRecordRow(sequence=6, time=r.time, access_key_id="x", role=None,
                          source_ip="x", service="iot", operation="X", parameters="{}",
                          outcome="allowed", error_code=None, http_status=200,
                          previous_hash=filled[-2].hash, hash="e" * 64)
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.trail.lock_head()
        uow.trail.append(fork, keyed_from=1, seal="0" * 64)
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as uow:  # no head lock
        uow.connection.execute(records_table.insert().values(
            sequence=7, time=r.time, access_key_id="x", role=None, source_ip="x",
            service="iot", operation="X", parameters="{}", outcome="allowed",
            error_code=None, http_status=200, previous_hash=filled[-2].hash, hash="e" * 64))
    assert verify(store, KEYS).ok


def _hammer(make_trail: Callable[[], Trail], threads: int, each: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work() -> None:
        writer = make_trail()
        try:
            start.wait()
            for n in range(each):
                call(writer, n)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return errors


def test_concurrent_writers_of_one_process(trail: Trail, store: Store) -> None:
    assert _hammer(lambda: trail, threads=6, each=15) == []
    result = verify(store, KEYS)
    assert result.ok and result.checked == 90


def test_concurrent_nodes_never_fork(store: Store, clock: ManualClock) -> None:
    """Separate Trail objects (no shared lock) behave like separate nodes: the database
    head lock and constraints keep one chain."""
    assert _hammer(lambda: Trail(store, KEYS, clock=clock), threads=6, each=15) == []
    result = verify(store, KEYS)
    assert result.ok and result.checked == 90


# -- export -----------------------------------------------------------------------------


def test_export_by_time_and_offline_verification(filled: list[TrailRecord],
                                                 trail: Trail) -> None:
    exported = list(trail.export())
    assert [line["sequence"] for line in exported] == [1, 2, 3, 4, 5, 6]
    text = "\n".join(json.dumps(line) for line in exported)  # JSON lines work
    parsed = [record_from_json(json.loads(line)) for line in text.splitlines()]
    assert parsed == filled
    assert verify_chain(parsed, keys=KEYS).ok
    assert verify_chain(parsed, keys=None).problem is Problem.KEY_UNAVAILABLE
    assert exported[0]["parameters"] == {"thingName": "thing-1",
                                         "attributePayload": {"attributes": {}}}
    assert exported[3]["time"].endswith("Z") and exported[3]["role"] is None

    since, until = filled[2].time, filled[4].time
    window = list(trail.export(since, until))
    assert [line["sequence"] for line in window] == [3, 4]
    part = [record_from_json(line) for line in window]
    assert verify_chain(part, keys=KEYS, start_sequence=2,
                        start_hash=part[0].previous_hash).ok
    edited = dict(window[1], outcome="allowed")
    bad = verify_chain([part[0], record_from_json(edited)], keys=KEYS, start_sequence=2,
                       start_hash=part[0].previous_hash)
    assert (bad.ok, bad.first_broken_sequence) == (False, 4)
    assert list(trail.export(since=filled[-1].time + timedelta(seconds=1))) == []
    with pytest.raises(ValueError):
        trail.export(datetime(2025, 1, 1))  # naive on purpose


def test_export_reads_in_batches(trail: Trail, store: Store) -> None:
    for n in range(1005):
        call(trail, n)
    assert [line["sequence"] for line in trail.export()] == list(range(1, 1006))
    assert verify(store, KEYS).checked == 1005


@pytest.mark.parametrize("damage", [{"sequence": "1"}, {"hash": None}, {"time": "yesterday"}])
def test_malformed_exported_lines_are_refused(filled: list[TrailRecord], trail: Trail,
                                              damage: dict[str, object]) -> None:
    line = next(iter(trail.export()))
    with pytest.raises(ValueError):
        record_from_json({**line, **damage})
    missing = dict(line)
    del missing["outcome"]
    with pytest.raises(ValueError):
        record_from_json(missing)


def test_field_types_are_checked(trail: Trail) -> None:
    with pytest.raises(TypeError):
        call(trail, 1, http_status="200")
    with pytest.raises(TypeError):
        call(trail, 1, operation=None)
    with pytest.raises(TypeError):
        Trail("sqlite://", KEYS)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Trail(trail._store, b"k" * 32)  # type: ignore[arg-type]


def test_overlong_and_nul_fields_are_cut(trail: Trail, store: Store) -> None:
    record = call(trail, 1, access_key_id="A\x00" + "K" * 500, source_ip="::1" * 40)
    assert record.access_key_id.startswith("A\ufffdK") and len(record.access_key_id) == 128
    assert verify(store, KEYS).ok
