"""Certificate ownership tokens: random, single use, short-lived, stored hashed.

A token proves, in RegisterThing, that the caller is the one that received the
certificate from CreateKeysAndCertificate / CreateCertificateFromCsr. It is 64 random
bytes (URL-safe base64); only its SHA-256 reaches the store, with the claim certificate
it was issued to, its expiry (one hour, as AWS) and the time it was used.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Final

from ._errors import OwnershipTokenError

TOKEN_LIFETIME: Final = timedelta(hours=1)
TOKEN_BYTES: Final = 64
MAX_TOKEN_LENGTH: Final = 4096


def new_token() -> str:
    """A fresh, unguessable token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the store keeps of a token: its SHA-256, lowercase hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token(token: object) -> str:
    """:raises OwnershipTokenError: missing, empty, not a string or absurdly long."""
    if token is None or token == "":
        raise OwnershipTokenError("Certificate ownership token cannot be empty.")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise OwnershipTokenError("The certificate ownership token is not valid.")
    return token
