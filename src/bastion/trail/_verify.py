"""Checking a chain of trail records.

Theory of operation: :func:`verify_chain` walks records in the order given and stops at
the first one that breaks the chain, naming its sequence number:

* **missing** — the sequence is not the previous one plus one (the first record must be
  1 unless a starting point is given): a record was deleted, or rows were renumbered;
* **altered** — the stored hash is not the hash of the record's fields: a field was
  edited, or two records swapped places (the sequence is part of the hash);
* **unlinked** — ``previous_hash`` is not the previous record's hash: a record was
  replaced by one whose hash was recomputed, or records were spliced;
* **anchor mismatch** — a record whose hash the operator noted earlier
  (``anchors={sequence: hash}``) now has another one: the chain was rewritten from that
  point on, hashes and all.

:func:`bastion.trail.verify` applies it to the store and also compares the end of the
chain with the *chain head* the writers maintain, so a deleted last record is noticed.
What plain hashes cannot notice is a complete rewrite by someone with write access to
the database; anchors (a hash written down elsewhere, e.g. from ``bastion trail verify``
output) are the defence against that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._chain import GENESIS_HASH, TrailRecord, expected_hash


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict of a verification.

    :ivar ok: the chain is intact.
    :ivar checked: how many records were checked before the verdict.
    :ivar first_broken_sequence: the first record that breaks the chain (for a missing
        record, the sequence number that is missing); ``None`` when intact, or when the
        problem is not one record's (a missing chain head).
    :ivar reason: what is wrong; ``None`` when intact.
    :ivar last_sequence: the last record checked and found intact (0 for none).
    :ivar last_hash: its hash (the genesis hash for none): note it down as an anchor.
    """

    ok: bool
    checked: int
    first_broken_sequence: int | None
    reason: str | None
    last_sequence: int
    last_hash: str


class ChainChecker:
    """Checks records one at a time (so a store can be streamed in batches).

    :param start_sequence: the sequence of the record before the first one given.
    :param start_hash: that record's hash (:data:`GENESIS_HASH` for the start of the chain).
    :param anchors: ``{sequence: hash}`` noted earlier.
    """

    __slots__ = ("anchors", "broken", "checked", "last_hash", "last_sequence", "reason")

    def __init__(self, *, start_sequence: int = 0, start_hash: str = GENESIS_HASH,
                 anchors: Mapping[int, str] | None = None) -> None:
        self.anchors = dict(anchors or {})
        self.last_sequence = start_sequence
        self.last_hash = start_hash
        self.checked = 0
        self.broken: int | None = None
        self.reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def check(self, record: TrailRecord) -> bool:
        """Check the next record; ``False`` (and the verdict recorded) once broken."""
        if not self.ok:
            return False
        expected = self.last_sequence + 1
        if record.sequence != expected:
            if record.sequence > expected:
                detail = (f"record {expected} is missing (the next record is "
                          f"{record.sequence})")
            else:
                detail = (f"record {record.sequence} is out of order (expected {expected})")
            return self._fail(expected, detail)
        if expected_hash(record) != record.hash:
            return self._fail(record.sequence, f"record {record.sequence} does not match its "
                              "hash: it was edited, or moved from another position")
        if record.previous_hash != self.last_hash:
            return self._fail(record.sequence, f"record {record.sequence} does not link to "
                              f"record {self.last_sequence}: a record was replaced or "
                              "removed and the hashes recomputed")
        anchor = self.anchors.get(record.sequence)
        if anchor is not None and anchor.lower() != record.hash:
            return self._fail(record.sequence, f"record {record.sequence} has hash "
                              f"{record.hash}, not the anchored {anchor.lower()}: the chain "
                              "was rewritten")
        self.checked += 1
        self.last_sequence = record.sequence
        self.last_hash = record.hash
        return True

    def fail(self, sequence: int | None, reason: str) -> None:
        """Record a verdict found outside the records themselves (e.g. the head)."""
        if self.ok:
            self._fail(sequence, reason)

    def result(self) -> VerifyResult:
        if self.ok:
            unseen = sorted(seq for seq in self.anchors if seq > self.last_sequence)
            if unseen:
                self._fail(unseen[0], f"anchored record {unseen[0]} is missing: the trail "
                           f"ends at record {self.last_sequence}")
        return VerifyResult(self.ok, self.checked, self.broken, self.reason,
                            self.last_sequence, self.last_hash)

    def _fail(self, sequence: int | None, reason: str) -> bool:
        self.broken = sequence
        self.reason = reason
        return False


def verify_chain(records: Iterable[TrailRecord], *, start_sequence: int = 0,
                 start_hash: str = GENESIS_HASH,
                 anchors: Mapping[int, str] | None = None) -> VerifyResult:
    """Verify ``records`` (in sequence order) as one unbroken stretch of the chain.

    :param start_sequence: the sequence of the record *before* the first given (0 to
        start at the beginning of the chain).
    :param start_hash: that record's hash (the genesis hash at the beginning).
    :param anchors: ``{sequence: hash}`` that must still hold.
    """
    checker = ChainChecker(start_sequence=start_sequence, start_hash=start_hash,
                           anchors=anchors)
    for record in records:
        if not checker.check(record):
            break
    return checker.result()
