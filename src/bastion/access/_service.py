"""The access key service: create, list, disable, enable, delete, and look up for SigV4.

Theory of operation of :meth:`AccessKeyService.lookup`: the API calls it on every
request, so answers for *active* keys are cached in memory (id → secret and role) for
``cache_ttl`` seconds. Every change made through this service drops the key from this
process's cache at once. A change made by another process — ``bastion admin
disable-access-key`` on the data directory while ``bastion serve`` runs, or another node
of a cluster — is seen when the entry expires, so at most ``cache_ttl`` seconds later.
Unknown and inactive keys are never cached: a key created elsewhere works at once. A
sealed secret that does not unseal (tampered row, another master key) is logged and
treated as an unknown key.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from bastion.clock import Clock, SystemClock
from bastion.pki import Keystore, KeystoreError
from bastion.store import AccessKeyRow, ConflictError, Store

from ._errors import AccessKeyNotFoundError, LastAdminKeyError
from ._model import AccessKey, AccessKeyStatus, Role
from ._secrets import (
    ACCESS_KEY_ID_PATTERN,
    new_access_key_id,
    new_secret_access_key,
    seal_secret,
    unseal_secret,
)

_log = logging.getLogger("bastion.access")

DEFAULT_CACHE_TTL: Final = 5.0
"""Seconds a looked-up key is trusted before it is read again."""

MAX_DESCRIPTION_LENGTH: Final = 256
_CACHE_SIZE: Final = 1024
_CREATE_ATTEMPTS: Final = 5


class AccessKeyService:
    """Access keys of the control-plane API, stored in ``store`` and sealed by ``keystore``.

    Implements the API's ``CredentialSource`` protocol (:meth:`lookup`). Thread-safe.

    :param store: an open, migrated :class:`~bastion.store.Store`.
    :param keystore: seals and unseals the secrets (the data directory's keystore).
    :param clock: the current time for stored dates, and the cache's monotonic time.
    :param cache_ttl: seconds a :meth:`lookup` answer is reused (0 disables the cache).
    :raises TypeError: ``store`` or ``keystore`` has the wrong type.
    :raises ValueError: ``cache_ttl`` is negative.
    """

    __slots__ = ("_cache", "_cache_lock", "_cache_ttl", "_changes", "_clock", "_keystore",
                 "_store")

    def __init__(
        self,
        store: Store,
        keystore: Keystore,
        *,
        clock: Clock | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
    ) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if not isinstance(keystore, Keystore):
            raise TypeError(f"keystore must be a Keystore, not {type(keystore).__name__}")
        if cache_ttl < 0:
            raise ValueError(f"cache_ttl must not be negative, not {cache_ttl}")
        self._store = store
        self._keystore = keystore
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._cache_ttl = float(cache_ttl)
        self._cache: dict[str, tuple[float, str, Role]] = {}
        self._cache_lock = threading.Lock()
        self._changes = 0  # bumped by every change: a lookup racing one does not cache

    def __repr__(self) -> str:
        return f"<AccessKeyService {self._store!r}>"

    # -- management (admin-only operations) -------------------------------------------

    def create_access_key(self, role: Role, description: str = "") -> tuple[str, str]:
        """Create an active access key.

        :returns: ``(access_key_id, secret_access_key)``. The secret is not retrievable
            through this service afterwards: show it once.
        :raises TypeError: ``role`` is not a :class:`Role`, ``description`` not a str.
        :raises ValueError: ``description`` is longer than 256 characters.
        """
        if not isinstance(role, Role):
            raise TypeError(f"role must be a Role, not {type(role).__name__}")
        if not isinstance(description, str):
            raise TypeError(f"description must be a str, not {type(description).__name__}")
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise ValueError(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
        secret = new_secret_access_key()
        for attempt in range(_CREATE_ATTEMPTS):
            access_key_id = new_access_key_id()
            now = self._clock.now()
            row = AccessKeyRow(
                access_key_id=access_key_id,
                role=role.value,
                status=AccessKeyStatus.ACTIVE.value,
                description=description,
                sealed_secret=seal_secret(self._keystore, access_key_id, role, secret),
                creation_date=now,
                last_modified_date=now,
            )
            try:
                with self._store.transaction() as uow:
                    uow.access_keys.insert(row)
            except ConflictError:  # an id collision: ~2^-82 per existing key
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
                continue
            self._forget(access_key_id)
            _log.info("access key %s created (role %s)", access_key_id, role.value)
            return access_key_id, secret
        raise AssertionError("unreachable")  # pragma: no cover

    def list_access_keys(self) -> list[AccessKey]:
        """Every access key, oldest first, without secrets."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.access_keys.list_all()
        return [_public(row) for row in rows]

    def get_access_key(self, access_key_id: str) -> AccessKey:
        """:raises AccessKeyNotFoundError: no key has that id."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.access_keys.get(access_key_id)
        if row is None:
            raise AccessKeyNotFoundError(f"access key {access_key_id} does not exist")
        return _public(row)

    def disable_access_key(self, access_key_id: str) -> None:
        """Make the key authenticate nothing (it can be enabled again).

        :raises AccessKeyNotFoundError: no key has that id.
        :raises LastAdminKeyError: it is the last active admin key.
        """
        self._change(access_key_id, AccessKeyStatus.INACTIVE)

    def enable_access_key(self, access_key_id: str) -> None:
        """Make a disabled key usable again.

        :raises AccessKeyNotFoundError: no key has that id.
        """
        self._change(access_key_id, AccessKeyStatus.ACTIVE)

    def delete_access_key(self, access_key_id: str) -> None:
        """Delete the key for good.

        :raises AccessKeyNotFoundError: no key has that id.
        :raises LastAdminKeyError: it is the last active admin key.
        """
        self._change(access_key_id, None)

    def has_active_admin_key(self) -> bool:
        """Whether at least one active admin key exists."""
        with self._store.transaction(readonly=True) as uow:
            return bool(uow.access_keys.ids_with(role=Role.ADMIN.value,
                                                 status=AccessKeyStatus.ACTIVE.value))

    def reveal_secret(self, access_key_id: str) -> str:
        """The secret of an existing key, unsealed. For tools run by the holder of the
        master key on the data directory (``bastion aws-profile``); the API must never
        offer it.

        :raises AccessKeyNotFoundError: no key has that id.
        :raises bastion.pki.KeystoreError: the secret does not unseal (tampered row or
            another master key).
        """
        with self._store.transaction(readonly=True) as uow:
            row = uow.access_keys.get(access_key_id)
        if row is None:
            raise AccessKeyNotFoundError(f"access key {access_key_id} does not exist")
        return unseal_secret(self._keystore, row.access_key_id, Role(row.role), row.sealed_secret)

    # -- CredentialSource -------------------------------------------------------------

    def lookup(self, access_key_id: str) -> tuple[str, Role] | None:
        """The secret and role of an *active* key, for SigV4 verification.

        :returns: ``(secret_access_key, role)``, or ``None`` when the key is unknown,
            inactive, malformed, or its stored secret does not unseal.
        """
        if not isinstance(access_key_id, str) or not ACCESS_KEY_ID_PATTERN.fullmatch(
            access_key_id
        ):
            return None
        now = self._clock.monotonic()
        with self._cache_lock:
            cached = self._cache.get(access_key_id)
            if cached is not None and cached[0] > now:
                return cached[1], cached[2]
            changes = self._changes
        with self._store.transaction(readonly=True) as uow:
            row = uow.access_keys.get(access_key_id)
        if row is None or row.status != AccessKeyStatus.ACTIVE.value:
            with self._cache_lock:
                self._cache.pop(access_key_id, None)  # an expired entry
            return None
        try:
            role = Role(row.role)
            secret = unseal_secret(self._keystore, row.access_key_id, role, row.sealed_secret)
        except (ValueError, KeystoreError):
            _log.warning("access key %s: stored secret or role does not verify; refusing it",
                         access_key_id)
            return None
        if self._cache_ttl > 0:
            with self._cache_lock:
                if self._changes == changes:
                    if len(self._cache) >= _CACHE_SIZE:
                        self._cache.clear()
                    self._cache[access_key_id] = (now + self._cache_ttl, secret, role)
        return secret, role

    # -- internals --------------------------------------------------------------------

    def _change(self, access_key_id: str, status: AccessKeyStatus | None) -> None:
        """Set the status (``None``: delete), refusing to remove the last active admin."""
        with self._store.transaction() as uow:
            row = uow.access_keys.get(access_key_id)
            if row is None:
                raise AccessKeyNotFoundError(f"access key {access_key_id} does not exist")
            removes_admin = (
                row.role == Role.ADMIN.value
                and row.status == AccessKeyStatus.ACTIVE.value
                and status is not AccessKeyStatus.ACTIVE
            )
            if removes_admin:
                admins = uow.access_keys.ids_with(
                    role=Role.ADMIN.value, status=AccessKeyStatus.ACTIVE.value, for_update=True
                )
                if admins == [access_key_id]:
                    raise LastAdminKeyError(
                        f"access key {access_key_id} is the last active admin key; "
                        "create another admin key first"
                    )
            if status is None:
                uow.access_keys.delete(access_key_id)
            else:
                uow.access_keys.set_status(access_key_id, status.value, self._clock.now())
        self._forget(access_key_id)
        _log.info("access key %s %s", access_key_id,
                  "deleted" if status is None else f"set {status.value}")

    def _forget(self, access_key_id: str) -> None:
        with self._cache_lock:
            self._changes += 1
            self._cache.pop(access_key_id, None)


def _public(row: AccessKeyRow) -> AccessKey:
    return AccessKey(
        access_key_id=row.access_key_id,
        role=Role(row.role),
        status=AccessKeyStatus(row.status),
        description=row.description,
        creation_date=row.creation_date,
        last_modified_date=row.last_modified_date,
    )
