"""The trail signing key: the Ed25519 key that signs the trail's digests.

Theory of operation: one key per installation, made by ``bastion init`` (or by the
first start of a data directory made before digests existed). Its 32-byte private key is
sealed under the master key (:meth:`bastion.pki.Keystore.seal`, with the secret's name as
associated data) and kept in the store's sealed secrets, like the other secrets, so
every node of a cluster signs with the same key and no private key lies in a file. Its
public key is written beside the data (``trail-digest.pub.pem``, SubjectPublicKeyInfo
PEM, 0644) and printed by ``bastion trail digest-key``: hand it to whoever verifies the
digests; it is all they need. The key is never rotated by Bastion; a digest names the
fingerprint of the key that signed it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from bastion.pki import write_file_atomically
from bastion.store import ConflictError, Store

DIGEST_KEY_SECRET: Final = "trail-digest-signing-key"
"""The name of the sealed private key in the store's secrets (and its associated data)."""
PUBLIC_KEY_FILE: Final = "trail-digest.pub.pem"


class Sealer(Protocol):
    """What the signing key needs of a :class:`bastion.pki.Keystore`."""

    def seal(self, data: bytes, *, associated_data: bytes = b"") -> bytes: ...

    def unseal(self, blob: bytes, *, associated_data: bytes = b"") -> bytes: ...


def signing_key(store: Store, sealer: Sealer, now: datetime) -> Ed25519PrivateKey:
    """The installation's trail signing key, created (and sealed) if there is none.

    :raises bastion.pki.SecretTamperedError: the sealed key fails authentication (edited,
        or sealed under another master key).
    :raises bastion.store.StoreError: the database failed.
    """
    aad = DIGEST_KEY_SECRET.encode("ascii")
    for attempt in range(2):
        try:
            with store.transaction() as uow:
                sealed = uow.secrets.get(DIGEST_KEY_SECRET)
                if sealed is not None:
                    raw = sealer.unseal(sealed, associated_data=aad)
                    return Ed25519PrivateKey.from_private_bytes(raw)
                key = Ed25519PrivateKey.generate()
                raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
                uow.secrets.put(DIGEST_KEY_SECRET, sealer.seal(raw, associated_data=aad), now)
            return key
        except ConflictError:
            if attempt:  # another process created it between our read and our write
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """``key`` as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """Read a trail digest public key (PEM).

    :raises ValueError: not a PEM public key, or not an Ed25519 one.
    """
    key = load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key (a {type(key).__name__})")  # noqa: TRY004 - a file's content
    return key


def write_public_key(path: str | os.PathLike[str], key: Ed25519PublicKey) -> bool:
    """Write ``key``'s PEM to ``path`` (0644, atomically) unless it already holds it.

    :returns: whether the file was written.
    :raises OSError: the file cannot be written.
    """
    pem = public_key_pem(key)
    target = Path(path)
    try:
        if target.read_bytes() == pem:
            return False
    except FileNotFoundError:
        pass
    write_file_atomically(target, pem, mode=0o644)
    return True
