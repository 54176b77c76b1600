"""The trail service: append a record for every control-plane call, verify, export.

Theory of operation of :meth:`Trail.record`: the parameters are redacted
(:func:`~bastion.trail.redact`) and encoded as canonical JSON, then one transaction locks
the chain head, checks its seal, numbers the record ``head + 1``, links it (HMAC under
the chain key, with the head's link as ``previous_hash``), inserts it and moves the head
with a fresh seal (:mod:`._head`). A lock inside the process keeps this process's writers
in line without waiting on the database; the head lock (PostgreSQL) or the database write
lock (SQLite) does the same between processes and nodes. Should a writer still lose a
race, the store's constraints refuse its record (no fork) and the append is retried.

The head is never invented: a missing head row, or one whose seal does not match, makes
the append fail with :class:`~._errors.TrailIntegrityError` instead of carrying on (and
so re-sealing and hiding) a tampered chain. A head that was never sealed — a database
migrated from an unkeyed trail, or a new one — is sealed by the first append: it writes a
keyed ``SealTrail`` record (service ``bastion``, access key ``system:trail``) naming the
head it found, and the unkeyed records before it stay verifiable as before; an empty one
is sealed as it is.

A call that changes something is recorded in the transaction of its change
(:meth:`Trail.record_with_change`): the record joins the first writing transaction the
call's thread commits on the trail's store (:meth:`bastion.store.Store.join_writes`), as
that transaction's last work, so a crash leaves the change and its record or neither, and
a record the trail refuses (a tampered head) refuses the change with it. The chain stays
in line as for any append: the head is locked (PostgreSQL) or the write lock already held
(SQLite's ``BEGIN IMMEDIATE``) in that transaction, and the head is the last lock a
transaction takes, so two changes wait for each other there and never deadlock. The lock
inside the process is not taken there (a transaction holding SQLite's write lock must not
wait for a thread that is waiting for it). A call that changes nothing is recorded in a
transaction of its own (:meth:`Trail.record`), as is everything else the trail keeps.

There is no method to update or delete a record, here or in the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Protocol, TypeVar

from bastion.clock import Clock, SystemClock
from bastion.store import ConflictError, Store, TrailHead, TrailRecordRow, UnitOfWork

from ._chain import (
    GENESIS_HASH,
    KEYED_FORMAT,
    UNKEYED_FORMAT,
    TrailRecord,
    canonical_json,
    compute_hash,
    truncate_to_millisecond,
)
from ._errors import TrailError, TrailIntegrityError
from ._head import head_seal
from ._keys import TrailKeys, same_digest
from ._redact import redact
from ._verify import ChainChecker, Problem, VerifyResult

_log = logging.getLogger("bastion.trail")
_R = TypeVar("_R")

_BATCH: Final = 1000
_APPEND_ATTEMPTS: Final = 5
SEAL_OPERATION: Final = "SealTrail"
"""The operation of the record that seals a head found unsealed."""
SEAL_ACCESS_KEY: Final = "system:trail"
# Column widths of trail_records (see bastion.store); longer values are cut.
_WIDTHS: Final = {"access_key_id": 128, "source_ip": 64, "service": 64, "operation": 128,
                  "outcome": 32, "error_code": 128, "role": 16}


class CallerLike(Protocol):
    """What the trail reads of the API's authenticated caller."""

    @property
    def role(self) -> str: ...


class Trail:
    """The keyed, hash-chained, append-only trail in ``store``. Implements the API's
    ``TrailSink`` protocol. Thread-safe; :meth:`record` blocks on the database.

    :param store: an open, migrated :class:`~bastion.store.Store`.
    :param keys: the installation's trail keys (:meth:`TrailKeys.from_keystore`).
    :param clock: the current time; tests pass one they move by hand.
    :raises TypeError: ``store`` is not a Store, or ``keys`` not TrailKeys.
    """

    __slots__ = ("_clock", "_keys", "_lock", "_store")

    def __init__(self, store: Store, keys: TrailKeys, *, clock: Clock | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if not isinstance(keys, TrailKeys):
            raise TypeError(f"keys must be TrailKeys, not {type(keys).__name__}")
        self._store = store
        self._keys = keys
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Trail {self._store!r}>"

    # -- writing ----------------------------------------------------------------------

    def record(
        self,
        *,
        caller: CallerLike | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> None:
        """Append one call (``TrailSink.record``); see :meth:`append`."""
        self.append(caller=caller, access_key_id=access_key_id, source_ip=source_ip,
                    service=service, operation=operation, parameters=parameters,
                    outcome=outcome, error_code=error_code, http_status=http_status)

    def append(
        self,
        *,
        caller: CallerLike | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> TrailRecord:
        """Redact, chain and store one call, in a transaction of its own.

        :param caller: the authenticated caller (its ``role`` is recorded); ``None`` when
            authentication failed.
        :param access_key_id: the key the request named, verified or not.
        :param parameters: the request parameters, secrets and all: they are redacted
            here, before anything is stored.
        :param outcome: ``allowed``, ``denied`` or ``error``.
        :returns: the stored record.
        :raises TypeError: a field has the wrong type.
        :raises TrailIntegrityError: the chain head is missing or its seal does not match.
        :raises bastion.store.StoreError: the database refused the record repeatedly.
        :raises sqlalchemy.exc.SQLAlchemyError: the database failed.
        """
        fields = _fields(caller=caller, access_key_id=access_key_id, source_ip=source_ip,
                         service=service, operation=operation, parameters=parameters,
                         outcome=outcome, error_code=error_code, http_status=http_status)
        return self._retrying(lambda uow: self._append_in(uow, fields))

    @contextmanager
    def record_with_change(
        self,
        *,
        caller: CallerLike | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> Iterator[ChangeRecord]:
        """A block whose change carries this record of a call (``TrailSink``): the first
        writing transaction that this thread commits on the trail's store inside the
        block also appends the record, as its last work (see the module docstring).
        Later transactions of the block append nothing. A block that commits no writing
        transaction appends nothing either: record the call with :meth:`record` then.

        The fields are those of :meth:`append`, given before the call runs: the answer it
        gets when it succeeds.

        :returns: (the block's value) whether the record has committed so far
            (:attr:`ChangeRecord.committed`).
        :raises TypeError: a field has the wrong type (before the block runs).
        :raises TrailIntegrityError: (from the change's transaction, which is rolled back)
            the chain head is missing or its seal does not match.
        :raises TrailError: (likewise) the head moved although it was locked.
        """
        record = ChangeRecord(self, _fields(
            caller=caller, access_key_id=access_key_id, source_ip=source_ip,
            service=service, operation=operation, parameters=parameters, outcome=outcome,
            error_code=error_code, http_status=http_status))
        with self._store.join_writes(record):
            yield record

    def seal(self) -> bool:
        """Seal the chain head if it was never sealed (see the module docstring); Bastion
        calls it on start so that a new or upgraded trail is sealed before the first call.

        :returns: whether the head was unsealed (and is sealed now).
        :raises TrailIntegrityError: the head is missing or its seal does not match.
        :raises bastion.store.StoreError: the database failed.
        """
        def seal_in(uow: UnitOfWork) -> bool:
            head = self._checked_head(uow)
            if head.seal is not None:
                return False
            self._seal_in(uow, head)
            return True
        return self._retrying(seal_in)

    def _retrying(self, work: Callable[[UnitOfWork], _R]) -> _R:
        with self._lock:
            for attempt in range(_APPEND_ATTEMPTS):
                try:
                    with self._store.transaction() as uow:
                        return work(uow)
                except ConflictError:
                    if attempt == _APPEND_ATTEMPTS - 1:
                        raise
                    _log.info("trail append lost a race with another writer; retrying")
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_in(self, uow: UnitOfWork, fields: Mapping[str, Any]) -> TrailRecord:
        """Append one record inside ``uow`` (sealing an unsealed head first)."""
        head = self._checked_head(uow)
        if head.seal is None:
            head = self._seal_in(uow, head)
        record, _head = self._link(uow, head, fields)
        return record

    def _checked_head(self, uow: UnitOfWork) -> TrailHead:
        head = uow.trail.lock_head()
        if head is None:
            _log.error("the trail's chain head is missing: refusing to append "
                       "(run `bastion trail verify`)")
            raise TrailIntegrityError("the trail's chain head is missing")
        if head.seal is not None:
            keyed_from = head.sequence + 1 if head.keyed_from is None else head.keyed_from
            expected = head_seal(self._keys, sequence=head.sequence, hash=head.hash,
                                 keyed_from=keyed_from)
            if not same_digest(expected, head.seal):
                _log.error("the trail's chain head seal does not match: refusing to append "
                           "(run `bastion trail verify`)")
                raise TrailIntegrityError("the trail's chain head seal does not match")
        return head

    def _seal_in(self, uow: UnitOfWork, head: TrailHead) -> TrailHead:
        """Seal a never-sealed head: an empty one as it is (every record will be keyed);
        one with (unkeyed) records by appending a ``SealTrail`` record: the records up to
        the head stay unkeyed, every record from the seal record on is keyed."""
        if head.sequence == 0:
            seal = head_seal(self._keys, sequence=0, hash=GENESIS_HASH, keyed_from=1)
            uow.trail.seal_head(hash=GENESIS_HASH, keyed_from=1, seal=seal)
            return TrailHead(0, GENESIS_HASH, 1, seal)
        _log.info("sealing the trail's chain head (found unsealed at record %d)",
                  head.sequence)
        boundary = TrailHead(head.sequence, head.hash, head.sequence + 1, None)
        _record, sealed = self._link(uow, boundary, {
            "access_key_id": SEAL_ACCESS_KEY, "role": None, "source_ip": "local",
            "service": "bastion", "operation": SEAL_OPERATION,
            "parameters": canonical_json({"unsealedSequence": head.sequence,
                                          "unsealedHash": head.hash,
                                          "keyedFrom": head.sequence + 1}),
            "outcome": "allowed", "error_code": None, "http_status": 200,
        })
        return sealed

    def _link(self, uow: UnitOfWork, head: TrailHead,
              fields: Mapping[str, Any]) -> tuple[TrailRecord, TrailHead]:
        keyed_from = head.sequence + 1 if head.keyed_from is None else head.keyed_from
        time = truncate_to_millisecond(self._clock.now().astimezone(UTC))
        sequence = head.sequence + 1
        digest = compute_hash(sequence=sequence, time=time, previous_hash=head.hash,
                              keys=self._keys, **fields)
        record = TrailRecord(sequence=sequence, time=time, previous_hash=head.hash,
                             hash=digest, format=KEYED_FORMAT, **fields)
        seal = head_seal(self._keys, sequence=sequence, hash=digest, keyed_from=keyed_from)
        uow.trail.append(_to_row(record), keyed_from=keyed_from, seal=seal)
        return record, TrailHead(sequence, digest, keyed_from, seal)

    # -- reading ----------------------------------------------------------------------

    def verify(self, *, anchors: Mapping[int, str] | None = None) -> VerifyResult:
        """Verify the whole chain; see :func:`bastion.trail.verify`."""
        return verify(self._store, self._keys, anchors=anchors)

    def recent(self, limit: int) -> list[TrailRecord]:
        """The ``limit`` newest records up to the chain head, oldest first (the console's
        trail page). Read as stored: :meth:`verify` says whether they are intact.

        :raises ValueError: ``limit`` < 1.
        :raises bastion.store.StoreError: the database failed.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._store.transaction(readonly=True) as uow:
            head = uow.trail.head()
            if head is None or head.sequence == 0:
                return []
            rows = uow.trail.records(after_sequence=max(0, head.sequence - limit),
                                     up_to_sequence=head.sequence, limit=limit)
        keyed_from = head.sequence + 1 if head.keyed_from is None else head.keyed_from
        return [_from_row(row, keyed_from) for row in rows]

    def export(self, since: datetime | None = None,
               until: datetime | None = None) -> Iterator[dict[str, Any]]:
        """The records with ``since <= time < until``, in sequence order, in their
        exported form (:meth:`TrailRecord.to_json`), read in batches.

        :raises ValueError: ``since`` or ``until`` is naive.
        """
        return export(self._store, since, until)


class ChangeRecord:
    """The record of one call, joined to the writing transactions of its change
    (:meth:`Trail.record_with_change`): appended in the first, nothing in the others.
    Used by one thread (the store calls it only from the thread of the block)."""

    __slots__ = ("_appending", "_committed", "_fields", "_trail")

    def __init__(self, trail: Trail, fields: Mapping[str, Any]) -> None:
        self._trail = trail
        self._fields = fields
        self._appending = False
        self._committed = False

    def __repr__(self) -> str:
        return (f"<ChangeRecord {self._fields['service']}:{self._fields['operation']} "
                f"committed={self._committed}>")

    @property
    def committed(self) -> bool:
        """Whether the record has committed, with the first change of the block."""
        return self._committed

    def before_commit(self, uow: UnitOfWork) -> None:
        """Append the record in ``uow``, unless it has committed already.

        :raises TrailIntegrityError: the chain head is missing or its seal does not match.
        :raises TrailError: the head moved although this transaction had locked it.
        """
        self._appending = False
        if self._committed:
            return
        try:
            self._trail._append_in(uow, self._fields)
        except ConflictError as error:
            # Not a ConflictError any more: the change's own code must not take it for
            # one of its constraints (a name taken, say) and answer the caller so.
            _log.error("the trail's chain head moved under a locked append: %s", error)
            raise TrailError(f"the trail's chain head moved under a locked append: "
                             f"{error}") from error
        self._appending = True

    def after_commit(self) -> None:
        """The transaction committed: with the record, if it was appended there."""
        if self._appending:
            self._appending = False
            self._committed = True


def _fields(*, caller: CallerLike | None, access_key_id: str, source_ip: str, service: str,
            operation: str, parameters: Mapping[str, object], outcome: str,
            error_code: str | None, http_status: int) -> dict[str, Any]:
    """A record's fields, checked, redacted and cut to their columns.

    :raises TypeError: a field has the wrong type.
    """
    for name, text in (("access_key_id", access_key_id), ("source_ip", source_ip),
                       ("service", service), ("operation", operation),
                       ("outcome", outcome)):
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a str, not {type(text).__name__}")
    if error_code is not None and not isinstance(error_code, str):
        raise TypeError(f"error_code must be a str or None, not {type(error_code).__name__}")
    if isinstance(http_status, bool) or not isinstance(http_status, int):
        raise TypeError(f"http_status must be an int, not {type(http_status).__name__}")
    return {
        "access_key_id": _clean(access_key_id, "access_key_id"),
        "role": None if caller is None else _clean(_role_name(caller.role), "role"),
        "source_ip": _clean(source_ip, "source_ip"),
        "service": _clean(service, "service"),
        "operation": _clean(operation, "operation"),
        "parameters": canonical_json(redact(service, operation, parameters)),
        "outcome": _clean(outcome, "outcome"),
        "error_code": None if error_code is None else _clean(error_code, "error_code"),
        "http_status": http_status,
    }


def verify(store: Store, keys: TrailKeys | None, *,
           anchors: Mapping[int, str] | None = None) -> VerifyResult:
    """Verify the trail in ``store``: the sealed chain head, then every record from 1 to
    the head, in sequence order, links and keyed boundary (see :mod:`._verify`), then that
    the records end where the head says. Records appended while this runs (after the head
    was read) are not checked.

    :param keys: the installation's trail keys; ``None`` when the master key is not
        available, which is itself a failure (:attr:`Problem.KEY_UNAVAILABLE`).
    :param anchors: ``{sequence: hash}`` noted from an earlier verification.
    :raises bastion.store.StoreError: the database failed.
    """
    if keys is None:
        checker = ChainChecker(keys=None, anchors=anchors)
        checker.fail(None, Problem.KEY_UNAVAILABLE, "the trail keys are unavailable (no "
                     "master key): the links and the head seal cannot be checked")
        return checker.result()
    with store.transaction(readonly=True) as uow:
        head = uow.trail.head()
        any_record = uow.trail.records(limit=1)
    if head is None:
        checker = ChainChecker(keys=keys, anchors=anchors)
        left = ("records remain without it" if any_record
                else "and no record remains: the trail was deleted")
        checker.fail(None, Problem.HEAD_MISSING, f"the chain head (trail_head) is missing, {left}")
        return checker.result()
    keyed_from = head.sequence + 1 if head.keyed_from is None else head.keyed_from
    checker = ChainChecker(keys=keys, keyed_from=keyed_from, anchors=anchors)
    if head.seal is None:
        checker.fail(None, Problem.HEAD_NOT_SEALED, f"the chain head (at record "
                     f"{head.sequence}) is not sealed. A trail migrated from an older "
                     "Bastion is sealed by the first start or trail write after the "
                     "upgrade; if one has happened since, the head was replaced")
        return checker.result()
    expected = head_seal(keys, sequence=head.sequence, hash=head.hash, keyed_from=keyed_from)
    if not same_digest(expected, head.seal):
        checker.fail(None, Problem.HEAD_SEAL_INVALID, f"the chain head's seal does not match "
                     f"(it claims record {head.sequence}): the head was edited or replaced, "
                     "or it was sealed under another master key")
        return checker.result()
    after = 0
    while checker.ok:
        with store.transaction(readonly=True) as uow:
            rows = uow.trail.records(after_sequence=after, up_to_sequence=head.sequence,
                                     limit=_BATCH)
        if not rows:
            break
        for row in rows:
            if not checker.check(_from_row(row, keyed_from)):
                break
        after = rows[-1].sequence
    if not checker.ok:
        return checker.result()
    if checker.last_sequence < head.sequence:
        if checker.last_sequence == 0:
            detail = f": the sealed head says {head.sequence} records, none remain"
        else:
            detail = (f" after record {checker.last_sequence}: the sealed head says "
                      f"{head.sequence} records")
        checker.fail(checker.last_sequence + 1, Problem.TRUNCATED,
                     f"the trail is truncated{detail}")
    elif not same_digest(checker.last_hash, head.hash):
        checker.fail(head.sequence, Problem.LINK_MISMATCH, f"record {head.sequence} is not "
                     "the record the sealed head names")
    else:
        _check_nothing_beyond(store, head, checker)
    return checker.result()


def _check_nothing_beyond(store: Store, head: TrailHead, checker: ChainChecker) -> None:
    """A record after the head is legitimate only if a writer has moved the head since."""
    with store.transaction(readonly=True) as uow:
        stray = uow.trail.records(after_sequence=head.sequence, limit=1)
    if not stray:
        return
    with store.transaction(readonly=True) as uow:
        now = uow.trail.head()
    if now is None or now.sequence < stray[0].sequence:
        checker.fail(stray[0].sequence, Problem.BEYOND_HEAD, f"record {stray[0].sequence} "
                     f"lies beyond the sealed head (record {head.sequence}): it was added "
                     "without the key")


def export(store: Store, since: datetime | None = None,
           until: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The records of ``store`` with ``since <= time < until`` in exported form.

    :raises ValueError: ``since`` or ``until`` is naive.
    """
    for bound in (since, until):
        if bound is not None and bound.utcoffset() is None:
            raise ValueError("since and until must be timezone-aware")
    return _export(store, since, until)


def _export(store: Store, since: datetime | None,
            until: datetime | None) -> Iterator[dict[str, Any]]:
    with store.transaction(readonly=True) as uow:
        head = uow.trail.head()
    keyed_from = 1 if head is None or head.keyed_from is None else head.keyed_from
    after = 0
    while True:
        with store.transaction(readonly=True) as uow:
            rows = uow.trail.records(after_sequence=after, since=since, until=until,
                                     limit=_BATCH)
        for row in rows:
            yield _from_row(row, keyed_from).to_json()
        if len(rows) < _BATCH:
            return
        after = rows[-1].sequence


def _role_name(role: object) -> str:
    value = role.value if isinstance(role, Enum) else role
    if not isinstance(value, str):
        raise TypeError(f"caller.role must be a str or str enum, not {type(value).__name__}")
    return value


def _clean(text: str, column: str) -> str:
    """Cut ``text`` to its column and drop NULs (PostgreSQL text cannot hold them)."""
    return text.replace("\x00", "\ufffd")[: _WIDTHS[column]]


def _to_row(record: TrailRecord) -> TrailRecordRow:
    return TrailRecordRow(
        sequence=record.sequence, time=record.time, access_key_id=record.access_key_id,
        role=record.role, source_ip=record.source_ip, service=record.service,
        operation=record.operation, parameters=record.parameters, outcome=record.outcome,
        error_code=record.error_code, http_status=record.http_status,
        previous_hash=record.previous_hash, hash=record.hash,
    )


def _from_row(row: TrailRecordRow, keyed_from: int) -> TrailRecord:
    """The record of ``row``; its format follows from the head's keyed boundary."""
    return TrailRecord(
        sequence=row.sequence, time=row.time, access_key_id=row.access_key_id,
        role=row.role, source_ip=row.source_ip, service=row.service,
        operation=row.operation, parameters=row.parameters, outcome=row.outcome,
        error_code=row.error_code, http_status=row.http_status,
        previous_hash=row.previous_hash, hash=row.hash,
        format=KEYED_FORMAT if row.sequence >= keyed_from else UNKEYED_FORMAT,
    )
