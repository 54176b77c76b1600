"""Signed digests of the trail: the document, its file, its signature.

Theory of operation: every ``digest_interval_minutes`` (and when Bastion stops cleanly)
the records appended since the last digest — a *segment*, possibly empty — are digested
into a JSON document signed with the installation's trail signing key (Ed25519, see
:mod:`._digest_key`). The digests form a chain of their own, as CloudTrail's do: each
names the file, the SHA-256 and the signature of the one before it, and starts where it
ended (sequence and time). The public key alone then proves, offline, that

* each digest is the one Bastion signed (its signature; any byte changed breaks it);
* no digest is missing, reordered or replaced (numbers 1, 2, 3, ... without a gap, each
  linking to its predecessor's hash and signature; its file name repeats its number,
  sequence range and end time, so a renamed file is noticed too);
* the trail's records are those that were digested: the link of a record (``hash``) is
  an HMAC that only the master key can check, so the digest does not rely on it. It
  carries its own hash of each record instead (the *record hash*: SHA-256 of the
  canonical JSON of every field of the record, link and format included, see
  :func:`record_hash`), and the segment's hash: SHA-256 over the concatenated 32-byte
  record hashes, in sequence order. A record edited, deleted, added or moved after it
  was digested no longer matches. The per-record hashes are kept in the digest only as
  their first 16 hex digits (:data:`RECORD_HASH_PREFIX`), enough to name the record
  that differs; the full-strength proof is the segment hash.

The file is canonical JSON (sorted keys, compact, ASCII) of
``{"digest": {...}, "signature": "<hex>"}`` followed by one newline; a file that is not
exactly the canonical encoding of what it holds has been edited. The signature is
Ed25519 over ``b"bastion-trail-digest-v1\\n"`` followed by the canonical JSON of the
``digest`` object. Field names follow CloudTrail's digests where the meaning is the
same (``digestStartTime``, ``previousDigestSignature``, ...).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._chain import GENESIS_HASH, TrailRecord, canonical_json, format_time

DIGEST_VERSION: Final = 1
SIGNATURE_ALGORITHM: Final = "Ed25519"
HASH_ALGORITHM: Final = "SHA-256"
RECORD_HASH_PREFIX: Final = 16
"""Hex digits of each record hash kept in a digest (to name the record that differs)."""
_SIGNING_CONTEXT: Final = b"bastion-trail-digest-v1\n"
_NAME = re.compile(r"trail-digest-(\d{8,})_(\d{10,})-(\d{10,})_(\d{8}T\d{6}Z)\.json")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class DigestFormatError(ValueError):
    """A digest file is not a well-formed, canonical digest (it was edited or is not
    one); says what is wrong."""


@dataclass(frozen=True, slots=True)
class Digest:
    """The signed content of one digest file (the ``digest`` object).

    :ivar number: 1 for the first digest, then +1 per digest.
    :ivar node: the node that made it (``[cluster] node_id`` or the host name).
    :ivar start_time: when its period began (the previous digest's ``end_time``).
    :ivar end_time: when it was made.
    :ivar first_sequence: the first record it covers (previous ``last_sequence`` + 1).
    :ivar last_sequence: the last record it covers (``first_sequence - 1`` when empty).
    :ivar previous_record_hash: the link of record ``first_sequence - 1`` (the genesis
        hash before record 1).
    :ivar last_record_hash: the link of record ``last_sequence`` (the previous one when
        empty).
    :ivar segment_hash: SHA-256 over the records' hashes (see the module docstring).
    :ivar record_hashes: the first :data:`RECORD_HASH_PREFIX` hex digits of each
        record's hash, in sequence order.
    :ivar previous_digest_file: the previous digest's file name (``None`` for the first).
    :ivar previous_digest_hash: the SHA-256 of that file's bytes, hex.
    :ivar previous_digest_signature: that digest's signature, hex.
    :ivar public_key_fingerprint: SHA-256 of the raw signing public key, hex.
    """

    number: int
    node: str
    start_time: datetime
    end_time: datetime
    first_sequence: int
    last_sequence: int
    oldest_record_time: datetime | None
    newest_record_time: datetime | None
    previous_record_hash: str
    last_record_hash: str
    segment_hash: str
    record_hashes: tuple[str, ...]
    previous_digest_file: str | None
    previous_digest_hash: str | None
    previous_digest_signature: str | None
    public_key_fingerprint: str

    @property
    def record_count(self) -> int:
        return self.last_sequence - self.first_sequence + 1

    @property
    def file_name(self) -> str:
        """``trail-digest-NNNNNNNN_FIRST-LAST_YYYYMMDDTHHMMSSZ.json``: number, sequence
        range (zero-padded) and end time, so a directory listing sorts in chain order."""
        return file_name(self.number, self.first_sequence, self.last_sequence, self.end_time)

    def describe(self) -> str:
        """``digest 3 (records 10-14, ended 2026-...Z)``, for messages."""
        span = (f"records {self.first_sequence}-{self.last_sequence}" if self.record_count
                else f"no records, after record {self.last_sequence}")
        return f"digest {self.number} ({span}, ended {format_time(self.end_time)})"

    def to_json(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return None if moment is None else format_time(moment)

        return {
            "version": DIGEST_VERSION,
            "digestNumber": self.number,
            "node": self.node,
            "digestStartTime": format_time(self.start_time),
            "digestEndTime": format_time(self.end_time),
            "firstSequence": self.first_sequence,
            "lastSequence": self.last_sequence,
            "recordCount": self.record_count,
            "oldestRecordTime": when(self.oldest_record_time),
            "newestRecordTime": when(self.newest_record_time),
            "previousRecordHash": self.previous_record_hash,
            "lastRecordHash": self.last_record_hash,
            "hashAlgorithm": HASH_ALGORITHM,
            "segmentHash": self.segment_hash,
            "recordHashes": list(self.record_hashes),
            "previousDigestFile": self.previous_digest_file,
            "previousDigestHash": self.previous_digest_hash,
            "previousDigestSignature": self.previous_digest_signature,
            "publicKeyFingerprint": self.public_key_fingerprint,
            "signatureAlgorithm": SIGNATURE_ALGORITHM,
        }


@dataclass(frozen=True, slots=True)
class SignedDigest:
    """A digest, its signature, and the exact bytes of its file."""

    digest: Digest
    signature: str
    data: bytes

    @property
    def name(self) -> str:
        return self.digest.file_name

    @property
    def sha256(self) -> str:
        """SHA-256 of the file, hex (what the next digest names)."""
        return hashlib.sha256(self.data).hexdigest()


def file_name(number: int, first_sequence: int, last_sequence: int, end_time: datetime) -> str:
    """The file name of a digest (see :attr:`Digest.file_name`)."""
    stamp = end_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"trail-digest-{number:08d}_{first_sequence:010d}-{last_sequence:010d}_{stamp}.json"


def looks_like_digest_name(name: str) -> bool:
    """Whether ``name`` has the form of a digest file name."""
    return _NAME.fullmatch(name) is not None


def record_hash(record: TrailRecord) -> bytes:
    """The 32-byte SHA-256 of a record as digested: the canonical JSON of all its fields
    (``parameters`` as its stored canonical text, ``time`` as written in the trail), its
    link, its predecessor's link and its format."""
    body = canonical_json({
        "sequence": record.sequence, "time": format_time(record.time),
        "access_key_id": record.access_key_id, "role": record.role,
        "source_ip": record.source_ip, "service": record.service,
        "operation": record.operation, "parameters": record.parameters,
        "outcome": record.outcome, "error_code": record.error_code,
        "http_status": record.http_status, "previous_hash": record.previous_hash,
        "hash": record.hash, "format": record.format,
    }).encode("ascii")
    return hashlib.sha256(body).digest()


def segment_hash(hashes: Iterable[bytes]) -> str:
    """SHA-256 over the concatenated 32-byte record hashes, hex."""
    total = hashlib.sha256()
    for one in hashes:
        total.update(one)
    return total.hexdigest()


def public_key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def sign_digest(digest: Digest, key: Ed25519PrivateKey) -> SignedDigest:
    """Sign ``digest`` and encode its file.

    :raises TypeError: ``key`` is not an Ed25519 private key.
    :raises ValueError: the digest names another key's fingerprint.
    """
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"key must be an Ed25519 private key, not {type(key).__name__}")
    if digest.public_key_fingerprint != public_key_fingerprint(key.public_key()):
        raise ValueError("the digest names another key's fingerprint")
    body = digest.to_json()
    signature = key.sign(_signed_bytes(body)).hex()
    data = (canonical_json({"digest": body, "signature": signature}) + "\n").encode("ascii")
    return SignedDigest(digest, signature, data)


def read_digest(data: bytes, key: Ed25519PublicKey) -> SignedDigest:
    """Parse a digest file and check its signature with ``key``.

    :raises DigestFormatError: not canonical digest JSON, a field missing or of the
        wrong type, or the signature does not verify (with which, in the message).
    """
    try:
        document = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DigestFormatError("it is not a JSON document") from None
    if not isinstance(document, dict) or set(document) != {"digest", "signature"}:
        raise DigestFormatError("it does not hold exactly a digest and a signature")
    body, signature = document["digest"], document["signature"]
    if not isinstance(body, dict) or not isinstance(signature, str):
        raise DigestFormatError("its digest or signature has the wrong type")
    if (canonical_json(document) + "\n").encode("ascii") != data:
        raise DigestFormatError("it is not in canonical form (it was edited)")
    named = body.get("publicKeyFingerprint")
    ours = public_key_fingerprint(key)
    if isinstance(named, str) and _HEX64.fullmatch(named) and named != ours:
        raise DigestFormatError(f"it was signed by another key (fingerprint {named[:16]}..., "
                                f"not this public key's {ours[:16]}...)")
    try:
        key.verify(bytes.fromhex(signature), _signed_bytes(body))
    except (InvalidSignature, ValueError):
        raise DigestFormatError("its signature does not verify (it was edited)") from None
    return SignedDigest(_digest_from_json(body), signature, data)


def _signed_bytes(body: Mapping[str, Any]) -> bytes:
    return _SIGNING_CONTEXT + canonical_json(body).encode("ascii")


def _digest_from_json(body: Mapping[str, Any]) -> Digest:
    try:
        if body["version"] != DIGEST_VERSION:
            raise DigestFormatError(f"unknown digest version {body['version']!r}")
        if body["signatureAlgorithm"] != SIGNATURE_ALGORITHM:
            raise DigestFormatError(f"unknown algorithm {body['signatureAlgorithm']!r}")
        digest = Digest(
            number=_int(body, "digestNumber"), node=_str(body, "node"),
            start_time=_time(body["digestStartTime"], "digestStartTime"),
            end_time=_time(body["digestEndTime"], "digestEndTime"),
            first_sequence=_int(body, "firstSequence"), last_sequence=_int(body, "lastSequence"),
            oldest_record_time=_optional_time(body["oldestRecordTime"], "oldestRecordTime"),
            newest_record_time=_optional_time(body["newestRecordTime"], "newestRecordTime"),
            previous_record_hash=_hex64(body, "previousRecordHash"),
            last_record_hash=_hex64(body, "lastRecordHash"),
            segment_hash=_hex64(body, "segmentHash"),
            record_hashes=_prefixes(body["recordHashes"]),
            previous_digest_file=_optional_str(body, "previousDigestFile"),
            previous_digest_hash=_optional_str(body, "previousDigestHash"),
            previous_digest_signature=_optional_str(body, "previousDigestSignature"),
            public_key_fingerprint=_hex64(body, "publicKeyFingerprint"),
        )
    except KeyError as missing:
        raise DigestFormatError(f"it lacks the field {missing}") from None
    if digest.to_json() != dict(body):
        raise DigestFormatError("it holds unknown or inconsistent fields")
    if digest.number < 1 or digest.first_sequence < 1 or digest.record_count < 0:
        raise DigestFormatError("its number or sequence range is impossible")
    if len(digest.record_hashes) != digest.record_count:
        raise DigestFormatError("its record hashes do not match its sequence range")
    return digest


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise DigestFormatError(f"{name} is not an integer")
    return value


def _str(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise DigestFormatError(f"{name} is not a string")
    return value


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    return None if body[name] is None else _str(body, name)


def _hex64(body: Mapping[str, Any], name: str) -> str:
    value = _str(body, name)
    if not _HEX64.fullmatch(value):
        raise DigestFormatError(f"{name} is not a lowercase hex SHA-256")
    return value


def _time(value: object, name: str) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise DigestFormatError(f"{name} is not a UTC time")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise DigestFormatError(f"{name} is not a UTC time") from None


def _optional_time(value: object, name: str) -> datetime | None:
    return None if value is None else _time(value, name)


def _prefixes(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
            isinstance(one, str) and len(one) == RECORD_HASH_PREFIX for one in value):
        raise DigestFormatError("recordHashes is not a list of hash prefixes")
    return tuple(value)


def build_digest(*, number: int, node: str, start_time: datetime, end_time: datetime,
                 previous: SignedDigest | None, records: Sequence[TrailRecord],
                 after_sequence: int, after_hash: str, fingerprint: str) -> Digest:
    """The digest of ``records`` (the segment after record ``after_sequence``, whose
    link is ``after_hash``), chained to ``previous``.

    :raises ValueError: the records do not continue the chain from ``after_sequence``
        in order, or the times are naive.
    """
    hashes = []
    expected = after_sequence + 1
    for record in records:
        if record.sequence != expected:
            raise ValueError(f"record {record.sequence} found where {expected} was expected")
        hashes.append(record_hash(record))
        expected += 1
    times = [record.time for record in records]
    return Digest(
        number=number, node=node, start_time=_millis(start_time), end_time=_millis(end_time),
        first_sequence=after_sequence + 1, last_sequence=after_sequence + len(records),
        oldest_record_time=min(times) if times else None,
        newest_record_time=max(times) if times else None,
        previous_record_hash=after_hash if after_sequence else GENESIS_HASH,
        last_record_hash=records[-1].hash if records else after_hash,
        segment_hash=segment_hash(hashes),
        record_hashes=tuple(one.hex()[:RECORD_HASH_PREFIX] for one in hashes),
        previous_digest_file=None if previous is None else previous.name,
        previous_digest_hash=None if previous is None else previous.sha256,
        previous_digest_signature=None if previous is None else previous.signature,
        public_key_fingerprint=fingerprint,
    )


def _millis(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError("digest times must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)
