"""Repositories on both backends: types, constraints, transactions, pagination, secrets."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import exc

from bastion.pki import Keystore, SecretTamperedError
from bastion.store import (
    ConflictError,
    InvalidPageTokenError,
    PolicyTarget,
    Store,
    ThingGroupRow,
    ThingRow,
    ThingTypeRow,
)

NOW = datetime(2024, 3, 1, 10, 30, 15, 123456, tzinfo=UTC)


def _thing(name: str, *, thing_type: str | None = None, when: datetime = NOW,
           attributes: dict[str, str] | None = None) -> ThingRow:
    return ThingRow(name=name, thing_id=str(uuid.uuid4()), thing_type_name=thing_type,
                    attributes=attributes or {}, version=1, creation_date=when,
                    last_modified_date=when)


def _group(name: str, parent: str | None = None) -> ThingGroupRow:
    return ThingGroupRow(name=name, thing_group_id=str(uuid.uuid4()), parent_name=parent,
                         description=None, attributes={}, version=1, creation_date=NOW,
                         last_modified_date=NOW)


def test_timestamps_come_back_aware_in_utc(store: Store) -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-5)))
    with store.transaction() as uow:
        uow.things.insert(_thing("t", when=local), searchable=())
    with store.transaction(readonly=True) as uow:
        row = uow.things.get("t")
    assert row is not None
    assert row.creation_date == NOW
    assert row.creation_date.tzinfo is UTC


def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises((ValueError, exc.StatementError)), store.transaction() as uow:
        uow.things.insert(_thing("t", when=NOW.replace(tzinfo=None)), searchable=())


def test_duplicates_and_missing_references_are_conflicts(store: Store) -> None:
    with store.transaction() as uow:
        uow.things.insert(_thing("t"), searchable=())
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.things.insert(_thing("t"), searchable=())
    # Foreign keys are enforced (SQLite needs PRAGMA foreign_keys=ON for that).
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.things.insert(_thing("typed", thing_type="no-such-type"), searchable=())
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.thing_groups.insert(_group("orphan", parent="no-such-parent"))


def test_restrict_protects_referenced_rows(store: Store) -> None:
    with store.transaction() as uow:
        uow.thing_types.insert(ThingTypeRow("type", str(uuid.uuid4()), None, (), False, None, NOW))
        uow.things.insert(_thing("t", thing_type="type"), searchable=())
        uow.thing_groups.insert(_group("parent"))
        uow.thing_groups.insert(_group("child", parent="parent"))
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.thing_types.delete("type")
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.thing_groups.delete("parent")


def test_a_failing_block_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as uow:
        uow.things.insert(_thing("t"), searchable=())
        raise RuntimeError("boom")
    with store.transaction(readonly=True) as uow:
        assert uow.things.get("t") is None


def test_deleting_a_thing_cascades(store: Store) -> None:
    with store.transaction() as uow:
        uow.things.insert(_thing("t", attributes={"a": "1"}), searchable={"a"})
        uow.thing_groups.insert(_group("g"))
        uow.thing_groups.add_member("g", "t", NOW)
        uow.thing_principals.attach("t", "cert", "ab" * 32, NOW)
    with store.transaction() as uow:
        assert uow.things.delete("t")
        assert not uow.things.delete("t")
    with store.transaction(readonly=True) as uow:
        assert uow.thing_groups.members_of("g") == []
        assert uow.thing_principals.things_of("cert", "ab" * 32) == []


def test_ancestors_and_descendants(store: Store) -> None:
    with store.transaction() as uow:
        for name, parent in [("a", None), ("b", "a"), ("c", "b"), ("d", "c"), ("x", "a")]:
            uow.thing_groups.insert(_group(name, parent))
    with store.transaction(readonly=True) as uow:
        assert [g.name for g in uow.thing_groups.ancestors("d")] == ["a", "b", "c"]
        assert uow.thing_groups.ancestors("a") == []
        assert uow.thing_groups.with_ancestors(["c", "x"]) == {"a", "b", "c", "x"}
        descendants = set(uow.connection.execute(uow.thing_groups.descendants("b")).scalars())
        assert descendants == {"b", "c", "d"}


def test_pagination_orders_bytewise_on_both_backends(store: Store) -> None:
    names = ["B", "a", "_x", "Z9", "a-b", "a_b", "a:b", "0"]
    with store.transaction() as uow:
        for name in names:
            uow.things.insert(_thing(name), searchable=())
    collected: list[str] = []
    token = None
    with store.transaction(readonly=True) as uow:
        while True:
            rows, token = uow.things.list_page(limit=3, token=token)
            collected.extend(row.name for row in rows)
            if token is None:
                break
        with pytest.raises(InvalidPageTokenError):
            uow.things.list_page(limit=3, token="garbage")
    assert collected == sorted(names)  # Python's sort is by code point


def test_policy_versions_and_attachments(store: Store) -> None:
    with store.transaction() as uow:
        uow.policies.insert("p", "{}", NOW)
        version = uow.policies.add_version("p", '{"v": 2}', NOW, set_as_default=True)
        assert version.version_id == 2
        uow.thing_groups.insert(_group("g"))
        assert uow.policies.attach("p", PolicyTarget("thinggroup", "g"), NOW)
        assert not uow.policies.attach("p", PolicyTarget("thinggroup", "g"), NOW)
    with store.transaction(readonly=True) as uow:
        attached = uow.policies.attached_to([PolicyTarget("thinggroup", "g")])
        assert len(attached) == 1
        assert attached[0].default_version.document == '{"v": 2}'
        assert attached[0].policy.default_version_id == 2
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.policies.delete("p")  # still attached: RESTRICT


def test_sealed_secrets_round_trip(store: Store) -> None:
    keystore = Keystore.generate()
    sealed = keystore.seal(b"api-secret", associated_data=b"api/key-1")
    with store.transaction() as uow:
        uow.secrets.put("api/key-1", sealed, NOW)
        uow.secrets.put("api/key-2", sealed, NOW)  # moved to another name
    with store.transaction(readonly=True) as uow:
        blob = uow.secrets.get("api/key-1")
        moved = uow.secrets.get("api/key-2")
    assert blob is not None and b"api-secret" not in blob
    assert keystore.unseal(blob, associated_data=b"api/key-1") == b"api-secret"
    assert moved is not None
    with pytest.raises(SecretTamperedError):
        keystore.unseal(moved, associated_data=b"api/key-2")
    with store.transaction() as uow:
        assert uow.secrets.delete("api/key-1")
        assert uow.secrets.get("api/key-1") is None


def test_concurrent_writers_do_not_fail(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for index in range(15):
                with store.transaction() as uow:
                    uow.things.insert(_thing(f"{prefix}-{index}"), searchable=())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with store.transaction(readonly=True) as uow:
        rows, _ = uow.things.list_page(limit=100, token=None)
    assert len(rows) == 60
