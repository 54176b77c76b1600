"""Making and delivering the trail's signed digests.

Theory of operation of :class:`TrailDigester`: a round (:meth:`TrailDigester.round`)
first makes the digests that are due, then delivers what each sink lacks.

* **Making** — one transaction reads the newest digest (checking its own signature: a
  digest edited in the database is never chained to), the sealed trail head, and the
  records after the newest digest's last sequence up to the head (at most
  :data:`MAX_RECORDS`; a longer backlog makes several digests in a row). The records are
  checked with the chain key first (:class:`~._verify.ChainChecker`): a broken chain is
  never signed (the round fails, logged, and ``bastion trail verify`` says where). The
  digest is inserted as the next number; should another node have inserted it first,
  the primary key refuses ours and theirs stands (no fork of the digest chain). A digest
  is due ``interval`` after the previous one ended (at once when there is none), even
  when no record was added (an empty digest proves that nothing was); ``force`` (a clean
  shutdown) makes one now if records were added.
* **Delivering** — each sink has a cursor in the store, the last digest number it holds.
  The digests after it are sent in order; the first failure stops that sink for this
  round (logged) and the next round starts again from there, so a sink never has a
  hole and nothing is lost: the digests wait in the store. Sinks are independent.

:class:`TrailDigestKeeper` runs rounds in ``bastion serve`` and a last one on a clean
stop (it stops after the API, so the last calls are in it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.clock import Clock, SystemClock
from bastion.lifecycle import Component, run_in_rounds
from bastion.store import ConflictError, Store, TrailDigestRow, UnitOfWork

from ._chain import GENESIS_HASH, TrailRecord
from ._digest import (
    DigestFormatError,
    SignedDigest,
    build_digest,
    public_key_fingerprint,
    read_digest,
    sign_digest,
)
from ._digest_sinks import DigestDeliveryError, DigestSink
from ._errors import TrailIntegrityError
from ._keys import TrailKeys
from ._trail import _from_row
from ._verify import ChainChecker

_log = logging.getLogger("bastion.trail")
MAX_RECORDS: Final = 50_000
"""The most records one digest covers; a longer backlog is digested in several."""
_BATCH: Final = 1000
_RETRY: Final = timedelta(seconds=60)


class TrailDigester:
    """Makes the trail's signed digests and delivers them to ``sinks``. Thread-safe:
    rounds run one at a time.

    :param key: the trail signing key (:func:`~._digest_key.signing_key`).
    :param keys: the trail keys, to check the chain before signing it.
    :param node: this node's id, written in each digest.
    :param interval: how long a digest's period is.
    :raises ValueError: ``interval`` is not positive.
    """

    def __init__(self, store: Store, key: Ed25519PrivateKey, keys: TrailKeys,
                 sinks: Sequence[DigestSink], *, node: str, interval: timedelta,
                 clock: Clock | None = None) -> None:
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        self._store = store
        self._key = key
        self._public = key.public_key()
        self._fingerprint = public_key_fingerprint(self._public)
        self._keys = keys
        self.sinks = tuple(sinks)
        self.node = node
        self.interval = interval
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TrailDigester {len(self.sinks)} sinks every {self.interval}>"

    def now(self) -> datetime:
        return self._clock.now()

    def round(self, *, force: bool = False) -> datetime:
        """Make the digests that are due (``force``: one now if records were added),
        then deliver what each sink lacks.

        :returns: when the next round should run (the next digest is due, or sooner to
            retry a delivery that failed).
        :raises TrailIntegrityError: the trail or the newest digest fails a check (no
            digest is made; deliveries still run).
        :raises bastion.store.StoreError: the database failed.
        """
        with self._lock:
            try:
                self._make(force=force)
            finally:
                delivered = self._deliver()
            due = self._next_due()
            if not delivered:
                due = min(due, self.now() + _RETRY)
            return due

    # -- making -----------------------------------------------------------------------

    def _next_due(self) -> datetime:
        with self._store.transaction(readonly=True) as uow:
            latest = uow.trail_digests.latest()
        return self.now() if latest is None else latest.end_time + self.interval

    def _make(self, *, force: bool) -> None:
        while True:
            try:
                with self._store.transaction() as uow:
                    made = self._make_in(uow, force=force)
            except ConflictError:
                _log.info("trail digests: another node made the digest first")
                return
            if made is None:
                return
            _log.info("trail digests: signed %s", made.digest.describe())
            if made.digest.record_count < MAX_RECORDS:
                return
            force = True  # a backlog: digest the rest at once

    def _make_in(self, uow: UnitOfWork, *, force: bool) -> SignedDigest | None:
        now = self.now()
        latest = uow.trail_digests.latest()
        previous = None if latest is None else self._own(latest)
        if previous is not None and not force and now < previous.digest.end_time + self.interval:
            return None
        head = uow.trail.head()
        if head is None or head.seal is None:
            raise TrailIntegrityError("the trail's chain head is missing or not sealed: no "
                                      "digest is signed (run `bastion trail verify`)")
        after = 0 if previous is None else previous.digest.last_sequence
        after_hash = GENESIS_HASH if previous is None else previous.digest.last_record_hash
        if head.sequence < after:
            raise TrailIntegrityError(f"the trail ends at record {head.sequence} but digest "
                                      f"{previous.digest.number if previous else 0} covers "
                                      f"record {after}: no digest is signed")
        up_to = min(head.sequence, after + MAX_RECORDS)
        if previous is not None and force and up_to == after and \
                now < previous.digest.end_time + self.interval:
            return None  # a forced digest of nothing: wait for its time
        records = self._records(uow, after, after_hash, up_to, head.keyed_from)
        start = (previous.digest.end_time if previous is not None
                 else records[0].time if records else now)
        digest = build_digest(
            number=1 if previous is None else previous.digest.number + 1, node=self.node,
            start_time=start, end_time=max(now, start), previous=previous, records=records,
            after_sequence=after, after_hash=after_hash, fingerprint=self._fingerprint)
        signed = sign_digest(digest, self._key)
        uow.trail_digests.add(TrailDigestRow(
            number=digest.number, name=signed.name, first_sequence=digest.first_sequence,
            last_sequence=digest.last_sequence, end_time=digest.end_time,
            document=signed.data.decode("ascii")))
        return signed

    def _own(self, row: TrailDigestRow) -> SignedDigest:
        try:
            signed = read_digest(row.document.encode("ascii", "replace"), self._public)
        except DigestFormatError as error:
            raise TrailIntegrityError(f"the stored digest {row.number} fails its check "
                                      f"({error}): no digest is chained to it") from None
        if signed.digest.number != row.number or signed.name != row.name:
            raise TrailIntegrityError(f"the stored digest {row.number} is not the one its "
                                      "row names: no digest is chained to it")
        return signed

    def _records(self, uow: UnitOfWork, after: int, after_hash: str, up_to: int,
                 keyed_from: int | None) -> list[TrailRecord]:
        boundary = keyed_from if keyed_from is not None else up_to + 1
        checker = ChainChecker(keys=self._keys, keyed_from=boundary, start_sequence=after,
                               start_hash=after_hash)
        records: list[TrailRecord] = []
        cursor = after
        while cursor < up_to:
            rows = uow.trail.records(after_sequence=cursor, up_to_sequence=up_to,
                                     limit=_BATCH)
            if not rows:
                break
            for row in rows:
                record = _from_row(row, boundary)
                if not checker.check(record):
                    raise TrailIntegrityError(f"the trail is broken at record "
                                              f"{checker.broken}: {checker.reason}; no "
                                              "digest is signed")
                records.append(record)
            cursor = rows[-1].sequence
        if cursor < up_to:
            raise TrailIntegrityError(f"the trail is truncated after record {cursor} (the "
                                      f"head says {up_to}): no digest is signed")
        return records

    # -- delivering -------------------------------------------------------------------

    def _deliver(self) -> bool:
        """Deliver what each sink lacks; whether every sink is up to date."""
        complete = True
        for sink in self.sinks:
            try:
                self._deliver_to(sink)
            except DigestDeliveryError as error:
                complete = False
                _log.error("trail digests: delivery to %s failed (%s); it is retried "
                           "next round", sink.id, error)
        return complete

    def _deliver_to(self, sink: DigestSink) -> None:
        with self._store.transaction(readonly=True) as uow:
            through = uow.trail_digests.delivered_through(sink.id)
        while True:
            with self._store.transaction(readonly=True) as uow:
                pending = uow.trail_digests.after(through, limit=50)
            if not pending:
                return
            for row in pending:
                sink.deliver(row.name, row.document.encode("ascii"))
                try:
                    with self._store.transaction() as uow:
                        uow.trail_digests.set_delivered_through(sink.id, row.number)
                except ConflictError:  # another node delivered to the same sink first
                    pass
                through = row.number


class TrailDigestKeeper(Component):
    """Runs :class:`TrailDigester` rounds in the background, and a last one (a digest
    of whatever is new, delivered) when Bastion stops cleanly.

    :param max_wait: the longest sleep between two rounds (a digest made by another
        node moves the next one's time).
    """

    name = "trail-digests"

    def __init__(self, digester: TrailDigester, *,
                 max_wait: timedelta = timedelta(minutes=5)) -> None:
        self.digester = digester
        self._max_wait = max_wait
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rounds = 0
        self.round_done = asyncio.Event()

    def poke(self) -> None:
        """Run a round now (thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        interval = min(self._max_wait, self.digester.interval).total_seconds()
        await run_in_rounds(self._round, self._wake, interval=interval,
                            now=self.digester.now, what="trail digest round",
                            after=self._counted)

    async def _round(self) -> datetime | None:
        return await asyncio.to_thread(self.digester.round)

    def _counted(self) -> None:
        self.rounds += 1
        self.round_done.set()

    async def stop(self) -> None:
        """The last round: digest what is new since the last digest, and deliver."""
        try:
            await asyncio.to_thread(self.digester.round, force=True)
        except Exception:  # noqa: BLE001 - logged; stopping goes on
            _log.exception("trail digests: the last digest before stopping failed")
