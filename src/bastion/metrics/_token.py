"""The scrape token: the bearer token a Prometheus server presents for ``GET /metrics``.

Theory of operation
-------------------
The metrics name rules, count devices and show what the fleet does; they are not for
anyone who can reach the API's port. The scraper proves itself with ``Authorization:
Bearer <token>`` (RFC 6750), the token read from a file only the server's user may read:
``metrics.token`` in the data directory unless ``[metrics] token_file`` names another
(one file shared by every node of a cluster, say). :func:`ensure_scrape_token` creates
it on first use (``bastion init``, or the first ``bastion serve``): 256 random bits,
URL-safe base64, mode 0600, written atomically. A file others may read or write is
refused rather than trusted, as the master key is.

The token is kept only as its SHA-256; a presented token is hashed and compared with
:func:`hmac.compare_digest`, so neither its content nor its length shows in the time
a refusal takes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import stat
from pathlib import Path
from typing import Final

from bastion.pki import write_file_atomically

log = logging.getLogger("bastion.metrics")

MIN_TOKEN_LENGTH: Final = 32
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750's b64token
_SCHEME: Final = "bearer"


class ScrapeTokenError(Exception):
    """The token file cannot be used: unreadable, readable or writable by others, or not
    a token (an operator problem; ``bastion serve`` refuses to start)."""


class ScrapeToken:
    """A scrape token, held as its SHA-256 digest (the token itself is not kept).

    :param token: the token, at least :data:`MIN_TOKEN_LENGTH` characters of RFC 6750's
        ``b64token`` alphabet.
    :raises TypeError: ``token`` is not a ``str``.
    :raises ValueError: ``token`` is too short or holds another character.
    """

    __slots__ = ("_digest",)

    def __init__(self, token: str) -> None:
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, not {type(token).__name__}")
        if len(token) < MIN_TOKEN_LENGTH or not _B64TOKEN.fullmatch(token):
            raise ValueError(f"a scrape token is at least {MIN_TOKEN_LENGTH} characters of "
                             "A-Z a-z 0-9 - . _ ~ + / (then '=' padding)")
        self._digest = hashlib.sha256(token.encode("ascii")).digest()

    def __repr__(self) -> str:
        return "<ScrapeToken>"

    def admits(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value presents this token as a bearer
        token (the scheme's case does not matter). Takes the same time whatever the
        presented token is."""
        if authorization is None:
            return False
        scheme, _, presented = authorization.strip().partition(" ")
        presented = presented.strip()
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        matches = hmac.compare_digest(digest, self._digest)
        return matches and scheme.lower() == _SCHEME


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def ensure_scrape_token(path: Path) -> tuple[ScrapeToken, bool]:
    """The token in ``path``, created first (mode 0600) when the file does not exist.

    :returns: the token and whether it was created now.
    :raises ScrapeTokenError: the file is readable or writable by group or others, or it
        holds no valid token.
    :raises OSError: the file cannot be read, or created (its directory is missing or
        read-only).
    """
    created = False
    if not path.exists():
        try:
            write_file_atomically(path, (new_token() + "\n").encode("ascii"), mode=0o600,
                                  overwrite=False)
            created = True
            log.info("metrics: scrape token created in %s", path)
        except FileExistsError:
            pass  # another process created it meanwhile: read theirs
    return load_scrape_token(path), created


def load_scrape_token(path: Path) -> ScrapeToken:
    """Read the token in ``path``.

    :raises ScrapeTokenError: see :func:`ensure_scrape_token`.
    :raises OSError: the file cannot be read.
    """
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise ScrapeTokenError(f"{path} is not a regular file")
    if mode & 0o077:
        raise ScrapeTokenError(
            f"{path} is accessible to group or others (mode {stat.S_IMODE(mode):o}); "
            f"make it owner-only: chmod 600 {path}")
    try:
        return ScrapeToken(path.read_text(encoding="ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ScrapeTokenError(f"{path} holds no valid scrape token: {exc}") from None
