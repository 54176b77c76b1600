"""The dangerous corner of access keys: generating them, and sealing their secrets.

An access key id is ``AKIA`` followed by 16 characters of ``A-Z 0-9`` (AWS's shape, so
tools that validate it accept ours); a secret access key is 40 characters of the base64
alphabet, 240 bits from :mod:`secrets`.

A secret is stored only as :meth:`bastion.pki.Keystore.seal` output. The associated data
binds the blob to the key's id *and role*: a sealed secret copied to another row, or a
row whose role was raised in the database behind Bastion's back, no longer unseals, and
the key then authenticates nothing (fail closed).
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Final

from bastion.pki import Keystore

from ._model import Role

ACCESS_KEY_ID_PREFIX: Final = "AKIA"
ACCESS_KEY_ID_PATTERN: Final = re.compile(r"AKIA[A-Z0-9]{16}")
SECRET_LENGTH: Final = 40

_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_AD_LABEL: Final = b"bastion access key v1"


def new_access_key_id() -> str:
    """A fresh random access key id (``AKIA`` + 16 uppercase letters and digits)."""
    return ACCESS_KEY_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """A fresh random secret access key: 40 characters of ``A-Z a-z 0-9 + /``."""
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def seal_secret(keystore: Keystore, access_key_id: str, role: Role, secret: str) -> bytes:
    """The blob to store for ``secret`` (see the module docstring)."""
    return keystore.seal(secret.encode("ascii"), associated_data=_associated_data(access_key_id, role))


def unseal_secret(keystore: Keystore, access_key_id: str, role: Role, sealed: bytes) -> str:
    """The secret sealed by :func:`seal_secret` for this id and role.

    :raises bastion.pki.SecretTamperedError: the blob was altered, moved to another row,
        the row's role was changed, or it was sealed under another master key.
    :raises bastion.pki.KeystoreError: unknown blob format.
    """
    return keystore.unseal(sealed, associated_data=_associated_data(access_key_id, role)).decode(
        "ascii"
    )


def _associated_data(access_key_id: str, role: Role) -> bytes:
    return b"\x00".join((_AD_LABEL, access_key_id.encode("ascii"), role.value.encode("ascii")))
