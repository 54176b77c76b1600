"""The trail service: append a record for every control-plane call, verify, export.

Theory of operation of :meth:`Trail.record`: the parameters are redacted
(:func:`~bastion.trail.redact`) and encoded as canonical JSON, then one transaction locks
the chain head, numbers the record ``head + 1``, hashes it with the head's hash as
``previous_hash``, inserts it and moves the head. A lock inside the process keeps this
process's writers in line without waiting on the database; the head lock (PostgreSQL)
or the database write lock (SQLite) does the same between processes and nodes. Should a
writer still lose a race, the store's constraints refuse its record (no fork) and the
append is retried.

There is no method to update or delete a record, here or in the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Protocol

from bastion.clock import Clock, SystemClock
from bastion.store import ConflictError, Store, TrailRecordRow

from ._chain import (
    GENESIS_HASH,
    TrailRecord,
    canonical_json,
    compute_hash,
    truncate_to_millisecond,
)
from ._redact import redact
from ._verify import ChainChecker, VerifyResult

_log = logging.getLogger("bastion.trail")

_BATCH: Final = 1000
_APPEND_ATTEMPTS: Final = 5
# Column widths of trail_records (see bastion.store); longer values are cut.
_WIDTHS: Final = {"access_key_id": 128, "source_ip": 64, "service": 64, "operation": 128,
                  "outcome": 32, "error_code": 128, "role": 16}


class CallerLike(Protocol):
    """What the trail reads of the API's authenticated caller."""

    @property
    def role(self) -> str: ...


class Trail:
    """The hash-chained, append-only trail in ``store``. Implements the API's
    ``TrailSink`` protocol. Thread-safe; :meth:`record` blocks on the database.

    :param store: an open, migrated :class:`~bastion.store.Store`.
    :param clock: the current time; tests pass one they move by hand.
    :raises TypeError: ``store`` is not a Store.
    """

    __slots__ = ("_clock", "_lock", "_store")

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        self._store = store
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
        """Redact, chain and store one call.

        :param caller: the authenticated caller (its ``role`` is recorded); ``None`` when
            authentication failed.
        :param access_key_id: the key the request named, verified or not.
        :param parameters: the request parameters, secrets and all: they are redacted
            here, before anything is stored.
        :param outcome: ``allowed``, ``denied`` or ``error``.
        :returns: the stored record.
        :raises TypeError: a field has the wrong type.
        :raises bastion.store.StoreError: the database refused the record repeatedly.
        :raises sqlalchemy.exc.SQLAlchemyError: the database failed.
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
        fields: dict[str, Any] = {
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
        with self._lock:
            for attempt in range(_APPEND_ATTEMPTS):
                try:
                    return self._append_once(fields)
                except ConflictError:
                    if attempt == _APPEND_ATTEMPTS - 1:
                        raise
                    _log.info("trail append lost a race with another writer; retrying")
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_once(self, fields: Mapping[str, Any]) -> TrailRecord:
        with self._store.transaction() as uow:
            head = uow.trail.lock_head(GENESIS_HASH)
            time = truncate_to_millisecond(self._clock.now().astimezone(UTC))
            sequence = head.sequence + 1
            digest = compute_hash(sequence=sequence, time=time, previous_hash=head.hash,
                                  **fields)
            record = TrailRecord(sequence=sequence, time=time, previous_hash=head.hash,
                                 hash=digest, **fields)
            uow.trail.append(_to_row(record))
        return record

    # -- reading ----------------------------------------------------------------------

    def verify(self, *, anchors: Mapping[int, str] | None = None) -> VerifyResult:
        """Verify the whole chain; see :func:`bastion.trail.verify`."""
        return verify(self._store, anchors=anchors)

    def export(self, since: datetime | None = None,
               until: datetime | None = None) -> Iterator[dict[str, Any]]:
        """The records with ``since <= time < until``, in sequence order, in their
        exported form (:meth:`TrailRecord.to_json`), read in batches.

        :raises ValueError: ``since`` or ``until`` is naive.
        """
        return export(self._store, since, until)


def verify(store: Store, *, anchors: Mapping[int, str] | None = None) -> VerifyResult:
    """Verify the trail in ``store``: every record from 1 to the chain head, in sequence
    order, hashes and links (see :mod:`bastion.trail._verify`), then the head itself.
    Records appended while this runs (after the head was read) are not checked.

    :param anchors: ``{sequence: hash}`` noted from an earlier verification.
    """
    checker = ChainChecker(anchors=anchors)
    with store.transaction(readonly=True) as uow:
        head = uow.trail.head()
    if head is None:
        with store.transaction(readonly=True) as uow:
            stray = uow.trail.records(limit=1)
        if stray:
            checker.fail(None, "the chain head is missing although records exist")
        return checker.result()
    after = 0
    while checker.ok:
        with store.transaction(readonly=True) as uow:
            rows = uow.trail.records(after_sequence=after, up_to_sequence=head.sequence,
                                     limit=_BATCH)
        if not rows:
            break
        for row in rows:
            if not checker.check(_from_row(row)):
                break
        after = rows[-1].sequence
    if checker.ok and (checker.last_sequence, checker.last_hash) != (head.sequence, head.hash):
        if checker.last_sequence < head.sequence:
            checker.fail(checker.last_sequence + 1,
                         f"record {checker.last_sequence + 1} is missing: the chain head is "
                         f"at record {head.sequence}, the last record is "
                         f"{checker.last_sequence}")
        else:
            checker.fail(head.sequence, f"record {head.sequence} does not match the chain "
                         "head's hash")
    return checker.result()


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
    after = 0
    while True:
        with store.transaction(readonly=True) as uow:
            rows = uow.trail.records(after_sequence=after, since=since, until=until,
                                     limit=_BATCH)
        for row in rows:
            yield _from_row(row).to_json()
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


def _from_row(row: TrailRecordRow) -> TrailRecord:
    return TrailRecord(
        sequence=row.sequence, time=row.time, access_key_id=row.access_key_id,
        role=row.role, source_ip=row.source_ip, service=row.service,
        operation=row.operation, parameters=row.parameters, outcome=row.outcome,
        error_code=row.error_code, http_status=row.http_status,
        previous_hash=row.previous_hash, hash=row.hash,
    )
