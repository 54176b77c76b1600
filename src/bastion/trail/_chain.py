"""The trail record and its link: what is chained, and how it is encoded.

Theory of operation: a record's ``hash`` (its *link*) covers the canonical JSON encoding
of an object holding the record-format version ``"v"``, every field of the record
(``parameters`` as its stored canonical JSON *text*) and ``previous_hash``, the link of
the record before it (64 zeros for the first). Canonical JSON here means
:func:`json.dumps` with sorted keys, no whitespace and ASCII-only output (non-ASCII
characters as ``\\uXXXX``). Times are UTC with millisecond precision, written
``YYYY-MM-DDTHH:MM:SS.mmmZ``. Two formats exist:

* **format 2, keyed** (every record Bastion writes now): ``"v": 2``, and the link is the
  lowercase hex HMAC-SHA256 of that encoding under the installation's *chain key*
  (:class:`~._keys.TrailKeys`). Without the master key nobody can compute it.
* **format 1, unkeyed** (records written before the trail was keyed): ``"v": 1``, and
  the link is the plain SHA-256 of the encoding, which anyone can recompute. They are
  only ever found *before* the chain's keyed boundary (see :mod:`._head`).

Editing any field of a record changes its link; recomputing the link to hide the edit
needs the chain key for a keyed record and breaks the next record's ``previous_hash``
anyway; deleting or reordering records breaks the sequence numbering or the links.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from ._keys import TrailKeys

GENESIS_HASH: Final = "0" * 64
"""The ``previous_hash`` of the first record."""

UNKEYED_FORMAT: Final = 1
"""Records written before the trail was keyed: the link is a plain SHA-256."""
KEYED_FORMAT: Final = 2
"""Records whose link is an HMAC under the chain key."""

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class TrailRecord:
    """One control-plane call, as chained.

    :ivar sequence: 1 for the first record, then +1 per record, without gaps.
    :ivar time: when it was recorded (UTC, millisecond precision).
    :ivar access_key_id: the access key the request named (may be empty or bogus for a
        request that failed authentication).
    :ivar role: the caller's role, ``None`` when authentication failed.
    :ivar parameters: canonical JSON text of the redacted request parameters.
    :ivar outcome: ``allowed``, ``denied`` or ``error``.
    :ivar previous_hash: the link of the record before (:data:`GENESIS_HASH` for the
        first).
    :ivar hash: the record's link over all of the above (see the module docstring).
    :ivar format: :data:`KEYED_FORMAT`, or :data:`UNKEYED_FORMAT` for a record written
        before the trail was keyed.
    """

    sequence: int
    time: datetime
    access_key_id: str
    role: str | None
    source_ip: str
    service: str
    operation: str
    parameters: str
    outcome: str
    error_code: str | None
    http_status: int
    previous_hash: str
    hash: str
    format: int

    def to_json(self) -> dict[str, Any]:
        """The exported form: the fields, ``time`` as text and ``parameters`` parsed."""
        return {
            "sequence": self.sequence,
            "time": format_time(self.time),
            "access_key_id": self.access_key_id,
            "role": self.role,
            "source_ip": self.source_ip,
            "service": self.service,
            "operation": self.operation,
            "parameters": _parsed(self.parameters),
            "outcome": self.outcome,
            "error_code": self.error_code,
            "http_status": self.http_status,
            "previous_hash": self.previous_hash,
            "hash": self.hash,
            "format": self.format,
        }


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # not ours: the row was edited; export it as found
        return {"[UNPARSEABLE]": text}


def canonical_json(value: object) -> str:
    """The canonical JSON text of ``value`` (sorted keys, compact, ASCII).

    :raises TypeError: ``value`` holds something JSON cannot encode.
    :raises ValueError: ``value`` holds NaN or an infinity, or a reference cycle.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def format_time(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    :raises ValueError: ``moment`` is naive.
    """
    if moment.utcoffset() is None:
        raise ValueError("trail times must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def truncate_to_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def compute_hash(
    *,
    sequence: int,
    time: datetime,
    access_key_id: str,
    role: str | None,
    source_ip: str,
    service: str,
    operation: str,
    parameters: str,
    outcome: str,
    error_code: str | None,
    http_status: int,
    previous_hash: str,
    keys: TrailKeys | None = None,
) -> str:
    """The link of a record with these fields (see the module docstring): keyed
    (format 2) under ``keys``' chain key, or unkeyed (format 1) when ``keys`` is ``None``.
    """
    body = canonical_json({
        "v": UNKEYED_FORMAT if keys is None else KEYED_FORMAT,
        "sequence": sequence,
        "time": format_time(time),
        "access_key_id": access_key_id,
        "role": role,
        "source_ip": source_ip,
        "service": service,
        "operation": operation,
        "parameters": parameters,
        "outcome": outcome,
        "error_code": error_code,
        "http_status": http_status,
        "previous_hash": previous_hash,
    }).encode("ascii")
    if keys is None:
        return hashlib.sha256(body).hexdigest()
    return keys.link(body)


def expected_hash(record: TrailRecord, keys: TrailKeys | None) -> str:
    """The link ``record`` should carry, recomputed from its other fields in its format.

    :param keys: needed for a keyed record only.
    :raises ValueError: the record's format is unknown, or it is keyed and ``keys`` is
        ``None``.
    """
    if record.format not in (UNKEYED_FORMAT, KEYED_FORMAT):
        raise ValueError(f"unknown trail record format {record.format}")
    if record.format == KEYED_FORMAT and keys is None:
        raise ValueError(f"record {record.sequence} is keyed: its link needs the chain key")
    return compute_hash(
        sequence=record.sequence,
        time=record.time,
        access_key_id=record.access_key_id,
        role=record.role,
        source_ip=record.source_ip,
        service=record.service,
        operation=record.operation,
        parameters=record.parameters,
        outcome=record.outcome,
        error_code=record.error_code,
        http_status=record.http_status,
        previous_hash=record.previous_hash,
        keys=keys if record.format == KEYED_FORMAT else None,
    )


def record_from_json(data: Mapping[str, Any]) -> TrailRecord:
    """Rebuild a record from its exported form (:meth:`TrailRecord.to_json`). An export
    without ``format`` (written before the trail was keyed) holds unkeyed records.

    :raises ValueError: a field is missing or has the wrong type.
    """
    try:
        time_text = data["time"]
        if not isinstance(time_text, str) or not time_text.endswith("Z"):
            raise ValueError(f"bad time {time_text!r}")
        moment = datetime.fromisoformat(time_text)
        record = TrailRecord(
            sequence=_typed(data["sequence"], int, "sequence"),
            time=moment,
            access_key_id=_typed(data["access_key_id"], str, "access_key_id"),
            role=_optional(data["role"], "role"),
            source_ip=_typed(data["source_ip"], str, "source_ip"),
            service=_typed(data["service"], str, "service"),
            operation=_typed(data["operation"], str, "operation"),
            parameters=canonical_json(data["parameters"]),
            outcome=_typed(data["outcome"], str, "outcome"),
            error_code=_optional(data["error_code"], "error_code"),
            http_status=_typed(data["http_status"], int, "http_status"),
            previous_hash=_typed(data["previous_hash"], str, "previous_hash"),
            hash=_typed(data["hash"], str, "hash"),
            format=_typed(data.get("format", UNKEYED_FORMAT), int, "format"),
        )
    except KeyError as missing:
        raise ValueError(f"record lacks field {missing}") from None
    except TypeError as error:
        raise ValueError(str(error)) from None
    return record


def _typed(value: object, kind: type[_T], name: str) -> _T:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _optional(value: object, name: str) -> str | None:
    return None if value is None else _typed(value, str, name)
