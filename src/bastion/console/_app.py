"""The console as an ASGI application, mounted under ``/console/`` on the API's port.

Theory of operation
-------------------
For every request under :data:`PREFIX`:

1. **Static assets** (``/console/static/…``) are served from the package to anyone:
   one stylesheet and one script, no secret in them.
2. **Sign-in** (``GET``/``POST /console/sign-in``): the form carries a token that must
   equal a ``__Host-`` cookie set with the form (double submit). Each attempt takes one
   slot of the source address's window (:mod:`._limits`; over it: ``429``). The access
   key is looked up in the API's :class:`~bastion.api.CredentialSource` and the secret
   compared with :func:`hmac.compare_digest`; success opens a session
   (:mod:`._sessions`) in a ``__Host-`` cookie (``Secure; HttpOnly; SameSite=Strict``).
   Every attempt is trailed as ``bastion:ConsoleSignIn`` (``allowed`` or ``denied``;
   never the secret).
3. **Session** — every other path needs a live session: none, or a timed-out one, is a
   ``303`` to the sign-in page (the stream: ``401``). The session's access key is looked
   up again, as the API does at every request: a key disabled, deleted or given another
   role since sign-in ends the session.
4. **CSRF** — every ``POST`` must carry the session's CSRF token in its ``csrf`` field
   (synchronizer token, compared in constant time), else ``403``, trailed as denied.
5. **Authorize** — each page and action names the API operation it corresponds to
   (:data:`PAGES`, :data:`ACTIONS`); :func:`bastion.api.role_allows` decides, as for
   the API. A refusal is ``403``, whatever the page showed.
6. **Act and trail** — reads run in a worker thread; a change runs inside the trail's
   ``record_with_change`` so that it commits with its record, exactly as the API runs a
   handler. Every record carries ``"bastion:source": "console"`` in its parameters (no
   AWS operation has a member of that name), with the caller's key and role.

Steps 5 and 6 are :class:`~._door.Door`'s, shared by the pages and actions of
:mod:`._pages`; this module routes, signs in and out, and streams the overview.

Answers are rendered by Jinja2 with autoescaping on for every template: every value a
device controls is escaped. Every answer carries the security headers of :mod:`._http`
(a strict CSP: no inline script or style anywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.resources
import json
import logging
import secrets
import urllib.parse
from typing import Final

import jinja2

from bastion.access import Role
from bastion.api import ADMIN_SERVICE, Caller, CredentialSource, TrailSink
from bastion.clock import Clock, SystemClock
from bastion.config import ConsoleConfig
from bastion.services import Services

from ._door import ACTIONS, PAGES, PREFIX, Refused, Visit, format_when
from ._http import (
    MAX_FORM_BYTES,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Answer,
    Receive,
    Request,
    Scope,
    Send,
    cleared_cookie,
    parse_cookies,
    parse_form,
    parse_query,
    read_body,
    redirect,
    response_headers,
    send_answer,
    session_cookie,
    sign_in_cookie,
)
from ._limits import SignInLimiter
from ._live import LiveFleet
from ._overview import Overview
from ._pages import Pages
from ._sessions import ConsoleSession, SessionBook

log = logging.getLogger("bastion.console")

BODY_TIMEOUT: Final = 30.0
STREAM_INTERVAL: Final = 2.0
"""Seconds between two updates of the overview's live stream."""

SIGN_IN: Final = "ConsoleSignIn"
SIGN_OUT: Final = "ConsoleSignOut"


class ConsoleApplication(Pages):
    """The console (see the module docstring).

    :param config: the ``[console]`` section.
    :param services: every domain service.
    :param live: the message path's live numbers.
    :param credentials: the API's access keys (``None``: nobody can sign in).
    :param trail: where every console action is recorded (the API's trail).
    :param clock: the sessions' and the sign-in limit's time (tests move one by hand).
    :param body_timeout: seconds to receive a form once the request's headers are in
        (then ``408`` and the connection is closed), as the API's ``body_timeout``.
    """

    def __init__(self, config: ConsoleConfig, *, services: Services, live: LiveFleet,
                 credentials: CredentialSource | None, trail: TrailSink,
                 clock: Clock | None = None, body_timeout: float = BODY_TIMEOUT) -> None:
        self._config = config
        self._body_timeout = body_timeout
        self._services = services
        self._live = live
        self._credentials = credentials
        self._trail = trail
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.sessions = SessionBook(self._clock, idle_timeout=config.idle_timeout,
                                    absolute_timeout=config.absolute_timeout)
        self._limiter = SignInLimiter(self._clock, attempts=config.sign_in_attempts,
                                      window=config.sign_in_window)
        self._overview = Overview(services, live, self._clock)
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("bastion.console", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        self._templates.filters["when"] = format_when
        self._templates.filters["quote"] = lambda text: urllib.parse.quote(str(text), safe="")
        self._account = services.plane.account
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End the live streams (the server is stopping)."""
        self._closing.set()

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Routed on the path as sent: its segments are unquoted one by one (a %2F stays
        # inside its segment).
        raw_path = scope.get("raw_path")
        path = (raw_path.decode("latin-1").split("?", 1)[0] if raw_path
                else urllib.parse.quote(scope["path"]))
        method = scope["method"].upper()
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope.get("headers", ())}
        client = scope.get("client")
        request = Request(method, path, parse_query(scope.get("query_string", b"")), headers,
                          parse_cookies(headers.get("cookie", "")),
                          str(client[0]) if client else "")
        if method == "POST":
            try:
                async with asyncio.timeout(self._body_timeout):
                    body = await read_body(receive, MAX_FORM_BYTES)
            except TimeoutError:
                slow = self._error(None, 408, "The form was not received in time.")
                await send_answer(send, Answer(408, slow.body,
                                               headers=(("connection", "close"),)))
                return
            if body is None:
                await send_answer(send, self._error(None, 413, "The form is too large."))
                return
            try:
                form = parse_form(body)
            except ValueError:
                await send_answer(send, self._error(None, 400, "The form is not UTF-8."))
                return
            request = Request(method, path, request.query, headers, request.cookies,
                              request.source_ip, form)
        if path == f"{PREFIX}/overview/stream" and method == "GET":
            await self._stream(request, receive, send)
            return
        try:
            answer = await self._answer(request)
        except Exception:
            log.exception("console: %s %s failed", method, path)
            answer = self._error(None, 500, "Something went wrong; the log says what.")
        await send_answer(send, answer)

    async def _answer(self, request: Request) -> Answer:
        path, method = request.path, request.method
        if path.startswith(f"{PREFIX}/static/"):
            return _static(path[len(f"{PREFIX}/static/"):]) if method == "GET" else (
                self._error(None, 405, "Use GET."))
        if path == f"{PREFIX}/sign-in":
            if method == "POST":
                return await self._sign_in(request)
            return self._sign_in_form(request)
        if method not in ("GET", "POST"):
            return self._error(None, 405, "Use GET or POST.")
        session = await self._session(request, touch=True)
        if session is None:
            return redirect(f"{PREFIX}/sign-in")
        visit = Visit(request, session, self._caller(session, request))
        if method == "POST" and not session.csrf_matches(request.form.get("csrf")):
            await self._record(visit, *_operation_of_post(path), {"path": path}, "denied",
                               "InvalidCsrfTokenException", 403)
            return self._error(session, 403, "The form's CSRF token is missing or wrong: "
                               "reload the page and try again.")
        try:
            return await self._route(visit)
        except Refused as refused:
            return self._error(session, refused.status, refused.message)

    async def _route(self, visit: Visit) -> Answer:
        request = visit.request
        path, method = request.path, request.method
        parts = [urllib.parse.unquote(part) for part in
                 path[len(PREFIX):].strip("/").split("/")] if path != PREFIX else [""]
        if method == "POST":
            if parts == ["sign-out"]:
                return await self._sign_out(visit)
            if len(parts) == 3 and parts[0] == "certificates" and parts[2] == "status":
                return await self._set_certificate_status(visit, parts[1])
            if parts == ["trail", "verify"]:
                return await self._verify_trail(visit)
            if parts == ["audit", "run"]:
                return await self._run_audit(visit)
            if parts == ["audit", "suppressions"]:
                return await self._suppress(visit)
            if parts == ["audit", "suppressions", "delete"]:
                return await self._unsuppress(visit)
            if len(parts) == 3 and parts[0] == "policies" and parts[2] == "versions":
                return await self._create_policy_version(visit, parts[1])
            if parts == ["detect", "verify"]:
                return await self._verify_violation(visit)
            if parts in (["threats", "archive"], ["threats", "unarchive"]):
                return await self._archive_finding(visit, parts[1] == "archive")
            return self._error(visit.session, 404, "No such action.")
        match parts:
            case [""] | ["overview"]:
                return await self._overview_page(visit)
            case ["things"]:
                return await self._things_page(visit)
            case ["things", name]:
                return await self._thing_page(visit, name)
            case ["certificates"]:
                return await self._certificates_page(visit)
            case ["certificates", certificate_id]:
                return await self._certificate_page(visit, certificate_id)
            case ["certificates", certificate_id, "test"]:
                return await self._authorization_page(visit, certificate_id)
            case ["policies"]:
                return await self._policies_page(visit)
            case ["policies", name]:
                return await self._policy_page(visit, name)
            case ["policies", name, "versions", version]:
                return await self._policy_version_page(visit, name, version)
            case ["policies", name, "diff"]:
                return await self._policy_diff_page(visit, name)
            case ["policies", name, "edit"]:
                return await self._policy_edit_page(visit, name)
            case ["audit"]:
                return await self._audit_page(visit)
            case ["audit", "findings", finding_id, "suppress"]:
                return await self._suppress_form(visit, finding_id)
            case ["detect"]:
                return await self._detect_page(visit)
            case ["threats"]:
                return await self._threats_page(visit)
            case ["baseline"]:
                return await self._baseline_page(visit)
            case ["jobs"]:
                return await self._jobs_page(visit)
            case ["jobs", job_id]:
                return await self._job_page(visit, job_id)
            case ["trail"]:
                return await self._trail_page(visit, None)
        return self._error(visit.session, 404, "No such page.")

    # -- sign-in, sessions ----------------------------------------------------------------

    def _sign_in_form(self, request: Request, *, message: str = "", status: int = 200,
                      retry_after: float | None = None) -> Answer:
        token = secrets.token_urlsafe(32)
        headers: list[tuple[str, str]] = [sign_in_cookie(token)]
        if retry_after is not None:
            headers.append(("retry-after", str(int(retry_after))))
        body = self._render("sign_in.html", None, form_token=token, message=message,
                            idle_minutes=int(self._config.idle_timeout // 60))
        return Answer(status, body, headers=tuple(headers))

    async def _sign_in(self, request: Request) -> Answer:
        form = request.form
        key_id = form.get("access_key_id", "").strip()[:128]
        secret = form.get("secret_access_key", "")
        cookie = request.cookies.get(SIGN_IN_COOKIE, "")
        presented = form.get("form_token", "")
        if not cookie or not presented or not hmac.compare_digest(cookie.encode(),
                                                                  presented.encode()):
            await self._record_sign_in(request, key_id, None, "denied",
                                       "InvalidCsrfTokenException", 403)
            return self._sign_in_form(request, status=403, message=(
                "The sign-in form expired or came from elsewhere; try again."))
        wait = self._limiter.take(request.source_ip)
        if wait is not None:
            await self._record_sign_in(request, key_id, None, "denied",
                                       "ThrottlingException", 429)
            return self._sign_in_form(request, status=429, retry_after=wait, message=(
                f"Too many sign-in attempts from your address; wait {int(wait)} seconds."))
        role = await self._verify(key_id, secret)
        if role is None:
            await self._record_sign_in(request, key_id, None, "denied",
                                       "UnrecognizedClientException", 401)
            return self._sign_in_form(request, status=401,
                                      message="Unknown access key or wrong secret.")
        session = self.sessions.open(key_id, role, request.source_ip)
        await self._record_sign_in(request, key_id, session, "allowed", None, 303)
        log.info("console: %s signed in (%s) from %s", key_id, role.value, request.source_ip)
        return redirect(f"{PREFIX}/overview", headers=(session_cookie(session.token),
                                                       cleared_cookie(SIGN_IN_COOKIE)))

    async def _record_sign_in(self, request: Request, key_id: str,
                              session: ConsoleSession | None, outcome: str,
                              error_code: str | None, status: int) -> None:
        caller = None if session is None else self._caller(session, request)
        await self._append(caller, key_id, request.source_ip, ADMIN_SERVICE, SIGN_IN,
                           {"userAgent": request.headers.get("user-agent", "")[:256]},
                           outcome, error_code, status)

    async def _verify(self, key_id: str, secret: str) -> Role | None:
        """The key's role when ``secret`` is its secret access key (the same lookup the
        API's SigV4 check makes); ``None`` otherwise."""
        source = self._credentials
        if source is None or not key_id or not secret:
            return None
        found = await asyncio.to_thread(source.lookup, key_id)
        if found is None:
            # Compare anyway, so that an unknown key costs what a known one does.
            hmac.compare_digest(secret.encode(), secrets.token_urlsafe(30).encode())
            return None
        stored, role = found
        if not hmac.compare_digest(secret.encode("utf-8", "surrogatepass"),
                                   stored.encode("utf-8")):
            return None
        return Role(role)

    async def _session(self, request: Request, *, touch: bool) -> ConsoleSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.find(token, touch=touch)
        if session is None or token is None:
            return None
        source = self._credentials
        found = None if source is None else await asyncio.to_thread(source.lookup,
                                                                    session.access_key_id)
        if found is None or Role(found[1]) is not session.role:
            self.sessions.close(token)
            log.info("console: the session of %s ended: its key was disabled, deleted or "
                     "changed role", session.access_key_id)
            return None
        return session

    async def _sign_out(self, visit: Visit) -> Answer:
        self.sessions.close(visit.session.token)
        await self._record(visit, ADMIN_SERVICE, SIGN_OUT, {}, "allowed", None, 303)
        return redirect(f"{PREFIX}/sign-in", headers=(cleared_cookie(SESSION_COOKIE),))

    def _caller(self, session: ConsoleSession, request: Request) -> Caller:
        return Caller(session.access_key_id, session.role, request.source_ip,
                      self._account.region, self._account.account_id, emulated=False)

    # -- the overview's live stream -----------------------------------------------------------

    async def _stream(self, request: Request, receive: Receive, send: Send) -> None:
        """``text/event-stream``: one ``overview`` event every :data:`STREAM_INTERVAL`
        seconds, until the client goes, the session ends (the stream does not keep it
        alive; its key is looked up again at each update), or the server stops. Opening it is trailed once, as the overview."""
        session = await self._session(request, touch=True)
        if session is None:
            await send_answer(send, Answer(401, b"sign in again\n", "text/plain; charset=utf-8"))
            return
        visit = Visit(request, session, self._caller(session, request))
        service, operation = PAGES["overview"]
        try:
            await self._authorized(visit, service, operation, {"stream": True})
        except Refused as refused:
            await send_answer(send, self._error(session, refused.status, refused.message))
            return
        await self._record(visit, service, operation, {"stream": True}, "allowed", None, 200)
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.get_running_loop().create_task(watch())
        answer = Answer(200, b"", "text/event-stream; charset=utf-8")
        headers = [(name, value) for name, value in response_headers(answer)
                   if name != b"content-length"]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            while not gone.is_set() and not self._closing.is_set():
                if await self._session(request, touch=False) is None:
                    await send({"type": "http.response.body",
                                "body": b"event: ended\ndata: {}\n\n", "more_body": True})
                    break
                sample = await self._overview.sample()
                data = json.dumps(sample.to_json(), separators=(",", ":"))
                await send({"type": "http.response.body",
                            "body": f"event: overview\ndata: {data}\n\n".encode(),
                            "more_body": True})
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STREAM_INTERVAL):
                        await _first(gone, self._closing)
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b""})
        except OSError:  # the client went while a chunk was being written
            pass
        finally:
            watcher.cancel()


async def _first(*events: asyncio.Event) -> None:
    """Until one of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _operation_of_post(path: str) -> tuple[str, str]:
    """The operation a POST to ``path`` would be (for the record of a refused one)."""
    if path.endswith("/audit/run"):
        return ACTIONS["audit-run"]
    if path.endswith("/audit/suppressions"):
        return ACTIONS["audit-suppress"]
    if path.endswith("/audit/suppressions/delete"):
        return ACTIONS["audit-unsuppress"]
    if path.endswith("/versions"):
        return ACTIONS["policy-version-create"]
    if path.endswith("/status"):
        return ACTIONS["certificate-status"]
    if path.endswith("/trail/verify"):
        return ACTIONS["trail-verify"]
    if path.endswith("/detect/verify"):
        return ACTIONS["detect-verify"]
    if path.endswith("/threats/archive"):
        return ACTIONS["threat-archive"]
    if path.endswith("/threats/unarchive"):
        return ACTIONS["threat-unarchive"]
    if path.endswith("/sign-out"):
        return ADMIN_SERVICE, SIGN_OUT
    return ADMIN_SERVICE, ""


_STATIC: Final = {"console.css": "text/css; charset=utf-8",
                  "console.js": "text/javascript; charset=utf-8",
                  "favicon.svg": "image/svg+xml"}


def _static(name: str) -> Answer:
    content_type = _STATIC.get(name)
    if content_type is None:
        return Answer(404, b"not found\n", "text/plain; charset=utf-8")
    body = importlib.resources.files("bastion.console").joinpath("static", name).read_bytes()
    return Answer(200, body, content_type, cacheable=True)
