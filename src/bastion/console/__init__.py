"""The web console: server-rendered pages under ``/console/`` on the API's HTTPS port.

* :class:`ConsoleApplication` — the ASGI application the API server mounts (see
  :mod:`._app` for the life of a request: sign-in, sessions, CSRF, the role check of the
  API operation each page corresponds to, the trail).
* :class:`LiveFleet`, :class:`BrokerFleet` — what the console reads of the message path.
* :class:`SessionBook`, :class:`SignInLimiter` — the in-memory sessions and the sign-in
  rate limit.

Everything the browser loads is served from this package (templates, one stylesheet,
one script): nothing is fetched from elsewhere.
"""

from __future__ import annotations

from ._app import ConsoleApplication
from ._door import ACTIONS, PAGES, PREFIX, SOURCE, SOURCE_KEY
from ._http import CONTENT_SECURITY_POLICY, SESSION_COOKIE, SIGN_IN_COOKIE
from ._limits import SignInLimiter
from ._live import BrokerFleet, ConnectedClient, LiveFleet, MessageTotals
from ._sessions import ConsoleSession, SessionBook

__all__ = [
    "ACTIONS",
    "CONTENT_SECURITY_POLICY",
    "PAGES",
    "PREFIX",
    "SESSION_COOKIE",
    "SIGN_IN_COOKIE",
    "SOURCE",
    "SOURCE_KEY",
    "BrokerFleet",
    "ConnectedClient",
    "ConsoleApplication",
    "ConsoleSession",
    "LiveFleet",
    "MessageTotals",
    "SessionBook",
    "SignInLimiter",
]
