"""The dangerous corner of temporary credentials: their ids, secrets and session tokens.

A temporary access key id is ``ASIA`` followed by 16 characters of ``A-Z 0-9`` (AWS's
shape for temporary keys); its secret is 40 characters of the base64 alphabet, 240 bits
from :mod:`secrets`.

Nothing of a temporary credential is stored. The session token *is* the credential's
record: the claims (secret, role, role alias, thing, certificate, issue and expiry
times) as compact JSON, sealed with :meth:`bastion.pki.Keystore.seal` (AES-256-GCM under a
key derived from the master key) and base64-encoded. The associated data binds the blob
to its access key id, so a token presented with another key id does not open. Whoever
lacks the master key — someone holding a copy of the database included — can neither
read a token's secret nor forge one; a token altered by one bit fails its tag.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from bastion.pki import Keystore, KeystoreError

from ._model import Role

SESSION_KEY_ID_PREFIX: Final = "ASIA"
SESSION_KEY_ID_PATTERN: Final = re.compile(r"ASIA[A-Z0-9]{16}")
MAX_TOKEN_LENGTH: Final = 4096

_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_AD_LABEL: Final = b"bastion session token v1"
_FORMAT: Final = 1


class TokenError(ValueError):
    """A session token that does not open (malformed, altered, for another key id, or
    sealed under another master key)."""


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What a session token carries.

    :ivar thing_name: the thing the device named (``x-amzn-iot-thingname``), if any.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    role: Role
    role_alias: str
    thing_name: str | None
    certificate_id: str
    issued: datetime
    expiration: datetime


def new_session_key_id() -> str:
    """A fresh random temporary access key id (``ASIA`` + 16 letters and digits)."""
    return SESSION_KEY_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_session_secret() -> str:
    """A fresh random secret access key: 40 characters of ``A-Z a-z 0-9 + /``."""
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def seal_claims(keystore: Keystore, claims: SessionClaims) -> str:
    """The session token of ``claims`` (see the module docstring)."""
    document = {
        "v": _FORMAT,
        "s": claims.secret_access_key,
        "r": claims.role.value,
        "a": claims.role_alias,
        "t": claims.thing_name,
        "c": claims.certificate_id,
        "i": int(claims.issued.timestamp()),
        "e": int(claims.expiration.timestamp()),
    }
    plain = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    sealed = keystore.seal(plain, associated_data=_associated_data(claims.access_key_id))
    return base64.b64encode(sealed).decode("ascii")


def open_claims(keystore: Keystore, access_key_id: str, token: str) -> SessionClaims:
    """The claims sealed in ``token`` for ``access_key_id``.

    :raises TokenError: the token is malformed, altered, bound to another key id, sealed
        under another master key, or carries claims that do not parse.
    """
    if (not SESSION_KEY_ID_PATTERN.fullmatch(access_key_id) or not token
            or len(token) > MAX_TOKEN_LENGTH):
        raise TokenError("not a session token of this key id")
    try:
        sealed = base64.b64decode(token.encode("ascii"), validate=True)
        plain = keystore.unseal(sealed, associated_data=_associated_data(access_key_id))
    except (UnicodeEncodeError, binascii.Error, KeystoreError):
        raise TokenError("the session token does not open") from None
    try:
        document = json.loads(plain)
        if document["v"] != _FORMAT:
            raise TokenError(f"unknown session token format {document['v']!r}")
        thing = document["t"]
        return SessionClaims(
            access_key_id=access_key_id,
            secret_access_key=str(document["s"]),
            role=Role(document["r"]),
            role_alias=str(document["a"]),
            thing_name=None if thing is None else str(thing),
            certificate_id=str(document["c"]),
            issued=datetime.fromtimestamp(int(document["i"]), UTC),
            expiration=datetime.fromtimestamp(int(document["e"]), UTC),
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, TokenError):
            raise
        raise TokenError("the session token's claims do not parse") from None


def _associated_data(access_key_id: str) -> bytes:
    return b"\x00".join((_AD_LABEL, access_key_id.encode("ascii")))
