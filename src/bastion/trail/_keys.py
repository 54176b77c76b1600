"""The trail's keys: what makes a link or a head seal impossible to forge without the
master key.

Theory of operation: two 32-byte keys are derived from the data directory's master key
(HKDF-SHA256, :meth:`bastion.pki.Keystore.derive_key`) under their own labels, so neither
can be computed from the other or from any other key Bastion derives:

* the *chain key* (``bastion trail chain v1``) — a keyed record's ``hash`` is
  HMAC-SHA256 under it (see :mod:`._chain`);
* the *head key* (``bastion trail head v1``) — the chain head's ``seal`` is HMAC-SHA256
  under it (see :mod:`._head`).

Someone who can write to the database but does not hold the master key can therefore
neither recompute a record's link after an edit nor move the head.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final, Protocol

CHAIN_KEY_LABEL: Final = b"bastion trail chain v1"
HEAD_KEY_LABEL: Final = b"bastion trail head v1"
KEY_SIZE: Final = 32


class KeySource(Protocol):
    """What :meth:`TrailKeys.from_keystore` needs of a :class:`bastion.pki.Keystore`."""

    def derive_key(self, label: bytes) -> bytes: ...


class TrailKeys:
    """The chain key and the head key of one installation.

    :param chain_key: 32 bytes: keys the records' links.
    :param head_key: 32 bytes: keys the chain head's seal.
    :raises TypeError: a key is not bytes.
    :raises ValueError: a key is not 32 bytes long, or both are the same.
    """

    __slots__ = ("_chain_key", "_head_key")

    def __init__(self, chain_key: bytes, head_key: bytes) -> None:
        for name, key in (("chain_key", chain_key), ("head_key", head_key)):
            if not isinstance(key, bytes):
                raise TypeError(f"{name} must be bytes, not {type(key).__name__}")
            if len(key) != KEY_SIZE:
                raise ValueError(f"{name} must be {KEY_SIZE} bytes, not {len(key)}")
        if hmac.compare_digest(chain_key, head_key):
            raise ValueError("the chain key and the head key must differ")
        self._chain_key = chain_key
        self._head_key = head_key

    @classmethod
    def from_keystore(cls, keystore: KeySource) -> TrailKeys:
        """The keys derived from ``keystore``'s master key (see the module docstring)."""
        return cls(keystore.derive_key(CHAIN_KEY_LABEL), keystore.derive_key(HEAD_KEY_LABEL))

    def __repr__(self) -> str:
        return "<TrailKeys>"

    def link(self, body: bytes) -> str:
        """HMAC-SHA256 of ``body`` under the chain key, as lowercase hex."""
        return hmac.new(self._chain_key, body, hashlib.sha256).hexdigest()

    def seal(self, body: bytes) -> str:
        """HMAC-SHA256 of ``body`` under the head key, as lowercase hex."""
        return hmac.new(self._head_key, body, hashlib.sha256).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Whether two hex digests are equal, in time independent of where they differ."""
    return hmac.compare_digest(a.lower().encode("ascii", "replace"),
                               b.lower().encode("ascii", "replace"))
