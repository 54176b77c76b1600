"""``Trail.record_with_change``: a call's record commits in the transaction of its change,
through a real registry service that knows nothing of the trail; the chain stays one
chain while changes and plain records are appended from many threads and "nodes"."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bastion.pki import Keystore
from bastion.registry import RegistryService, ResourceNotFoundError
from bastion.store import Store, metadata
from bastion.trail import Trail, TrailIntegrityError, TrailKeys, export, verify
from support.clock import ManualClock

KEYS = TrailKeys.from_keystore(Keystore.generate())
head_table = metadata.tables["trail_head"]


@dataclass(frozen=True)
class FakeCaller:
    role: str


def fields(name: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "caller": FakeCaller("operator"), "access_key_id": "AKIAEXAMPLEEXAMPLE00",
        "source_ip": "192.0.2.10", "service": "iot", "operation": "CreateThing",
        "parameters": {"thingName": name}, "outcome": "allowed", "error_code": None,
        "http_status": 200}
    values.update(changes)
    return values


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 3, 1, 12, tzinfo=UTC), tick=timedelta(milliseconds=1))


@pytest.fixture
def trail(store: Store, clock: ManualClock) -> Trail:
    return Trail(store, KEYS, clock=clock)


@pytest.fixture
def registry(store: Store) -> RegistryService:
    return RegistryService(store)


def records(store: Store) -> list[dict[str, Any]]:
    return list(export(store))


def test_the_record_commits_with_the_change(trail: Trail, registry: RegistryService,
                                            store: Store) -> None:
    with trail.record_with_change(**fields("pump-1")) as change:
        assert not change.committed
        registry.create_thing("pump-1")
        assert change.committed  # with the change's commit, not when the block ends
    [record] = records(store)
    assert (record["operation"], record["parameters"], record["outcome"]) == (
        "CreateThing", {"thingName": "pump-1"}, "allowed")
    assert (record["role"], record["http_status"]) == ("operator", 200)
    assert verify(store, KEYS).ok


def test_a_refused_change_leaves_no_record(trail: Trail, registry: RegistryService,
                                           store: Store) -> None:
    with (trail.record_with_change(**fields("pump-1")) as change,
          pytest.raises(ResourceNotFoundError)):
        registry.create_thing("pump-1", thing_type_name="no-such-type")
    assert not change.committed
    assert records(store) == []


def test_only_the_first_change_carries_the_record(trail: Trail, registry: RegistryService,
                                                  store: Store) -> None:
    with trail.record_with_change(**fields("pump-1")) as change:
        registry.create_thing("pump-1")
        registry.create_thing("pump-2")
    assert change.committed
    assert [r["parameters"]["thingName"] for r in records(store)] == ["pump-1"]


def test_a_block_that_only_reads_records_nothing(trail: Trail, registry: RegistryService,
                                                 store: Store) -> None:
    registry.create_thing("pump-1")
    with trail.record_with_change(**fields("pump-1", operation="DescribeThing")) as change:
        registry.describe_thing("pump-1")
    assert not change.committed
    assert records(store) == []  # the caller records it with record(), outcome known


def test_the_fields_are_checked_before_the_block_runs(trail: Trail) -> None:
    ran = []
    with pytest.raises(TypeError), trail.record_with_change(**fields("x", http_status="200")):
        ran.append(True)
    assert ran == []


def test_secrets_are_redacted_as_for_any_record(trail: Trail, store: Store,
                                                registry: RegistryService) -> None:
    csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIsecret\n-----END CERTIFICATE REQUEST-----"
    with trail.record_with_change(**fields("pump-1", operation="CreateCertificateFromCsr",
                                           parameters={"certificateSigningRequest": csr})):
        registry.create_thing("pump-1")
    [record] = records(store)
    assert "MIIsecret" not in str(record)


def test_a_tampered_head_refuses_the_change_with_its_record(
        trail: Trail, registry: RegistryService, store: Store) -> None:
    trail.record(**fields("before"))
    with store.engine.begin() as conn:
        conn.execute(head_table.update().values(seal="0" * 64))
    with pytest.raises(TrailIntegrityError), trail.record_with_change(**fields("pump-1")):
        registry.create_thing("pump-1")
    with pytest.raises(ResourceNotFoundError):  # rolled back with the record
        registry.describe_thing("pump-1")
    assert [r["parameters"]["thingName"] for r in records(store)] == ["before"]


def _hammer(work: Callable[[int, int], None], threads: int, each: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(worker: int) -> None:
        try:
            start.wait()
            for n in range(each):
                work(worker, n)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    return errors


@pytest.mark.parametrize("nodes", [False, True], ids=["one-trail", "a-trail-per-thread"])
def test_changes_and_plain_records_from_many_threads_keep_one_chain(
        store: Store, registry: RegistryService, clock: ManualClock, nodes: bool) -> None:
    """Half the threads make changes that carry their records, half append records of
    their own; with one Trail (one process) or one per thread (nodes: no shared lock)."""
    shared = Trail(store, KEYS, clock=clock)
    trails = [Trail(store, KEYS, clock=clock) if nodes else shared for _ in range(6)]

    def work(worker: int, n: int) -> None:
        name = f"thing-{worker}-{n}"
        if worker % 2:
            trails[worker].record(**fields(name, operation="DescribeThing"))
        else:
            with trails[worker].record_with_change(**fields(name)) as change:
                registry.create_thing(name)
            assert change.committed

    assert _hammer(work, threads=6, each=10) == []
    result = verify(store, KEYS)
    assert result.ok and result.checked == 60
    created = {r["parameters"]["thingName"] for r in records(store)
               if r["operation"] == "CreateThing"}
    things, _token = registry.list_things(max_results=100)
    assert created == {thing.thing_name for thing in things} and len(created) == 30
