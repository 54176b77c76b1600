"""Presigned download URLs: the dangerous corner of :mod:`bastion.files`.

Theory of operation
-------------------
A presigned URL is the file's URL plus two query parameters::

    https://bastion.example:8443/_bastion/files/fw.bin
        ?X-Bastion-Expires=1767225600&X-Bastion-Signature=<64 hex digits>

``X-Bastion-Expires`` is the end of validity in epoch seconds; the signature is
HMAC-SHA256, under a key only Bastion knows, of the method (``GET``), the URL's path (as
sent, still percent-encoded) and that time, one per line, then each further
``X-Bastion-…`` parameter as ``name=value`` in name order (an upload URL's
``X-Bastion-Max-Bytes``): a URL is good for one method, and none of its limits can be
changed or added. Scheme, host and port are not signed: the
same URL stays valid through any name of the server. Whoever holds the URL may download
the file until the time is over — that is the whole authorization, so the URL is a bearer
secret, and the key is kept sealed in the store (see :class:`~bastion.files.FileService`).

Verification recomputes the MAC and compares in constant time (:func:`hmac.compare_digest`)
*before* looking at the time, so a changed expiry is a bad signature, not a late one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ._errors import SignatureRejectedError

EXPIRES_PARAM: Final = "X-Bastion-Expires"
SIGNATURE_PARAM: Final = "X-Bastion-Signature"
PARAM_PREFIX: Final = "X-Bastion-"
KEY_BYTES: Final = 32
_EXPIRES: Final = re.compile(r"[0-9]{1,12}")
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(moment).__name__}")
    if moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment


class UrlSigner:
    """Signs and verifies download URLs with one HMAC key.

    :param key: at least :data:`KEY_BYTES` random bytes.
    :raises TypeError: ``key`` is not bytes.
    :raises ValueError: ``key`` is too short.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
        if len(key) < KEY_BYTES:
            raise ValueError(f"the signing key must have at least {KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "<UrlSigner>"

    def _mac(self, method: str, path: str, expires: int,
             limits: Mapping[str, str]) -> str:
        message = f"{method}\n{path}\n{expires}" + "".join(
            f"\n{name}={limits[name]}" for name in sorted(limits))
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def sign(self, url: str, expires_at: datetime, *, method: str = "GET",
             limits: Mapping[str, str] | None = None) -> str:
        """``url`` with ``X-Bastion-Expires`` (``expires_at``, rounded up to the second),
        the signed ``limits`` (names starting ``X-Bastion-``) and ``X-Bastion-Signature``,
        good for ``method`` only.

        :raises TypeError: wrong argument types.
        :raises ValueError: ``url`` has a query or fragment already, or no path; or
            ``expires_at`` is naive; or a limit's name is not ``X-Bastion-…``.
        """
        limits = dict(limits or {})
        if any(not name.startswith(PARAM_PREFIX) or name in (EXPIRES_PARAM, SIGNATURE_PARAM)
               for name in limits):
            raise ValueError("limits must be named X-Bastion-… (not Expires or Signature)")
        if not isinstance(url, str):
            raise TypeError(f"url must be a string, not {type(url).__name__}")
        expires = math.ceil(_aware(expires_at, "expires_at").timestamp())
        parts = urlsplit(url)
        if parts.query or parts.fragment or not parts.path.startswith("/"):
            raise ValueError(f"cannot sign {url!r}: a URL with a path and no query is needed")
        query = urlencode([(EXPIRES_PARAM, str(expires)), *sorted(limits.items()),
                           (SIGNATURE_PARAM, self._mac(method, parts.path, expires, limits))])
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def verify(self, path: str, query: str, now: datetime) -> datetime:
        """Check the signature of a ``GET`` request for ``path`` with the query string
        ``query`` at ``now`` (see :meth:`verify_limits`).

        :returns: when the URL expires.
        """
        return self.verify_limits(path, query, now)[0]

    def verify_limits(self, path: str, query: str, now: datetime, *,
                      method: str = "GET") -> tuple[datetime, dict[str, str]]:
        """Check the signature of a ``method`` request for ``path`` with the query string
        ``query`` at ``now``.

        :returns: when the URL expires, and its signed limits.
        :raises SignatureRejectedError: a parameter is missing, repeated or malformed, the
            signature does not match, or the URL has expired (``expired`` is set).
        :raises TypeError, ValueError: ``now`` is not an aware datetime.
        """
        now = _aware(now, "now")
        params = parse_qs(query, keep_blank_values=True)
        expires_values = params.get(EXPIRES_PARAM, [])
        signatures = params.get(SIGNATURE_PARAM, [])
        if len(expires_values) != 1 or len(signatures) != 1:
            raise SignatureRejectedError(
                f"A download URL needs one {EXPIRES_PARAM} and one {SIGNATURE_PARAM}")
        raw_expires, signature = expires_values[0], signatures[0]
        if not _EXPIRES.fullmatch(raw_expires) or not _SIGNATURE.fullmatch(signature):
            raise SignatureRejectedError("The URL's signature is malformed")
        limits: dict[str, str] = {}
        for name, values in params.items():
            if name.startswith(PARAM_PREFIX) and name not in (EXPIRES_PARAM, SIGNATURE_PARAM):
                if len(values) != 1:
                    raise SignatureRejectedError(f"The URL repeats {name}")
                limits[name] = values[0]
        expires = int(raw_expires)
        expected = self._mac(method, path, expires, limits)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            raise SignatureRejectedError("The URL's signature does not match")
        if now.timestamp() >= expires:
            raise SignatureRejectedError("The URL has expired", expired=True)
        return datetime.fromtimestamp(expires, now.tzinfo), limits
