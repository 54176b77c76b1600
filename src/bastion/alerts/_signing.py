"""Webhook signatures: HMAC-SHA256 over the timestamp and the body.

Every webhook POST carries::

    X-Bastion-Timestamp: <unix seconds>
    X-Bastion-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>." + body)>
    X-Bastion-Delivery: <alert id>

A receiver recomputes the HMAC with the target's key, compares in constant time, and
refuses timestamps too far from its clock (a replayed request keeps its old timestamp,
and changing it breaks the signature). :func:`verify_signature` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

TIMESTAMP_HEADER: Final = "X-Bastion-Timestamp"
SIGNATURE_HEADER: Final = "X-Bastion-Signature"
DELIVERY_HEADER: Final = "X-Bastion-Delivery"
SCHEME: Final = "sha256="
DEFAULT_TOLERANCE: Final = 300


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Bastion-Signature`` value of ``body`` sent at ``timestamp``."""
    if not isinstance(key, bytes) or not key:
        raise ValueError("the signing key must be non-empty bytes")
    mac = hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify_signature(key: bytes, header: str, timestamp: str, body: bytes, *, now: int,
                     tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """Whether ``header`` is the signature of ``body`` at ``timestamp``, and the timestamp
    is within ``tolerance`` seconds of ``now``."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = signature(key, int(timestamp), body)
    return hmac.compare_digest(expected.encode("ascii"), header.encode("ascii", "replace"))
