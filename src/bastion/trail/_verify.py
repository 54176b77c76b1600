"""Checking a chain of trail records.

Theory of operation: :func:`verify_chain` walks records in the order given and stops at
the first one that breaks the chain, naming its sequence number and a :class:`Problem`:

* **gap** — the sequence is not the previous one plus one (the first record must be 1
  unless a starting point is given): a record was deleted, or rows were renumbered;
* **record altered** — the stored link is not the link of the record's fields: a field
  was edited, two records swapped places (the sequence is part of the link), a keyed
  record's link was recomputed without the chain key, or a record sits on the wrong side
  of the keyed boundary (an unkeyed record after a keyed one);
* **link mismatch** — ``previous_hash`` is not the previous record's link: a record was
  replaced or spliced in;
* **key unavailable** — a keyed record cannot be checked without the chain key;
* **anchor mismatch** — a record whose link the operator noted earlier
  (``anchors={sequence: hash}``) now has another one.

:func:`bastion.trail.verify` applies it to the store, first checking the sealed chain
head (**head missing**, **head not sealed**, **head seal invalid**), then the records up
to the head, then that they end where the head says (**truncated**) and that nothing was
added after it (**beyond head**). See :mod:`._head` for what the seal does and does not
prove.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from ._chain import GENESIS_HASH, KEYED_FORMAT, UNKEYED_FORMAT, TrailRecord, expected_hash
from ._keys import TrailKeys, same_digest


class Problem(Enum):
    """What broke, in one word (:attr:`VerifyResult.problem`)."""

    RECORD_ALTERED = "record altered"
    LINK_MISMATCH = "link mismatch"
    GAP = "gap"
    HEAD_MISSING = "head missing"
    HEAD_NOT_SEALED = "head not sealed"
    HEAD_SEAL_INVALID = "head seal invalid"
    TRUNCATED = "truncated"
    BEYOND_HEAD = "record beyond head"
    KEY_UNAVAILABLE = "key unavailable"
    ANCHOR_MISMATCH = "anchor mismatch"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict of a verification.

    :ivar ok: the chain is intact.
    :ivar checked: how many records were checked before the verdict.
    :ivar first_broken_sequence: the first record that breaks the chain (for a missing
        record, the sequence number that is missing); ``None`` when intact, or when the
        problem is not one record's (the chain head, the key).
    :ivar reason: what is wrong, in a sentence; ``None`` when intact.
    :ivar last_sequence: the last record checked and found intact (0 for none).
    :ivar last_hash: its link (the genesis hash for none): note it down as an anchor.
    :ivar problem: what is wrong, as a :class:`Problem`; ``None`` when intact.
    :ivar unkeyed: how many of the records checked predate the keyed trail (their links
        are plain SHA-256, so they are only as safe as the keyed records after them).
    """

    ok: bool
    checked: int
    first_broken_sequence: int | None
    reason: str | None
    last_sequence: int
    last_hash: str
    problem: Problem | None = None
    unkeyed: int = 0


class ChainChecker:
    """Checks records one at a time (so a store can be streamed in batches).

    :param keys: the installation's trail keys; ``None`` when unavailable (a keyed record
        then fails with :attr:`Problem.KEY_UNAVAILABLE`).
    :param keyed_from: the first sequence that must be keyed, from the sealed head;
        ``None`` to take each record's declared format (an export), refusing only an
        unkeyed record after a keyed one.
    :param start_sequence: the sequence of the record before the first one given.
    :param start_hash: that record's link (:data:`GENESIS_HASH` for the start of the chain).
    :param anchors: ``{sequence: hash}`` noted earlier.
    """

    __slots__ = ("anchors", "broken", "checked", "keyed_from", "keys", "last_hash",
                 "last_sequence", "problem", "reason", "seen_keyed", "unkeyed")

    def __init__(self, *, keys: TrailKeys | None, keyed_from: int | None = None,
                 start_sequence: int = 0, start_hash: str = GENESIS_HASH,
                 anchors: Mapping[int, str] | None = None) -> None:
        self.keys = keys
        self.keyed_from = keyed_from
        self.anchors = dict(anchors or {})
        self.last_sequence = start_sequence
        self.last_hash = start_hash
        self.checked = 0
        self.unkeyed = 0
        self.seen_keyed = False
        self.broken: int | None = None
        self.reason: str | None = None
        self.problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def check(self, record: TrailRecord) -> bool:
        """Check the next record; ``False`` (and the verdict recorded) once broken."""
        if not self.ok:
            return False
        expected = self.last_sequence + 1
        sequence = record.sequence
        if sequence != expected:
            if sequence > expected:
                detail = f"record {expected} is missing (the next record is {sequence})"
            else:
                detail = f"record {sequence} is out of order (expected {expected})"
            return self._fail(expected, Problem.GAP, detail)
        misplaced = self._misplaced(record)
        if misplaced is not None:
            return self._fail(sequence, Problem.RECORD_ALTERED, misplaced)
        if record.format == KEYED_FORMAT and self.keys is None:
            return self._fail(sequence, Problem.KEY_UNAVAILABLE, f"record {sequence} is keyed "
                              "and the chain key is unavailable (no master key)")
        if not same_digest(expected_hash(record, self.keys), record.hash):
            how = ("its link was not made with this installation's chain key, or it was "
                   "edited, or moved from another position" if record.format == KEYED_FORMAT
                   else "it was edited, or moved from another position")
            return self._fail(sequence, Problem.RECORD_ALTERED,
                              f"record {sequence} does not match its hash: {how}")
        if not same_digest(record.previous_hash, self.last_hash):
            return self._fail(sequence, Problem.LINK_MISMATCH, f"record {sequence} does not "
                              f"link to record {self.last_sequence}: a record was replaced "
                              "or removed and the links recomputed")
        anchor = self.anchors.get(sequence)
        if anchor is not None and not same_digest(anchor, record.hash):
            return self._fail(sequence, Problem.ANCHOR_MISMATCH, f"record {sequence} has "
                              f"hash {record.hash}, not the anchored {anchor.lower()}: the "
                              "chain was rewritten")
        self.checked += 1
        if record.format == UNKEYED_FORMAT:
            self.unkeyed += 1
        else:
            self.seen_keyed = True
        self.last_sequence = sequence
        self.last_hash = record.hash
        return True

    def fail(self, sequence: int | None, problem: Problem, reason: str) -> None:
        """Record a verdict found outside the records themselves (e.g. the head)."""
        if self.ok:
            self._fail(sequence, problem, reason)

    def result(self) -> VerifyResult:
        if self.ok:
            unseen = sorted(seq for seq in self.anchors if seq > self.last_sequence)
            if unseen:
                self._fail(unseen[0], Problem.ANCHOR_MISMATCH, f"anchored record {unseen[0]} "
                           f"is missing: the trail ends at record {self.last_sequence}")
        return VerifyResult(self.ok, self.checked, self.broken, self.reason,
                            self.last_sequence, self.last_hash, self.problem, self.unkeyed)

    def _misplaced(self, record: TrailRecord) -> str | None:
        sequence = record.sequence
        if record.format not in (UNKEYED_FORMAT, KEYED_FORMAT):
            return f"record {sequence} has the unknown format {record.format}"
        if self.keyed_from is not None:
            must_be_keyed = sequence >= self.keyed_from
            if must_be_keyed != (record.format == KEYED_FORMAT):
                side = "after" if must_be_keyed else "before"
                return (f"record {sequence} is {'un' if must_be_keyed else ''}keyed but "
                        f"lies {side} the keyed boundary (record {self.keyed_from})")
        elif self.seen_keyed and record.format == UNKEYED_FORMAT:
            return f"record {sequence} is unkeyed but follows keyed records"
        return None

    def _fail(self, sequence: int | None, problem: Problem, reason: str) -> bool:
        self.broken = sequence
        self.problem = problem
        self.reason = reason
        return False


def verify_chain(records: Iterable[TrailRecord], *, keys: TrailKeys | None,
                 start_sequence: int = 0, start_hash: str = GENESIS_HASH,
                 anchors: Mapping[int, str] | None = None) -> VerifyResult:
    """Verify ``records`` (in sequence order) as one unbroken stretch of the chain, each
    in the format it declares (an unkeyed record after a keyed one is refused).

    :param keys: the installation's trail keys; ``None`` when unavailable, which fails
        the first keyed record with :attr:`Problem.KEY_UNAVAILABLE`.
    :param start_sequence: the sequence of the record *before* the first given (0 to
        start at the beginning of the chain).
    :param start_hash: that record's link (the genesis hash at the beginning).
    :param anchors: ``{sequence: hash}`` that must still hold.
    """
    checker = ChainChecker(keys=keys, start_sequence=start_sequence, start_hash=start_hash,
                           anchors=anchors)
    for record in records:
        if not checker.check(record):
            break
    return checker.result()
