"""The console's HTTP plumbing: a request as the pages see it, answers with the security
headers every console response carries, cookies and form bodies."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SESSION_COOKIE: Final = "__Host-bastion-console"
"""The session cookie: ``__Host-`` makes the browser keep it only if set ``Secure``,
with ``Path=/`` and no ``Domain`` (no other host or path can set or shadow it)."""
SIGN_IN_COOKIE: Final = "__Host-bastion-sign-in"
"""The sign-in form's token (double submit): a cross-site page cannot sign a browser in
under the attacker's key."""

MAX_FORM_BYTES: Final = 16 * 1024

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

SECURITY_HEADERS: Final = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    source_ip: str
    form: Mapping[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    def page(self) -> int:
        """The ``page`` query argument (1 when absent or not a number)."""
        try:
            return max(1, int(self.query.get("page", "1")))
        except ValueError:
            return 1


@dataclass(frozen=True, slots=True)
class Answer:
    """One console response (not streamed)."""

    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    cacheable: bool = False  # static assets; pages are never stored


def redirect(location: str, *, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """A 303 See Other to a console path."""
    return Answer(303, b"", "text/plain; charset=utf-8", (("location", location), *headers))


def session_cookie(token: str) -> tuple[str, str]:
    return ("set-cookie", (f"{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; "
                          "SameSite=Strict"))


def cleared_cookie(name: str) -> tuple[str, str]:
    return ("set-cookie", f"{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")


def sign_in_cookie(token: str) -> tuple[str, str]:
    return ("set-cookie", (f"{SIGN_IN_COOKIE}={token}; Path=/; Secure; HttpOnly; "
                          "SameSite=Strict; Max-Age=3600"))


def response_headers(answer: Answer) -> list[tuple[bytes, bytes]]:
    """Every header of ``answer``: its own, the security headers, and caching."""
    headers = [(b"content-type", answer.content_type.encode("latin-1")),
               (b"content-length", str(len(answer.body)).encode("ascii"))]
    headers += [(name.encode("latin-1"), value.encode("latin-1"))
                for name, value in (*SECURITY_HEADERS, *answer.headers)]
    headers.append((b"cache-control",
                    b"private, max-age=300" if answer.cacheable else b"no-store"))
    return headers


def parse_cookies(header: str) -> dict[str, str]:
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in cookies.items()}


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; the first value of each name.

    :raises ValueError: the body is not valid UTF-8.
    """
    text = body.decode("utf-8")
    found: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True,
                                              max_num_fields=64):
        found.setdefault(name, value)
    return found


def parse_query(raw: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                       max_num_fields=64)
    except ValueError:  # not UTF-8, or too many fields: no arguments
        return found
    for name, value in pairs:
        found.setdefault(name, value)
    return found


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body; ``None`` when it exceeds ``limit`` bytes or the client went."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_answer(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status,
                "headers": response_headers(answer)})
    await send({"type": "http.response.body", "body": answer.body})
