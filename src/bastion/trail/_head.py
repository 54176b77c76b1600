"""The sealed chain head: how its seal is computed.

Theory of operation: the chain head names the last record (``sequence`` and its link
``hash``) and ``keyed_from``, the first sequence whose link is keyed. Its ``seal`` is the
lowercase hex HMAC-SHA256, under the installation's *head key*
(:class:`~._keys.TrailKeys`), of the canonical JSON of::

    {"v": 1, "chain": "main", "sequence": …, "hash": …, "keyed_from": …}

Every append rewrites the head and its seal in the same transaction as the record. So,
without the master key, nobody can move the head back (truncate the tail), forward
(append a forged record), to zero (delete everything) or onto a rewritten chain: the seal
would not match. What a seal cannot tell apart is the database restored, head and all,
to an earlier state of its own: that is a rollback to a backup, and anchors noted outside
the database (``bastion trail verify --anchor``) are the defence against it.
"""

from __future__ import annotations

from typing import Final

from ._chain import canonical_json
from ._keys import TrailKeys

HEAD_SEAL_VERSION: Final = 1
MAIN_CHAIN: Final = "main"


def head_seal(keys: TrailKeys, *, sequence: int, hash: str, keyed_from: int) -> str:
    """The seal of a head naming record ``sequence`` with link ``hash``."""
    body = canonical_json({"v": HEAD_SEAL_VERSION, "chain": MAIN_CHAIN, "sequence": sequence,
                           "hash": hash, "keyed_from": keyed_from})
    return keys.seal(body.encode("ascii"))
