"""The Device Shadow service: get, update, delete and list shadows over the store.

Theory of operation
-------------------
Both doors call one :class:`ShadowService`: the MQTT reserved-topic handler
(``$aws/things/<thing>/shadow[/name/<shadow>]/get|update|delete``) and the ``iot-data``
REST operations. Requests arrive as the raw payload bytes the client sent; the service
reads and checks them (:mod:`._request`), and refusals raise :class:`ShadowError` with
the request's client token and a timestamp, ready for a ``/rejected`` topic or an HTTP
error.

**Update.** One transaction reads the shadow's row (locked), checks the request's
``version`` against the current one (409 ``Version conflict`` when it differs), merges
the request into the state (:func:`~._document.merge_state`), checks the result's size
(413), and writes it back with version + 1 as a compare-and-set on the version read. A
race lost to a concurrent writer is retried (unless the request named a version: then
it is a conflict). After the commit the :class:`ShadowUpdated` event — holding the
``/update/accepted``, ``/update/delta`` and ``/update/documents`` messages — goes to the
``publish`` sink, which sends them to MQTT subscribers whichever door the update used.

**Delete** keeps the row as a tombstone without state, so a shadow re-created within
:data:`TOMBSTONE_LIFETIME` (48 hours, as in AWS) continues the old version sequence;
after that it starts again at version 1. The delete's :class:`ShadowDeleted` event
carries ``/delete/accepted``.

**Thing existence.** As in AWS IoT, shadows are keyed by thing *name* and the thing does
not have to be in the registry ("we don't enforce a mapping between a thing's registry
name and its use of … shadow state"); deleting a thing does not delete its shadows.
Who may touch which shadow is decided by policies (MQTT) and API roles (REST).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from bastion.clock import Clock, SystemClock
from bastion.store import (
    ConflictError,
    InvalidPageTokenError,
    ShadowRow,
    Store,
)

from ..events import EventSink
from ._document import (
    EMPTY_STATE,
    ShadowState,
    delete_accepted,
    delta_message,
    documents_message,
    get_accepted,
    merge_state,
    update_accepted,
)
from ._errors import (
    InvalidShadowRequestError,
    ShadowError,
    ShadowNotFoundError,
    ShadowTooLargeError,
    ShadowVersionConflictError,
)
from ._model import NamedShadowPage, ShadowDeleted, ShadowReply, ShadowUpdated, encode_document
from ._request import (
    MAX_STATE_BYTES,
    TOO_LARGE,
    UpdateRequest,
    check_shadow_name,
    check_thing_name,
    parse_update_request,
    read_client_token,
)

CLASSIC: Final = ""  # the store's name of the classic shadow
TOMBSTONE_LIFETIME: Final = timedelta(hours=48)
DEFAULT_PAGE_SIZE: Final = 25
MAX_PAGE_SIZE: Final = 100
_ATTEMPTS: Final = 3

_log = logging.getLogger("bastion.shadow")
_T = TypeVar("_T")


class _LostRace(Exception):
    """A concurrent writer changed the row between our read and our write."""


class ShadowService:
    """Device shadows, classic and named.

    :param store: an open :class:`~bastion.store.Store`.
    :param publish: receives :class:`ShadowUpdated` / :class:`ShadowDeleted` after each
        committed change (from the calling thread).
    :param clock: the current time; tests pass one they move by hand.
    :raises TypeError: ``store`` is not a Store, or ``publish`` not callable.
    """

    __slots__ = ("_clock", "_publish", "_store")

    def __init__(self, store: Store, *, publish: EventSink | None = None,
                 clock: Clock | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if publish is not None and not callable(publish):
            raise TypeError("publish must be callable")
        self._store = store
        self._publish = publish
        self._clock: Clock = clock if clock is not None else SystemClock()

    # -- operations ---------------------------------------------------------------------

    def get(self, thing_name: str, shadow_name: str | None = None,
            payload: bytes = b"") -> ShadowReply:
        """GetThingShadow / ``…/get``: the whole shadow with its delta and metadata.

        :param payload: the request (empty, or ``{"clientToken": …}``).
        :raises ShadowNotFoundError: 404, no such shadow (or it was deleted).
        :raises InvalidShadowRequestError: 400, bad names or client token.
        """
        now = self._clock.now()
        try:
            token = read_client_token(payload)
            thing, key = self._key(thing_name, shadow_name)
            with self._store.transaction(readonly=True) as uow:
                row = uow.shadows.get(thing, key)
            if not _live(row):
                raise _not_found(thing_name, shadow_name)
            assert row is not None
            document = get_accepted(_decode(row), row.version, _seconds(now), token)
            return ShadowReply(encode_document(document))
        except ShadowError as error:
            raise _refusal(error, now, payload) from None

    def update(self, thing_name: str, shadow_name: str | None,
               payload: bytes) -> ShadowUpdated:
        """UpdateThingShadow / ``…/update``: merge the request into the shadow (creating
        it), and publish the change.

        :param payload: the request document (``{"state": …, "clientToken": …,
            "version": …}``) as sent.
        :returns: the change, whose ``accepted`` is the response document.
        :raises InvalidShadowRequestError: 400 (JSON, nodes, version, token, names, depth).
        :raises ShadowVersionConflictError: 409, ``version`` is not the current version.
        :raises ShadowTooLargeError: 413, the request or the resulting state is too large.
        :raises UnsupportedEncodingError: 415, the payload is not UTF-8.
        """
        now = self._clock.now()
        try:
            request = parse_update_request(payload)
            thing, key = self._key(thing_name, shadow_name)
            event = self._write(lambda: self._update_once(thing, key, shadow_name, request,
                                                          now),
                                request.version is not None)
        except ShadowError as error:
            raise _refusal(error, now, payload) from None
        self._announce(event)
        return event

    def delete(self, thing_name: str, shadow_name: str | None = None,
               payload: bytes = b"") -> ShadowDeleted:
        """DeleteThingShadow / ``…/delete``: delete the shadow (its version sequence is
        kept for :data:`TOMBSTONE_LIFETIME`), and publish the deletion.

        :returns: the deletion, whose ``accepted`` is the response document.
        :raises ShadowNotFoundError: 404, no such shadow.
        :raises InvalidShadowRequestError: 400, bad names or client token.
        """
        now = self._clock.now()
        try:
            token = read_client_token(payload)
            thing, key = self._key(thing_name, shadow_name)
            event = self._write(lambda: self._delete_once(thing, key, shadow_name, token, now),
                                False)
        except ShadowError as error:
            raise _refusal(error, now, payload) from None
        self._announce(event)
        return event

    def list_named_shadows(self, thing_name: str, *, page_size: int | None = None,
                           next_token: str | None = None) -> NamedShadowPage:
        """ListNamedShadowsForThing: the names of the thing's named shadows, in byte
        order (a thing without any has an empty list).

        :raises InvalidShadowRequestError: 400, bad thing name, page size (1-100) or token.
        """
        now = self._clock.now()
        check_thing_name(thing_name)
        limit = DEFAULT_PAGE_SIZE if page_size is None else page_size
        if isinstance(limit, bool) or not isinstance(limit, int) \
                or not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidShadowRequestError(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        try:
            with self._store.transaction(readonly=True) as uow:
                names, token = uow.shadows.list_named(thing_name, limit=limit,
                                                      token=next_token)
        except InvalidPageTokenError:
            raise InvalidShadowRequestError("Invalid nextToken") from None
        return NamedShadowPage(tuple(names), token, _seconds(now))

    def forget_old_tombstones(self) -> int:
        """Delete the rows of shadows deleted more than :data:`TOMBSTONE_LIFETIME` ago
        (housekeeping; they are already ignored); how many."""
        with self._store.transaction() as uow:
            return uow.shadows.delete_tombstones(
                deleted_before=self._clock.now() - TOMBSTONE_LIFETIME)

    # -- writing ------------------------------------------------------------------------

    def _write(self, attempt: Callable[[], _T], versioned: bool) -> _T:
        """Run one write transaction, again when a concurrent writer won the race —
        unless the request named a version, which the winner has just made stale."""
        for _ in range(_ATTEMPTS):
            try:
                return attempt()
            except (_LostRace, ConflictError):
                if versioned:
                    raise ShadowVersionConflictError("Version conflict") from None
        raise ShadowVersionConflictError("Version conflict")

    def _update_once(self, thing: str, key: str, shadow_name: str | None,
                     request: UpdateRequest, now: datetime) -> ShadowUpdated:
        timestamp = _seconds(now)
        token = request.client_token
        with self._store.transaction() as uow:
            row = uow.shadows.get(thing, key, for_update=True)
            live = _live(row)
            # A tombstone continues its version sequence until it expires.
            current = 0 if row is None or (row.deleted and _expired(row, now)) else row.version
            if request.version is not None and request.version != current:
                raise ShadowVersionConflictError("Version conflict", client_token=token)
            before = _decode(row) if live and row is not None else EMPTY_STATE
            after = merge_state(before, request.state, timestamp)
            if after.size > MAX_STATE_BYTES:
                raise ShadowTooLargeError(TOO_LARGE, client_token=token)
            version = current + 1
            state, metadata = _encode(after)
            written = ShadowRow(thing, key, version, state, metadata, None,
                                row.creation_date if live and row is not None else now, now)
            if row is None:
                uow.shadows.insert(written)
            elif not uow.shadows.replace(written, expected_version=row.version):
                raise _LostRace
        accepted = update_accepted(request.state, version, timestamp, token)
        delta = delta_message(after, version, timestamp, token)
        documents = documents_message((before, current) if live else None, after, version,
                                      timestamp, token)
        return ShadowUpdated(thing, shadow_name, version, encode_document(accepted),
                             None if delta is None else encode_document(delta),
                             encode_document(documents))

    def _delete_once(self, thing: str, key: str, shadow_name: str | None,
                     token: str | None, now: datetime) -> ShadowDeleted:
        with self._store.transaction() as uow:
            row = uow.shadows.get(thing, key, for_update=True)
            if row is None or not _live(row):
                raise _not_found(thing, shadow_name)
            tombstone = ShadowRow(thing, key, row.version, None, None, now, row.creation_date,
                                  now)
            if not uow.shadows.replace(tombstone, expected_version=row.version):
                raise _LostRace
        accepted = delete_accepted(row.version, _seconds(now), token)
        return ShadowDeleted(thing, shadow_name, row.version, encode_document(accepted))

    def _announce(self, event: object) -> None:
        if self._publish is None:
            return
        try:
            self._publish(event)
        except Exception:  # noqa: BLE001 - committed already; a sink must not undo it
            _log.exception("publishing %s failed", type(event).__name__)

    @staticmethod
    def _key(thing_name: str, shadow_name: str | None) -> tuple[str, str]:
        check_thing_name(thing_name)
        name = check_shadow_name(shadow_name)
        return thing_name, CLASSIC if name is None else name


# -- helpers --------------------------------------------------------------------------

def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _expired(row: ShadowRow, now: datetime) -> bool:
    return row.deleted_at is not None and now - row.deleted_at > TOMBSTONE_LIFETIME


def _live(row: ShadowRow | None) -> bool:
    return row is not None and not row.deleted


def _not_found(thing_name: str, shadow_name: str | None) -> ShadowNotFoundError:
    return ShadowNotFoundError(
        f"No shadow exists with name: '{thing_name if shadow_name is None else shadow_name}'")


def _refusal(error: ShadowError, now: datetime, payload: bytes) -> ShadowError:
    """``error`` completed with its timestamp and (when it could be read) the request's
    client token."""
    if error.timestamp is None:
        error.timestamp = _seconds(now)
    if error.client_token is None:
        try:
            error.client_token = read_client_token(payload)
        except ShadowError:
            pass
    return error


def _encode(state: ShadowState) -> tuple[str, str]:
    dump = json.dumps
    return (dump(state.state_document(), ensure_ascii=False, separators=(",", ":")),
            dump(state.metadata_document(), ensure_ascii=False, separators=(",", ":")))


def _decode(row: ShadowRow) -> ShadowState:
    state: dict[str, Any] = json.loads(row.state or "{}")
    metadata: dict[str, Any] = json.loads(row.state_metadata or "{}")
    return ShadowState(state.get("desired"), state.get("reported"),
                       metadata.get("desired"), metadata.get("reported"))
