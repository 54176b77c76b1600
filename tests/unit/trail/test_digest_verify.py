"""The offline verifier: digests and records against the public key alone, and every
kind of tampering named with its digest and record."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.trail import GENESIS_HASH, DigestProblem, SignedDigest, TrailRecord, verify_digests
from bastion.trail._digest import build_digest, public_key_fingerprint, sign_digest

from .test_digest_format import FINGERPRINT, SIGNING_KEY, START, chain

PUBLIC = SIGNING_KEY.public_key()


def digests_of(records: list[TrailRecord], sizes: list[int]) -> list[SignedDigest]:
    """A chain of digests over ``records`` cut into segments of ``sizes`` (0: empty)."""
    made: list[SignedDigest] = []
    after, after_hash, start = 0, GENESIS_HASH, START
    for number, size in enumerate(sizes, 1):
        segment = records[after:after + size]
        end = start + timedelta(hours=1)
        digest = build_digest(number=number, node="node-1", start_time=start, end_time=end,
                              previous=made[-1] if made else None, records=segment,
                              after_sequence=after, after_hash=after_hash,
                              fingerprint=FINGERPRINT)
        made.append(sign_digest(digest, SIGNING_KEY))
        after += size
        after_hash = segment[-1].hash if segment else after_hash
        start = end
    return made


def files(made: list[SignedDigest]) -> list[tuple[str, bytes]]:
    return [(one.name, one.data) for one in made]


RECORDS = chain(12)
DIGESTS = digests_of(RECORDS, [3, 0, 4, 5])


def test_an_intact_trail_verifies() -> None:
    verdict = verify_digests(files(DIGESTS), PUBLIC, RECORDS)
    assert verdict.ok, verdict.reason
    assert (verdict.digests, verdict.records, verdict.uncovered) == (4, 12, 0)
    assert verdict.last_sequence == 12 and verdict.newest_end == START + timedelta(hours=4)
    assert verify_digests(files(DIGESTS), PUBLIC, None).ok  # the digests alone


def test_records_after_the_newest_digest_are_counted_not_failed() -> None:
    more = RECORDS + chain(2, start=13, previous=RECORDS[-1].hash)
    verdict = verify_digests(files(DIGESTS), PUBLIC, more)
    assert verdict.ok and verdict.uncovered == 2


def test_no_digests() -> None:
    verdict = verify_digests([], PUBLIC, RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.NO_DIGESTS


@pytest.mark.parametrize(("drop", "expected"), [
    (1, "digest 2 is missing: between trail-digest-00000001"),
    (0, "digests 1-1 are missing: the oldest found is digest 2"),
], ids=["middle", "first"])
def test_a_deleted_digest_is_named(drop: int, expected: str) -> None:
    kept = [one for index, one in enumerate(DIGESTS) if index != drop]
    verdict = verify_digests(files(kept), PUBLIC, RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.DIGEST_MISSING
    assert expected in (verdict.reason or "")


def test_an_edited_digest_is_named() -> None:
    found = files(DIGESTS)
    name, data = found[2]
    found[2] = (name, data.replace(b'"recordCount":4', b'"recordCount":5'))
    verdict = verify_digests(found, PUBLIC, RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.DIGEST_ALTERED
    assert verdict.digest == name and "signature does not verify" in (verdict.reason or "")


def test_swapped_or_renamed_digests_are_named() -> None:
    found = files(DIGESTS)
    (a, data_a), (b, data_b) = found[1], found[2]
    found[1], found[2] = (a, data_b), (b, data_a)
    verdict = verify_digests(found, PUBLIC, RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.DIGEST_MISNAMED
    assert verdict.digest == a and "holds digest 3" in (verdict.reason or "")


def test_a_digest_from_another_key_is_named() -> None:
    other = Ed25519PrivateKey.generate()
    verdict = verify_digests(files(DIGESTS), other.public_key(), RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.WRONG_KEY


def test_a_digest_replaced_by_a_validly_signed_other_is_a_broken_chain() -> None:
    # Someone holding the key re-signs digest 3 of another history: the chain notices.
    other = chain(4, start=4, previous=RECORDS[2].hash)
    replacement = build_digest(number=3, node="node-1",
                               start_time=DIGESTS[1].digest.end_time,
                               end_time=DIGESTS[2].digest.end_time, previous=DIGESTS[0],
                               records=other[:0] + RECORDS[3:7], after_sequence=3,
                               after_hash=RECORDS[2].hash, fingerprint=FINGERPRINT)
    found = files(DIGESTS)
    forged = sign_digest(replacement, SIGNING_KEY)
    found[2] = (forged.name, forged.data)
    verdict = verify_digests(found, PUBLIC, RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.CHAIN_BROKEN
    assert "does not follow" in (verdict.reason or "")


def test_a_duplicated_digest_is_named() -> None:
    twin = dataclasses.replace(DIGESTS[1].digest, node="node-2")
    copy = sign_digest(twin, SIGNING_KEY)
    found = [*files(DIGESTS), (copy.name + ".json", copy.data)]
    verdict = verify_digests(found, PUBLIC, RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.DIGEST_MISNAMED
    renamed = dataclasses.replace(twin, end_time=twin.end_time + timedelta(seconds=1))
    copy = sign_digest(renamed, SIGNING_KEY)
    verdict = verify_digests([*files(DIGESTS), (copy.name, copy.data)], PUBLIC, RECORDS)
    assert not verdict.ok and verdict.problem is DigestProblem.DIGEST_DUPLICATED


def test_an_edited_record_is_named_with_its_digest() -> None:
    edited = list(RECORDS)
    edited[5] = dataclasses.replace(edited[5], source_ip="192.0.2.1")
    verdict = verify_digests(files(DIGESTS), PUBLIC, edited)
    assert not verdict.ok and verdict.problem is DigestProblem.RECORD_ALTERED
    assert verdict.sequence == 6 and verdict.digest == DIGESTS[2].name
    assert (verdict.digests, verdict.records) == (2, 5)  # digests 1-2 and records 1-5 hold


@pytest.mark.parametrize(("damage", "problem", "sequence"), [
    (lambda r: r[:4] + r[5:], DigestProblem.RECORD_MISSING, 5),
    (lambda r: r[:6] + [r[7], r[6]] + r[8:], DigestProblem.RECORD_MISSING, 7),
    (lambda r: r[:9], DigestProblem.TRUNCATED, 10),
    (lambda r: [], DigestProblem.TRUNCATED, 1),
    (lambda r: r[:3] + r[2:], DigestProblem.RECORD_MISSING, 4),
], ids=["deleted", "reordered", "truncated", "emptied", "duplicated"])
def test_missing_moved_or_truncated_records_are_named(damage, problem, sequence) -> None:  # type: ignore[no-untyped-def]
    verdict = verify_digests(files(DIGESTS), PUBLIC, damage(list(RECORDS)))
    assert not verdict.ok and verdict.problem is problem
    assert verdict.sequence == sequence, verdict.reason
    assert f"record {sequence}" in (verdict.reason or "")


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 4), min_size=1, max_size=6), data=st.data())
def test_any_split_verifies_and_any_single_edit_is_found(sizes: list[int],
                                                         data: st.DataObject) -> None:
    records = chain(sum(sizes))
    made = digests_of(records, sizes)
    assert verify_digests(files(made), PUBLIC, records).ok
    if records:
        index = data.draw(st.integers(0, len(records) - 1))
        edited = list(records)
        edited[index] = dataclasses.replace(edited[index], outcome="denied")
        verdict = verify_digests(files(made), PUBLIC, edited)
        assert not verdict.ok and verdict.sequence == index + 1
    drop = data.draw(st.integers(0, len(made) - 1))
    kept = [one for i, one in enumerate(made) if i != drop]
    if drop < len(made) - 1:  # only the newest can go unseen by the chain itself
        assert not verify_digests(files(kept), PUBLIC, records).ok
    fingerprint = public_key_fingerprint(PUBLIC)
    assert all(one.digest.public_key_fingerprint == fingerprint for one in made)


def test_the_newest_digest_deleted_is_seen_against_what_the_store_delivered() -> None:
    assert verify_digests(files(DIGESTS), PUBLIC, RECORDS, known_newest=4).ok
    without_newest = files(DIGESTS[:-1])
    unnoticed = verify_digests(without_newest, PUBLIC, RECORDS)
    assert unnoticed.ok and unnoticed.uncovered == 5  # the chain alone cannot tell
    verdict = verify_digests(without_newest, PUBLIC, RECORDS, known_newest=4)
    assert not verdict.ok and verdict.problem is DigestProblem.DIGEST_MISSING
    assert verdict.sequence == 8 and "digest 4 is missing" in (verdict.reason or "")
