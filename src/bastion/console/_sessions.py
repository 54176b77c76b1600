"""Console sessions: who signed in, and until when.

Theory of operation
-------------------
Signing in with an access key id and its secret opens a :class:`ConsoleSession`: a
random 256-bit session token (the cookie's value), a second random 256-bit CSRF token
(the synchronizer token every form carries), the key's id and role, and two deadlines:

* **idle** — ``idle_timeout`` after the last request that used the session;
* **absolute** — ``absolute_timeout`` after sign-in, however busy the session is.

:class:`SessionBook` keeps the sessions in this process's memory, indexed by the SHA-256
of their token (a dictionary lookup by the digest leaks nothing of the token through
timing, and a heap dump holds no usable cookie). A restart signs everyone out; nothing is
written to the database. A session whose access key was disabled or deleted since
sign-in, or whose role changed, ends at its next request (the application looks the
key up at each request, as the API does, and closes the session when the answer differs).

The book is used from the event loop only (no lock).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from bastion.access import Role
from bastion.clock import Clock

MAX_SESSIONS: Final = 10_000
"""Sessions held at once; past that, the oldest is signed out."""


@dataclass(slots=True)
class ConsoleSession:
    """One signed-in console user.

    :ivar token: the session cookie's value (never logged, never trailed).
    :ivar csrf_token: the token every form of this session must carry back.
    :ivar started: monotonic time of sign-in.
    :ivar last_seen: monotonic time of the last request.
    """

    token: str
    csrf_token: str
    access_key_id: str
    role: Role
    source_ip: str
    started: float
    last_seen: float

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token (constant time)."""
        if not presented:
            return False
        return hmac.compare_digest(presented.encode(), self.csrf_token.encode())


class SessionBook:
    """The open console sessions (see the module docstring).

    :param clock: the monotonic time the deadlines are kept in.
    :param idle_timeout: seconds of inactivity that end a session.
    :param absolute_timeout: seconds after sign-in that end a session.
    :raises ValueError: a timeout is not positive.
    """

    def __init__(self, clock: Clock, *, idle_timeout: float, absolute_timeout: float) -> None:
        if idle_timeout <= 0 or absolute_timeout <= 0:
            raise ValueError("session timeouts must be positive")
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._sessions: dict[bytes, ConsoleSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, access_key_id: str, role: Role, source_ip: str) -> ConsoleSession:
        """A new session for a key that has just proved its secret."""
        self._sweep()
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda key: self._sessions[key].started)
            del self._sessions[oldest]
        now = self._clock.monotonic()
        session = ConsoleSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                                 access_key_id, role, source_ip, now, now)
        self._sessions[_digest(session.token)] = session
        return session

    def find(self, token: str | None, *, touch: bool = True) -> ConsoleSession | None:
        """The live session of ``token``; ``None`` (and the session closed) when there is
        none or it timed out. The caller then checks that the session's access key still
        has its role (:meth:`close` it otherwise).

        :param touch: move the idle deadline on (a person's request); the overview's live
            stream checks its session without keeping it alive.
        """
        if not token:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock.monotonic()
        if self._expired(session, now):
            del self._sessions[key]
            return None
        if touch:
            session.last_seen = now
        return session

    def close(self, token: str) -> bool:
        """Sign the session of ``token`` out; whether there was one."""
        return self._sessions.pop(_digest(token), None) is not None

    def _expired(self, session: ConsoleSession, now: float) -> bool:
        return (now - session.last_seen >= self.idle_timeout
                or now - session.started >= self.absolute_timeout)

    def _sweep(self) -> None:
        now = self._clock.monotonic()
        for key in [key for key, found in self._sessions.items() if self._expired(found, now)]:
            del self._sessions[key]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
