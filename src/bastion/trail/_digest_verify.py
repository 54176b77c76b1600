"""Verifying the trail offline against its signed digests, with the public key alone.

Theory of operation: :func:`verify_digests` stops at the first problem and names it
(:class:`DigestProblem`), the digest file and, where one is at fault, the record:

1. **Each digest** — its file must be the canonical encoding of a digest signed by the
   given key (*digest altered*, or *wrong key*); its name must be the one its content
   gives (*digest misnamed*: a file renamed, or two swapped).
2. **The digest chain** — numbers 1, 2, 3, ... (*digest missing*: a number absent,
   *digest duplicated*); each digest names its predecessor's file, SHA-256 and signature
   and continues its sequences, record link and time (*digest chain broken*).
3. **The records** — in sequence order, each one where a digest expects it (*record
   missing*: the sequence is absent or out of place), its hash equal to the digest's
   (*record altered*), each digest's segment hash and end link recomputed (*record
   altered*), and the trail not ending before the newest digest does (*truncated*).
   Records after the newest digest are reported as not yet covered (they are, once the
   next digest is made), not as a failure.

What the digests alone cannot show: that the newest digests were not deleted (the chain
ends where the newest remaining digest ends). The store knows how far it delivered each
sink (``known_newest``), and a digest is made at least every interval while Bastion runs,
so a newest digest much older than the interval is suspect; someone holding the private
key can of course forge anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._chain import GENESIS_HASH, TrailRecord, format_time
from ._digest import (
    RECORD_HASH_PREFIX,
    DigestFormatError,
    SignedDigest,
    read_digest,
    record_hash,
    segment_hash,
)


class DigestProblem(Enum):
    """What broke, in a few words (:attr:`DigestVerdict.problem`)."""

    NO_DIGESTS = "no digests"
    DIGEST_ALTERED = "digest altered"
    WRONG_KEY = "wrong key"
    DIGEST_MISNAMED = "digest misnamed"
    DIGEST_MISSING = "digest missing"
    DIGEST_DUPLICATED = "digest duplicated"
    CHAIN_BROKEN = "digest chain broken"
    RECORD_MISSING = "record missing"
    RECORD_ALTERED = "record altered"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class DigestVerdict:
    """The verdict of :func:`verify_digests`.

    :ivar ok: every digest and every record it covers are intact.
    :ivar digests: how many digests were found valid before the verdict.
    :ivar records: how many records were found to match before the verdict.
    :ivar problem: what broke (``None`` when intact).
    :ivar digest: the file of the digest at fault or covering the record at fault.
    :ivar sequence: the record at fault (``None`` when no one record is).
    :ivar reason: what is wrong, in a sentence.
    :ivar last_sequence: the last record the newest digest covers (0 for none).
    :ivar newest: the newest digest's description (``None`` when none was read).
    :ivar newest_end: when the newest digest ended.
    :ivar uncovered: records after the newest digest (not digested yet).
    """

    ok: bool
    digests: int
    records: int
    problem: DigestProblem | None = None
    digest: str | None = None
    sequence: int | None = None
    reason: str | None = None
    last_sequence: int = 0
    newest: str | None = None
    newest_end: datetime | None = None
    uncovered: int = 0


def verify_digests(files: Iterable[tuple[str, bytes]], key: Ed25519PublicKey,
                   records: Iterable[TrailRecord] | None, *,
                   known_newest: int | None = None) -> DigestVerdict:
    """Verify digest files, and the records they cover (see the module docstring).

    :param files: ``(file name, bytes)`` of every digest file found.
    :param key: the trail digest public key.
    :param records: the trail's records in the order found (the store's, or an
        export's), from record 1; ``None`` to check the digests only.
    :param known_newest: the number of a digest known to have been delivered there
        (from the store); a newest digest older than it means the newest were deleted.
    """
    chain: list[SignedDigest] = []
    for name, data in sorted(files):
        try:
            signed = read_digest(data, key)
        except DigestFormatError as error:
            problem = (DigestProblem.WRONG_KEY if "another key" in str(error)
                       else DigestProblem.DIGEST_ALTERED)
            return _fail(chain, len(chain), problem, name, None,
                         f"digest file {name}: {error}")
        if signed.name != name:
            return _fail(chain, len(chain), DigestProblem.DIGEST_MISNAMED, name, None,
                         f"digest file {name} holds {signed.digest.describe()}, whose "
                         f"file is named {signed.name}: it was renamed or moved")
        chain.append(signed)
    if not chain:
        return _fail(chain, 0, DigestProblem.NO_DIGESTS, None, None,
                     "no digest files were found")
    chain.sort(key=lambda one: one.digest.number)
    broken = _check_chain(chain)
    if broken is not None:
        return broken
    newest = chain[-1]
    if known_newest is not None and newest.digest.number < known_newest:
        first_missing = newest.digest.number + 1
        return _fail(chain, len(chain), DigestProblem.DIGEST_MISSING, newest.name,
                     newest.digest.last_sequence + 1,
                     f"digest {first_missing} is missing: the newest found is "
                     f"{newest.name} ({newest.digest.describe()}), but the store records "
                     f"that digests up to {known_newest} were delivered there; the records "
                     f"after {newest.digest.last_sequence} are unproven")
    if records is None:
        return _verdict(chain, len(chain), 0, 0)
    return _check_records(chain, iter(records))


def _check_chain(chain: Sequence[SignedDigest]) -> DigestVerdict | None:
    first = chain[0]
    if first.digest.number != 1:
        return _fail(chain, 0, DigestProblem.DIGEST_MISSING, first.name, None,
                     f"digests 1-{first.digest.number - 1} are missing: the oldest found "
                     f"is {first.digest.describe()}, {first.name}")
    if first.digest.previous_digest_file is not None or first.digest.first_sequence != 1 \
            or first.digest.previous_record_hash != GENESIS_HASH:
        return _fail(chain, 0, DigestProblem.CHAIN_BROKEN, first.name, None,
                     f"{first.name} claims to be digest 1 but does not start the chain")
    for index in range(1, len(chain)):
        before, this = chain[index - 1], chain[index]
        b, d = before.digest, this.digest
        if d.number == b.number:
            return _fail(chain, index, DigestProblem.DIGEST_DUPLICATED, this.name, None,
                         f"two files hold digest {d.number}: {before.name} and {this.name}")
        if d.number != b.number + 1:
            missing = (f"digest {b.number + 1} is" if d.number == b.number + 2
                       else f"digests {b.number + 1}-{d.number - 1} are")
            return _fail(chain, index, DigestProblem.DIGEST_MISSING, this.name,
                         b.last_sequence + 1,
                         f"{missing} missing: between {before.name} ({b.describe()}) and "
                         f"{this.name} ({d.describe()}); the records from "
                         f"{b.last_sequence + 1} to {d.first_sequence - 1} are unproven")
        link = _link_problem(before, this)
        if link is not None:
            return _fail(chain, index, DigestProblem.CHAIN_BROKEN, this.name, None,
                         f"{this.name} ({d.describe()}) does not follow {before.name}: "
                         f"{link}")
    return None


def _link_problem(before: SignedDigest, this: SignedDigest) -> str | None:
    b, d = before.digest, this.digest
    if d.previous_digest_file != before.name:
        return f"it names {d.previous_digest_file} as the previous digest"
    if d.previous_digest_hash != before.sha256:
        return "the previous digest's SHA-256 differs (it was replaced)"
    if d.previous_digest_signature != before.signature:
        return "the previous digest's signature differs (it was replaced)"
    if d.first_sequence != b.last_sequence + 1:
        return (f"it starts at record {d.first_sequence}, the previous ended at record "
                f"{b.last_sequence}")
    if d.previous_record_hash != b.last_record_hash:
        return "its previous record link is not the previous digest's last record link"
    if d.start_time != b.end_time:
        return (f"it starts at {format_time(d.start_time)}, the previous ended at "
                f"{format_time(b.end_time)}")
    return None


def _check_records(chain: Sequence[SignedDigest],
                   records: Iterator[TrailRecord]) -> DigestVerdict:
    checked = 0
    pending: TrailRecord | None = next(records, None)
    for index, signed in enumerate(chain):
        digest = signed.digest
        hashes: list[bytes] = []
        previous_link = digest.previous_record_hash
        for offset, sequence in enumerate(range(digest.first_sequence,
                                                digest.last_sequence + 1)):
            record = pending
            where = f"{signed.name} ({digest.describe()})"
            if record is None:
                last = sequence - 1
                return _fail(chain, index, DigestProblem.TRUNCATED, signed.name, sequence,
                             f"the trail ends after record {last}, but {where} covers "
                             f"records up to {digest.last_sequence}: record {sequence} and "
                             "after were deleted", checked)
            if record.sequence != sequence:
                found = (f"record {record.sequence} is in its place" if record.sequence
                         > sequence else f"record {record.sequence} appears again there")
                return _fail(chain, index, DigestProblem.RECORD_MISSING, signed.name,
                             sequence, f"record {sequence}, covered by {where}, is missing "
                             f"or out of order: {found}", checked)
            one = record_hash(record)
            if one.hex()[:RECORD_HASH_PREFIX] != digest.record_hashes[offset] or \
                    record.previous_hash != previous_link:
                return _fail(chain, index, DigestProblem.RECORD_ALTERED, signed.name,
                             sequence, f"record {sequence} is not the record {where} "
                             "covered: it was edited (or replaced) after it was digested",
                             checked)
            hashes.append(one)
            previous_link = record.hash
            checked += 1
            pending = next(records, None)
        if segment_hash(hashes) != digest.segment_hash or previous_link != \
                digest.last_record_hash:
            span = f"records {digest.first_sequence}-{digest.last_sequence}"
            return _fail(chain, index, DigestProblem.RECORD_ALTERED, signed.name, None,
                         f"{span} do not match the segment hash of {signed.name} "
                         f"({digest.describe()}): one of them was edited", checked)
    uncovered = 0
    while pending is not None:
        uncovered += 1
        pending = next(records, None)
    return _verdict(chain, len(chain), checked, uncovered)


def _verdict(chain: Sequence[SignedDigest], digests: int, records: int,
             uncovered: int) -> DigestVerdict:
    newest = chain[-1].digest if chain else None
    return DigestVerdict(
        ok=True, digests=digests, records=records,
        last_sequence=0 if newest is None else newest.last_sequence,
        newest=None if newest is None else f"{chain[-1].name} ({newest.describe()})",
        newest_end=None if newest is None else newest.end_time, uncovered=uncovered)


def _fail(chain: Sequence[SignedDigest], valid: int, problem: DigestProblem,
          digest: str | None, sequence: int | None, reason: str,
          records: int = 0) -> DigestVerdict:
    return DigestVerdict(ok=False, digests=valid, records=records,
                         problem=problem, digest=digest, sequence=sequence, reason=reason)
