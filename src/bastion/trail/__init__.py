"""The trail: every control-plane call, allowed or denied, in a hash-chained,
append-only record.

* :class:`Trail` — implements the API's ``TrailSink``: :meth:`Trail.record` redacts the
  parameters and appends a :class:`TrailRecord` chained to the one before it;
  :meth:`Trail.verify` and :meth:`Trail.export` read it back. There is no update or
  delete, here or in the store.
* :func:`verify` — proves the chain intact or names the first broken record
  (:class:`VerifyResult`): an edited, deleted or reordered record is detected.
* :func:`export` — records between two times, as dicts ready for JSON lines;
  :func:`record_from_json` and :func:`verify_chain` check such an export offline.
* :func:`redact` — what of a request's parameters may be stored.
"""

from __future__ import annotations

from ._chain import (
    GENESIS_HASH,
    TrailRecord,
    canonical_json,
    compute_hash,
    format_time,
    record_from_json,
)
from ._redact import REDACTED, is_secret_name, redact
from ._trail import CallerLike, Trail, export, verify
from ._verify import VerifyResult, verify_chain

__all__ = [
    "GENESIS_HASH",
    "REDACTED",
    "CallerLike",
    "Trail",
    "TrailRecord",
    "VerifyResult",
    "canonical_json",
    "compute_hash",
    "export",
    "format_time",
    "is_secret_name",
    "record_from_json",
    "redact",
    "verify",
    "verify_chain",
]
