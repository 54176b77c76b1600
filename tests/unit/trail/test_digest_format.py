"""The signed digest document: its encoding, its signature, what it hashes."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.trail import (
    GENESIS_HASH,
    DigestFormatError,
    TrailKeys,
    TrailRecord,
    compute_hash,
    load_public_key,
    public_key_pem,
    read_digest,
    record_hash,
)
from bastion.trail._digest import (
    RECORD_HASH_PREFIX,
    SignedDigest,
    build_digest,
    file_name,
    looks_like_digest_name,
    public_key_fingerprint,
    sign_digest,
)

KEYS = TrailKeys(b"c" * 32, b"h" * 32)
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
FINGERPRINT = public_key_fingerprint(SIGNING_KEY.public_key())


def chain(count: int, *, start: int = 1, previous: str = GENESIS_HASH) -> list[TrailRecord]:
    """``count`` keyed records linked from record ``start - 1`` (link ``previous``)."""
    records = []
    for sequence in range(start, start + count):
        fields: dict[str, Any] = {
            "sequence": sequence, "time": START + timedelta(seconds=sequence),
            "access_key_id": "AKIAEXAMPLE", "role": "admin", "source_ip": "10.0.0.1",
            "service": "iot", "operation": "CreateThing",
            "parameters": json.dumps({"thingName": f"t{sequence}"}, separators=(",", ":")),
            "outcome": "allowed", "error_code": None, "http_status": 200,
            "previous_hash": previous}
        link = compute_hash(keys=KEYS, **fields)
        records.append(TrailRecord(hash=link, format=2, **fields))
        previous = link
    return records


def signed(records: list[TrailRecord], number: int = 1, after: int = 0,
           after_hash: str = GENESIS_HASH) -> SignedDigest:
    digest = build_digest(number=number, node="node-1", start_time=START,
                          end_time=START + timedelta(hours=1), previous=None,
                          records=records, after_sequence=after, after_hash=after_hash,
                          fingerprint=FINGERPRINT)
    return sign_digest(digest, SIGNING_KEY)


def test_round_trip_and_fields() -> None:
    records = chain(3)
    one = signed(records)
    read = read_digest(one.data, SIGNING_KEY.public_key())
    assert read == one
    body = json.loads(one.data)["digest"]
    assert body["firstSequence"] == 1 and body["lastSequence"] == 3
    assert body["recordCount"] == 3
    assert body["previousRecordHash"] == GENESIS_HASH
    assert body["lastRecordHash"] == records[-1].hash
    assert body["recordHashes"] == [record_hash(r).hex()[:RECORD_HASH_PREFIX] for r in records]
    assert body["signatureAlgorithm"] == "Ed25519"
    assert body["previousDigestSignature"] is None
    assert one.data.endswith(b"}\n") and one.data.count(b"\n") == 1
    assert one.name == "trail-digest-00000001_0000000001-0000000003_20260301T130000Z.json"
    assert looks_like_digest_name(one.name)


def test_an_empty_segment_names_the_record_before_it() -> None:
    records = chain(2)
    empty = signed([], number=2, after=2, after_hash=records[-1].hash)
    assert empty.digest.record_count == 0
    assert empty.digest.first_sequence == 3 and empty.digest.last_sequence == 2
    assert empty.digest.last_record_hash == records[-1].hash
    assert "no records, after record 2" in empty.digest.describe()
    assert read_digest(empty.data, SIGNING_KEY.public_key()) == empty


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_byte_changed_is_refused(data: st.DataObject) -> None:
    one = signed(chain(2))
    index = data.draw(st.integers(0, len(one.data) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != one.data[index]))
    edited = one.data[:index] + bytes([value]) + one.data[index + 1:]
    with pytest.raises(DigestFormatError):
        read_digest(edited, SIGNING_KEY.public_key())


def test_a_digest_re_encoded_or_re_signed_by_another_key_is_refused() -> None:
    one = signed(chain(1))
    pretty = json.dumps(json.loads(one.data), indent=1).encode() + b"\n"
    with pytest.raises(DigestFormatError, match="canonical"):
        read_digest(pretty, SIGNING_KEY.public_key())
    other = Ed25519PrivateKey.generate()
    with pytest.raises(DigestFormatError, match="another key"):
        read_digest(one.data, other.public_key())
    forged = dataclasses.replace(one.digest,
                                 public_key_fingerprint=public_key_fingerprint(
                                     other.public_key()))
    with pytest.raises(DigestFormatError, match="another key"):
        read_digest(sign_digest(forged, other).data, SIGNING_KEY.public_key())
    with pytest.raises(ValueError, match="another key"):
        sign_digest(one.digest, other)


@pytest.mark.parametrize("field", ["time", "access_key_id", "role", "source_ip", "service",
                                   "operation", "parameters", "outcome", "error_code",
                                   "http_status", "previous_hash", "hash", "format"])
def test_the_record_hash_covers_every_field(field: str) -> None:
    record = chain(1)[0]
    other = {"time": record.time + timedelta(milliseconds=1), "role": "auditor",
             "error_code": "X", "http_status": 500, "format": 1,
             "parameters": "{}", "previous_hash": "1" * 64, "hash": "2" * 64}
    changed = dataclasses.replace(record, **{field: other.get(field, "changed")})
    assert record_hash(changed) != record_hash(record)


def test_build_refuses_records_out_of_order() -> None:
    records = chain(3)
    with pytest.raises(ValueError, match="record 3 found where 2"):
        signed([records[0], records[2]])
    with pytest.raises(ValueError, match="record 1 found where 2"):
        signed(records, after=1)


def test_file_names_sort_in_chain_order() -> None:
    names = [file_name(n, n * 10, n * 10 + 9, START + timedelta(hours=n)) for n in
             (1, 2, 10, 100)]
    assert sorted(names) == names
    assert not looks_like_digest_name("trail-digest-1_2-3_x.json")


def test_the_public_key_pem_round_trips_and_other_keys_are_refused() -> None:
    pem = public_key_pem(SIGNING_KEY.public_key())
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_key_fingerprint(load_public_key(pem)) == FINGERPRINT
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    ec_pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="not an Ed25519"):
        load_public_key(ec_pem)
