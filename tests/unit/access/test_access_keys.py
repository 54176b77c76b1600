"""Access keys: creation, sealing at rest, lookup and its cache, disable/enable/delete."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bastion.access import (
    AccessKey,
    AccessKeyNotFoundError,
    AccessKeyService,
    AccessKeyStatus,
    LastAdminKeyError,
    Role,
)
from bastion.pki import Keystore
from bastion.store import Store, metadata
from support.clock import ManualClock

access_keys = metadata.tables["access_keys"]


@pytest.fixture(scope="module")
def keystore() -> Keystore:
    return Keystore.generate()


@pytest.fixture
def ticks() -> ManualClock:
    """The service's clock: each reading of the wall time moves it on by a millisecond
    (keys created one after the other get distinct dates); the cache's TTL is judged by
    its monotonic time, which the tests move."""
    return ManualClock(tick=timedelta(milliseconds=1))


@pytest.fixture
def service(store: Store, keystore: Keystore, ticks: ManualClock) -> AccessKeyService:
    return AccessKeyService(store, keystore, clock=ticks)


def _row(store: Store, access_key_id: str) -> dict[str, object]:
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.select(access_keys).where(access_keys.c.access_key_id == access_key_id)
        ).one()
    return dict(found._mapping)


def _update(store: Store, access_key_id: str, **values: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(access_keys.update()
                     .where(access_keys.c.access_key_id == access_key_id).values(**values))


def test_created_keys_are_aws_shaped_and_work(service: AccessKeyService) -> None:
    key_id, secret = service.create_access_key(Role.OPERATOR, "ci pipeline")
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    assert service.lookup(key_id) == (secret, Role.OPERATOR)
    other_id, other_secret = service.create_access_key(Role.OPERATOR)
    assert other_id != key_id and other_secret != secret


def test_listing_shows_no_secret(service: AccessKeyService) -> None:
    admin_id, _ = service.create_access_key(Role.ADMIN, "first")
    auditor_id, _ = service.create_access_key(Role.AUDITOR, "audit")
    keys = service.list_access_keys()
    assert [(k.access_key_id, k.role, k.status, k.description) for k in keys] == [
        (admin_id, Role.ADMIN, AccessKeyStatus.ACTIVE, "first"),
        (auditor_id, Role.AUDITOR, AccessKeyStatus.ACTIVE, "audit"),
    ]
    assert not any("secret" in name for name in AccessKey.__slots__)
    assert service.get_access_key(auditor_id) == keys[1]


def test_secret_is_never_stored_in_clear(service: AccessKeyService, store: Store) -> None:
    key_id, secret = service.create_access_key(Role.ADMIN)
    row = _row(store, key_id)
    for value in row.values():
        as_bytes = value if isinstance(value, bytes) else str(value).encode()
        assert secret.encode() not in as_bytes
    if store.dialect_name == "sqlite":
        database = Path(store.engine.url.database or "")
        for path in database.parent.glob(database.name + "*"):  # the file, -wal, -shm
            assert secret.encode() not in path.read_bytes(), path


def test_another_master_key_unlocks_nothing(service: AccessKeyService, store: Store) -> None:
    key_id, _ = service.create_access_key(Role.ADMIN)
    stranger = AccessKeyService(store, Keystore.generate())
    assert stranger.lookup(key_id) is None


def test_sealed_secret_is_bound_to_its_row_and_role(service: AccessKeyService,
                                                    store: Store) -> None:
    admin_id, _ = service.create_access_key(Role.ADMIN)
    auditor_id, auditor_secret = service.create_access_key(Role.AUDITOR)
    # Raising a key's role in the database behind Bastion's back disables the key.
    _update(store, auditor_id, role=Role.ADMIN.value)
    assert service.lookup(auditor_id) is None
    _update(store, auditor_id, role=Role.AUDITOR.value)
    assert service.lookup(auditor_id) == (auditor_secret, Role.AUDITOR)
    # A sealed secret copied to another row does not unseal there.
    _update(store, admin_id, sealed_secret=_row(store, auditor_id)["sealed_secret"],
            role=Role.AUDITOR.value)
    assert service.lookup(admin_id) is None


def test_disable_enable_delete(service: AccessKeyService) -> None:
    service.create_access_key(Role.ADMIN)
    key_id, secret = service.create_access_key(Role.OPERATOR)
    assert service.lookup(key_id) is not None  # now cached
    service.disable_access_key(key_id)
    assert service.lookup(key_id) is None
    assert service.get_access_key(key_id).status is AccessKeyStatus.INACTIVE
    service.enable_access_key(key_id)
    assert service.lookup(key_id) == (secret, Role.OPERATOR)
    service.delete_access_key(key_id)
    assert service.lookup(key_id) is None
    for change in (service.disable_access_key, service.enable_access_key,
                   service.delete_access_key, service.get_access_key, service.reveal_secret):
        with pytest.raises(AccessKeyNotFoundError) as caught:
            change(key_id)
        assert caught.value.aws_error_type == "ResourceNotFoundException"
        assert caught.value.http_status == 404


def test_the_last_active_admin_key_stays(service: AccessKeyService) -> None:
    first, _ = service.create_access_key(Role.ADMIN)
    with pytest.raises(LastAdminKeyError):
        service.disable_access_key(first)
    with pytest.raises(LastAdminKeyError):
        service.delete_access_key(first)
    assert service.has_active_admin_key()
    second, _ = service.create_access_key(Role.ADMIN)
    service.disable_access_key(first)
    with pytest.raises(LastAdminKeyError):
        service.delete_access_key(second)
    service.enable_access_key(first)
    service.delete_access_key(second)
    assert [k.access_key_id for k in service.list_access_keys()] == [first]


def test_changes_from_another_process_are_seen_within_the_ttl(
        service: AccessKeyService, store: Store, keystore: Keystore,
        ticks: ManualClock) -> None:
    service.create_access_key(Role.ADMIN)
    key_id, secret = service.create_access_key(Role.OPERATOR)
    assert service.lookup(key_id) == (secret, Role.OPERATOR)
    elsewhere = AccessKeyService(store, keystore)  # e.g. `bastion admin` on the data dir
    elsewhere.disable_access_key(key_id)
    ticks.advance(4.9)
    assert service.lookup(key_id) == (secret, Role.OPERATOR)  # cached
    ticks.advance(0.2)
    assert service.lookup(key_id) is None
    elsewhere.enable_access_key(key_id)
    assert service.lookup(key_id) == (secret, Role.OPERATOR)  # misses are never cached


def test_without_cache_every_lookup_reads(store: Store, keystore: Keystore) -> None:
    service = AccessKeyService(store, keystore, cache_ttl=0)
    key_id, _ = service.create_access_key(Role.OPERATOR)
    assert service.lookup(key_id) is not None
    _update(store, key_id, status=AccessKeyStatus.INACTIVE.value)
    assert service.lookup(key_id) is None


@pytest.mark.parametrize("bad", ["", "AKIA", "akiaabcdefghijklmnop", "AKIA" + "A" * 17,
                                 "ASIAABCDEFGHIJKLMNOP", "AKIA' OR 1=1 --AAAAA"])
def test_malformed_ids_are_unknown(service: AccessKeyService, bad: str) -> None:
    assert service.lookup(bad) is None


def test_reveal_secret_for_the_data_dir_owner(service: AccessKeyService) -> None:
    key_id, secret = service.create_access_key(Role.AUDITOR)
    assert service.reveal_secret(key_id) == secret


def test_argument_checks(service: AccessKeyService, store: Store, keystore: Keystore) -> None:
    with pytest.raises(TypeError):
        service.create_access_key("admin")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        service.create_access_key(Role.ADMIN, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        service.create_access_key(Role.ADMIN, "x" * 257)
    with pytest.raises(TypeError):
        AccessKeyService("sqlite://", keystore)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AccessKeyService(store, b"key")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AccessKeyService(store, keystore, cache_ttl=-1)


def test_roles_match_the_api() -> None:
    api = pytest.importorskip("bastion.api._auth")
    assert {role.value for role in Role} == {role.value for role in api.Role}
    assert [role.name for role in Role] == [role.name for role in api.Role]
