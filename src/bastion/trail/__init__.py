"""The trail: every control-plane call, allowed or denied, in a keyed, hash-chained,
append-only record with a sealed head.

* :class:`Trail` — implements the API's ``TrailSink``: :meth:`Trail.record` redacts the
  parameters and appends a :class:`TrailRecord` linked to the one before it by an HMAC
  under a key derived from the master key (:class:`TrailKeys`), and re-seals the chain
  head in the same transaction; :meth:`Trail.record_with_change` appends the record of a
  call in the transaction of the change it makes (a :class:`ChangeRecord`), so that a
  crash leaves both or neither; :meth:`Trail.verify` and :meth:`Trail.export` read it
  back. There is no update or delete, here or in the store.
* :func:`verify` — proves the chain intact or names the first broken record and the
  :class:`Problem` (:class:`VerifyResult`): an edited, deleted, reordered or recomputed
  record, a truncated tail, a deleted trail and a forged head are all detected.
* :func:`export` — records between two times, as dicts ready for JSON lines;
  :func:`record_from_json` and :func:`verify_chain` check such an export offline.
* :func:`redact` — what of a request's parameters may be stored.
* Signed digests (AISB#8, protected delivery): :class:`TrailDigester` signs a
  :class:`Digest` of each new segment of the trail with the trail signing key
  (:func:`signing_key`, Ed25519) every interval and delivers it to its sinks
  (:class:`DirectorySink`, :class:`S3Sink`); :class:`TrailDigestKeeper` runs it in
  ``bastion serve``; :func:`verify_digests` checks digests and records offline with the
  public key alone (:class:`DigestVerdict`, :class:`DigestProblem`).
"""

from __future__ import annotations

from ._chain import (
    GENESIS_HASH,
    KEYED_FORMAT,
    UNKEYED_FORMAT,
    TrailRecord,
    canonical_json,
    compute_hash,
    format_time,
    record_from_json,
)
from ._digest import Digest, DigestFormatError, SignedDigest, read_digest, record_hash
from ._digest_key import (
    DIGEST_KEY_SECRET,
    PUBLIC_KEY_FILE,
    load_public_key,
    public_key_pem,
    signing_key,
    write_public_key,
)
from ._digest_sinks import (
    DigestDeliveryError,
    DigestSink,
    DirectorySink,
    S3Sink,
    read_digest_files,
)
from ._digest_verify import DigestProblem, DigestVerdict, verify_digests
from ._digester import TrailDigester, TrailDigestKeeper
from ._errors import TrailError, TrailIntegrityError
from ._head import head_seal
from ._keys import TrailKeys
from ._redact import REDACTED, is_secret_name, redact
from ._trail import SEAL_OPERATION, CallerLike, ChangeRecord, Trail, export, verify
from ._verify import Problem, VerifyResult, verify_chain

__all__ = [
    "DIGEST_KEY_SECRET",
    "GENESIS_HASH",
    "KEYED_FORMAT",
    "PUBLIC_KEY_FILE",
    "REDACTED",
    "SEAL_OPERATION",
    "UNKEYED_FORMAT",
    "CallerLike",
    "ChangeRecord",
    "Digest",
    "DigestDeliveryError",
    "DigestFormatError",
    "DigestProblem",
    "DigestSink",
    "DigestVerdict",
    "DirectorySink",
    "Problem",
    "S3Sink",
    "SignedDigest",
    "Trail",
    "TrailDigestKeeper",
    "TrailDigester",
    "TrailError",
    "TrailIntegrityError",
    "TrailKeys",
    "TrailRecord",
    "VerifyResult",
    "canonical_json",
    "compute_hash",
    "export",
    "format_time",
    "head_seal",
    "is_secret_name",
    "load_public_key",
    "public_key_pem",
    "read_digest",
    "read_digest_files",
    "record_from_json",
    "record_hash",
    "redact",
    "signing_key",
    "verify",
    "verify_chain",
    "verify_digests",
    "write_public_key",
]
