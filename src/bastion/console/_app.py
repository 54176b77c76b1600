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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import jinja2

from bastion.access import Role
from bastion.api import ADMIN_SERVICE, Caller, CredentialSource, TrailSink, role_allows
from bastion.clock import Clock, SystemClock
from bastion.config import ConsoleConfig
from bastion.errors import ServiceError
from bastion.registry import CertificateStatus
from bastion.services import Services

from . import _views as views
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
from ._sessions import ConsoleSession, SessionBook

log = logging.getLogger("bastion.console")

PREFIX: Final = "/console"
SOURCE_KEY: Final = "bastion:source"
"""The trail parameter naming the console as a record's source."""
SOURCE: Final = "console"
STREAM_INTERVAL: Final = 2.0
"""Seconds between two updates of the overview's live stream."""

SIGN_IN: Final = "ConsoleSignIn"
SIGN_OUT: Final = "ConsoleSignOut"

PAGES: Final[Mapping[str, tuple[str, str]]] = {
    "overview": (ADMIN_SERVICE, "DescribeFleetOverview"),
    "things": ("iot", "ListThings"),
    "thing": ("iot", "DescribeThing"),
    "certificates": ("iot", "ListCertificates"),
    "certificate": ("iot", "DescribeCertificate"),
    "policies": ("iot", "ListPolicies"),
    "policy": ("iot", "ListPolicyVersions"),
    "policy-version": ("iot", "GetPolicyVersion"),
    "audit": ("iot", "ListAuditFindings"),
    "finding": ("iot", "DescribeAuditFinding"),
    "detect": ("iot", "ListActiveViolations"),
    "jobs": ("iot", "ListJobs"),
    "job": ("iot", "ListJobExecutionsForJob"),
    "policy-diff": ("iot", "GetPolicyVersion"),
    "policy-edit": ("iot", "GetPolicy"),
    "test-authorization": ("iot", "TestAuthorization"),
    "trail": (ADMIN_SERVICE, "ListTrailRecords"),
}
"""Each page and the API operation whose role check it passes (reads: every role)."""

ACTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "certificate-status": ("iot", "UpdateCertificate"),
    "audit-run": ("iot", "StartOnDemandAuditTask"),
    "audit-suppress": ("iot", "CreateAuditSuppression"),
    "audit-unsuppress": ("iot", "DeleteAuditSuppression"),
    "policy-version-create": ("iot", "CreatePolicyVersion"),
    "trail-verify": (ADMIN_SERVICE, "VerifyTrail"),
}
"""Each action (a POST) and the API operation whose role check it passes."""

SETTABLE_STATUSES: Final = (CertificateStatus.INACTIVE.value, CertificateStatus.REVOKED.value,
                            CertificateStatus.ACTIVE.value)

_T = TypeVar("_T")


class _Refused(Exception):
    """An answer other than the page: a refusal (its status and message)."""

    def __init__(self, status: int, message: str, error_code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


@dataclass(slots=True)
class _Visit:
    """One request of a signed-in user, as the trail learns it."""

    request: Request
    session: ConsoleSession
    caller: Caller


class ConsoleApplication:
    """The console (see the module docstring).

    :param config: the ``[console]`` section.
    :param services: every domain service.
    :param live: the message path's live numbers.
    :param credentials: the API's access keys (``None``: nobody can sign in).
    :param trail: where every console action is recorded (the API's trail).
    :param clock: the sessions' and the sign-in limit's time (tests move one by hand).
    """

    def __init__(self, config: ConsoleConfig, *, services: Services, live: LiveFleet,
                 credentials: CredentialSource | None, trail: TrailSink,
                 clock: Clock | None = None) -> None:
        self._config = config
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
        self._templates.filters["when"] = _when
        self._templates.filters["quote"] = lambda text: urllib.parse.quote(str(text), safe="")
        self._account = services.plane.account
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End the live streams (the server is stopping)."""
        self._closing.set()

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"].upper()
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope.get("headers", ())}
        client = scope.get("client")
        request = Request(method, path, parse_query(scope.get("query_string", b"")), headers,
                          parse_cookies(headers.get("cookie", "")),
                          str(client[0]) if client else "")
        if method == "POST":
            body = await read_body(receive, MAX_FORM_BYTES)
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
        visit = _Visit(request, session, self._caller(session, request))
        if method == "POST" and not session.csrf_matches(request.form.get("csrf")):
            await self._record(visit, *_operation_of_post(path), {"path": path}, "denied",
                               "InvalidCsrfTokenException", 403)
            return self._error(session, 403, "The form's CSRF token is missing or wrong: "
                               "reload the page and try again.")
        try:
            return await self._route(visit)
        except _Refused as refused:
            return self._error(session, refused.status, refused.message)

    async def _route(self, visit: _Visit) -> Answer:
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

    async def _sign_out(self, visit: _Visit) -> Answer:
        self.sessions.close(visit.session.token)
        await self._record(visit, ADMIN_SERVICE, SIGN_OUT, {}, "allowed", None, 303)
        return redirect(f"{PREFIX}/sign-in", headers=(cleared_cookie(SESSION_COOKIE),))

    def _caller(self, session: ConsoleSession, request: Request) -> Caller:
        return Caller(session.access_key_id, session.role, request.source_ip,
                      self._account.region, self._account.account_id, emulated=False)

    # -- authorization and the trail --------------------------------------------------------

    async def _authorized(self, visit: _Visit, service: str, operation: str,
                          parameters: Mapping[str, object]) -> None:
        """:raises _Refused: the role may not call ``operation`` (trailed as denied)."""
        if role_allows(visit.session.role, service, operation):
            return
        await self._record(visit, service, operation, parameters, "denied",
                           "AccessDeniedException", 403)
        raise _Refused(403, f"Your role ({visit.session.role.value}) may not perform "
                       f"{service}:{operation}.", "AccessDeniedException")

    async def _read(self, visit: _Visit, page: str, parameters: Mapping[str, object],
                    read: Callable[[], _T]) -> _T:
        """Authorize the page's operation, run ``read`` in a worker thread, and trail the
        call with its outcome.

        :raises _Refused: refused (403) or a service error (its status).
        """
        service, operation = PAGES[page]
        await self._authorized(visit, service, operation, parameters)
        try:
            result = await asyncio.to_thread(read)
        except ServiceError as error:
            await self._record(visit, service, operation, parameters, "error",
                               error.aws_error_type, error.http_status)
            raise _Refused(error.http_status, error.message, error.aws_error_type) from None
        await self._record(visit, service, operation, parameters, "allowed", None, 200)
        return result

    async def _record(self, visit: _Visit, service: str, operation: str,
                      parameters: Mapping[str, object], outcome: str,
                      error_code: str | None, status: int) -> None:
        await self._append(visit.caller, visit.session.access_key_id,
                           visit.request.source_ip, service, operation, parameters, outcome,
                           error_code, status)

    async def _record_sign_in(self, request: Request, key_id: str,
                              session: ConsoleSession | None, outcome: str,
                              error_code: str | None, status: int) -> None:
        caller = None if session is None else self._caller(session, request)
        await self._append(caller, key_id, request.source_ip, ADMIN_SERVICE, SIGN_IN,
                           {"userAgent": request.headers.get("user-agent", "")[:256]},
                           outcome, error_code, status)

    async def _append(self, caller: Caller | None, key_id: str, source_ip: str, service: str,
                      operation: str, parameters: Mapping[str, object], outcome: str,
                      error_code: str | None, status: int) -> None:
        try:
            await asyncio.to_thread(
                self._trail.record, caller=caller, access_key_id=key_id, source_ip=source_ip,
                service=service, operation=operation,
                parameters={**parameters, SOURCE_KEY: SOURCE}, outcome=outcome,
                error_code=error_code, http_status=status)
        except Exception:
            log.exception("the trail refused a record of console %s:%s", service, operation)

    # -- pages ----------------------------------------------------------------------------

    async def _overview_page(self, visit: _Visit) -> Answer:
        service, operation = PAGES["overview"]
        await self._authorized(visit, service, operation, {})
        sample = await self._overview.sample()
        await self._record(visit, service, operation, {}, "allowed", None, 200)
        return self._page(visit, "overview.html", "overview", sample=sample)

    async def _things_page(self, visit: _Visit) -> Answer:
        request = visit.request
        wanted = views.ThingFilter(
            prefix=request.arg("prefix")[:128], thing_type=request.arg("type")[:128],
            group=request.arg("group")[:128],
            connected=request.arg("connected") if request.arg("connected") in ("yes", "no")
            else "", page=request.page())
        connected = frozenset(client.client_id for client in self._live.connected())
        parameters = {key: value for key, value in (
            ("thingNamePrefix", wanted.prefix), ("thingTypeName", wanted.thing_type),
            ("thingGroupName", wanted.group), ("connected", wanted.connected)) if value}
        found = await self._read(visit, "things", parameters,
                                 lambda: views.things(self._services, wanted, connected))
        return self._page(visit, "things.html", "things", found=found, wanted=wanted)

    async def _thing_page(self, visit: _Visit, name: str) -> Answer:
        now = self._clock.time()
        found = await self._read(visit, "thing", {"thingName": name},
                                 lambda: views.thing(self._services, name, now))
        connected = [client for client in self._live.connected() if client.client_id == name]
        return self._page(visit, "thing.html", "things", thing=found, live=connected)

    async def _certificates_page(self, visit: _Visit) -> Answer:
        live = self._live.connected()
        now = self._clock.now()
        page = visit.request.page()
        found = await self._read(visit, "certificates", {},
                                 lambda: views.certificates(self._services, page, now, live))
        return self._page(visit, "certificates.html", "certificates", found=found)

    async def _certificate_page(self, visit: _Visit, certificate_id: str) -> Answer:
        live = self._live.connected()
        now = self._clock.now()
        found = await self._read(
            visit, "certificate", {"certificateId": certificate_id},
            lambda: views.certificate(self._services, certificate_id, now, live))
        confirm = visit.request.arg("confirm")
        may_act = role_allows(visit.session.role, *ACTIONS["certificate-status"])
        return self._page(visit, "certificate.html", "certificates", row=found,
                          confirm=confirm if confirm in SETTABLE_STATUSES else "",
                          done=visit.request.arg("done"), may_act=may_act)

    async def _change(self, visit: _Visit, action: str, parameters: Mapping[str, object],
                      work: Callable[[], _T]) -> _T:
        """Authorize ``action``'s operation and run ``work`` (a change) in a worker thread
        as the API runs a handler: the change commits with its trail record (303, the
        console's answer to a form); a refusal by the service is trailed as an error.

        :raises _Refused: the role may not (403), or the service refused (its status).
        """
        service, operation = ACTIONS[action]
        await self._authorized(visit, service, operation, parameters)
        caller, session = visit.caller, visit.session

        def run() -> tuple[_T, bool]:
            with self._trail.record_with_change(
                    caller=caller, access_key_id=session.access_key_id,
                    source_ip=visit.request.source_ip, service=service, operation=operation,
                    parameters={**parameters, SOURCE_KEY: SOURCE}, outcome="allowed",
                    error_code=None, http_status=303) as change:
                result = work()
            return result, change.committed

        try:
            result, committed = await asyncio.to_thread(run)
        except ServiceError as error:
            await self._record(visit, service, operation, parameters, "error",
                               error.aws_error_type, error.http_status)
            raise _Refused(error.http_status, error.message, error.aws_error_type) from None
        if not committed:
            await self._record(visit, service, operation, parameters, "allowed", None, 303)
        log.info("console: %s %s:%s %s", session.access_key_id, service, operation,
                 dict(parameters))
        return result

    async def _authorization_page(self, visit: _Visit, certificate_id: str) -> Answer:
        """The certificate's "Test authorization" form, and its verdict once filled in."""
        request = visit.request
        client_id = request.arg("client_id")[:128]
        action = request.arg("action", "PUBLISH")
        action = action if action in views.AUTHORIZATION_ACTIONS else "PUBLISH"
        resource = request.arg("resource")[:2048]
        result = None
        if resource:
            result = await self._read(
                visit, "test-authorization",
                {"principal": certificate_id, "clientId": client_id, "actionType": action,
                 "resource": resource},
                lambda: views.authorization_test(self._services, certificate_id, client_id,
                                                 action, resource))
        return self._page(visit, "authorization.html", "certificates",
                          certificate_id=certificate_id, client_id=client_id, action=action,
                          resource=resource, result=result,
                          actions=list(views.AUTHORIZATION_ACTIONS))

    async def _set_certificate_status(self, visit: _Visit, certificate_id: str) -> Answer:
        """UpdateCertificate through the same registry call as the API's: the registry's
        event drops the live sessions of a certificate that is no longer active."""
        new_status = visit.request.form.get("new_status", "")
        identity = self._services.plane.identity
        await self._change(visit, "certificate-status",
                           {"certificateId": certificate_id, "newStatus": new_status},
                           lambda: identity.update_certificate(certificate_id, new_status))
        quoted = urllib.parse.quote(certificate_id, safe="")
        return redirect(f"{PREFIX}/certificates/{quoted}?done={urllib.parse.quote(new_status)}")

    async def _run_audit(self, visit: _Visit) -> Answer:
        """StartOnDemandAuditTask with every check the account has enabled."""
        audit = self._services.audit
        if audit is None:
            raise _Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        service = audit.audit

        def start() -> str:
            checks = [name for name, check in
                      service.describe_account_audit_configuration().checks.items()
                      if check.enabled]
            return service.start_on_demand_audit_task(checks)

        task_id = await self._change(visit, "audit-run", {"targetCheckNames": "enabled"},
                                     start)
        return redirect(f"{PREFIX}/audit?started={urllib.parse.quote(task_id)}")

    async def _policies_page(self, visit: _Visit) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "policies", {},
                                 lambda: views.policies(self._services, page))
        return self._page(visit, "policies.html", "policies", found=found)

    async def _policy_page(self, visit: _Visit, name: str) -> Answer:
        policies = self._services.plane.policies
        versions = await self._read(visit, "policy", {"policyName": name},
                                    lambda: policies.list_policy_versions(name))
        return self._page(visit, "policy.html", "policies", name=name, versions=versions)

    async def _policy_version_page(self, visit: _Visit, name: str, version: str) -> Answer:
        policies = self._services.plane.policies
        found = await self._read(visit, "policy-version",
                                 {"policyName": name, "policyVersionId": version},
                                 lambda: policies.get_policy_version(name, version))
        return self._page(visit, "policy_version.html", "policies", version=found,
                          document=_pretty(found.policy_document),
                          created=visit.request.arg("created") == "1")

    async def _policy_edit_page(self, visit: _Visit, name: str, *, document: str | None = None,
                                problem: str = "", status: int = 200) -> Answer:
        """A new version's form, filled with the default version's document (or what was
        sent, when the registry refused it)."""
        policies = self._services.plane.policies
        policy = await self._read(visit, "policy-edit", {"policyName": name},
                                  lambda: policies.get_policy(name))
        may_edit = role_allows(visit.session.role, *ACTIONS["policy-version-create"])
        answer = self._page(visit, "policy_edit.html", "policies", policy=policy,
                            document=document if document is not None
                            else _pretty(policy.policy_document),
                            problem=problem, may_edit=may_edit)
        return Answer(status, answer.body)

    async def _create_policy_version(self, visit: _Visit, name: str) -> Answer:
        """CreatePolicyVersion; set as default, the broker re-authorizes the live
        sessions bound to the policy (as for the API's call)."""
        form = visit.request.form
        document = form.get("document", "")
        set_as_default = form.get("set_as_default") == "on"
        policies = self._services.plane.policies
        try:
            created = await self._change(
                visit, "policy-version-create",
                {"policyName": name, "policyDocument": document,
                 "setAsDefault": set_as_default},
                lambda: policies.create_policy_version(name, document,
                                                       set_as_default=set_as_default))
        except _Refused as refused:
            if refused.status != 400 and refused.error_code != "VersionsLimitExceededException":
                raise
            return await self._policy_edit_page(visit, name, document=document,
                                                problem=refused.message, status=refused.status)
        quoted = urllib.parse.quote(name, safe="")
        return redirect(f"{PREFIX}/policies/{quoted}/versions/{created.version_id}?created=1")

    async def _policy_diff_page(self, visit: _Visit, name: str) -> Answer:
        request = visit.request
        old, new = request.arg("from")[:10], request.arg("to")[:10]
        found = await self._read(
            visit, "policy-diff", {"policyName": name, "from": old, "to": new},
            lambda: views.policy_diff(self._services, name, old, new))
        return self._page(visit, "policy_diff.html", "policies", name=name, diff=found)

    async def _audit_page(self, visit: _Visit) -> Answer:
        page, now = visit.request.page(), self._clock.now()
        found = await self._read(visit, "audit", {},
                                 lambda: views.findings(self._services, page, now))
        enabled = self._services.audit is not None
        role = visit.session.role
        return self._page(visit, "audit.html", "audit", found=found,
                          label=views.resource_label,
                          may_run=enabled and role_allows(role, *ACTIONS["audit-run"]),
                          may_suppress=enabled and role_allows(role, *ACTIONS["audit-suppress"]),
                          may_unsuppress=enabled and role_allows(
                              role, *ACTIONS["audit-unsuppress"]),
                          started=visit.request.arg("started")[:64],
                          done=visit.request.arg("done")[:32])

    async def _suppress_form(self, visit: _Visit, finding_id: str) -> Answer:
        audit = self._services.audit
        if audit is None:
            raise _Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        finding = await self._read(visit, "finding", {"findingId": finding_id},
                                   lambda: audit.audit.describe_audit_finding(finding_id))
        return self._page(visit, "suppress.html", "audit", finding=finding,
                          label=views.resource_label, durations=list(views.SUPPRESSION_DAYS),
                          may_suppress=role_allows(visit.session.role,
                                                   *ACTIONS["audit-suppress"]))

    async def _suppress(self, visit: _Visit) -> Answer:
        """CreateAuditSuppression for a finding's check and resource (looked up here: the
        form names the finding, not the resource)."""
        form = visit.request.form
        finding_id = form.get("finding_id", "")[:128]
        duration = form.get("duration", "")
        description = form.get("description", "")[:1000]
        if duration not in views.SUPPRESSION_DAYS:
            raise _Refused(400, "Choose how long to suppress it.", "InvalidRequestException")
        if self._services.audit is None:
            raise _Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        now = self._clock.now()
        await self._change(visit, "audit-suppress",
                           {"findingId": finding_id, "duration": duration,
                            "description": description},
                           lambda: views.suppress_finding(self._services, finding_id,
                                                          duration, description, now))
        return redirect(f"{PREFIX}/audit?done=suppressed")

    async def _unsuppress(self, visit: _Visit) -> Answer:
        form = visit.request.form
        check_name = form.get("check_name", "")[:128]
        try:
            identifier = json.loads(form.get("resource_identifier", ""))
        except ValueError:
            identifier = None
        if not isinstance(identifier, dict):
            raise _Refused(400, "The suppression's resource is malformed.",
                           "InvalidRequestException")
        audit = self._services.audit
        if audit is None:
            raise _Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        await self._change(visit, "audit-unsuppress",
                           {"checkName": check_name, "resourceIdentifier": identifier},
                           lambda: audit.audit.delete_audit_suppression(check_name,
                                                                        identifier))
        return redirect(f"{PREFIX}/audit?done=unsuppressed")

    async def _detect_page(self, visit: _Visit) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "detect", {},
                                 lambda: views.violations(self._services, page))
        return self._page(visit, "detect.html", "detect", found=found,
                          detect_enabled=self._services.detect is not None)

    async def _jobs_page(self, visit: _Visit) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "jobs", {}, lambda: views.jobs(self._services, page))
        return self._page(visit, "jobs.html", "jobs", found=found)

    async def _job_page(self, visit: _Visit, job_id: str) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "job", {"jobId": job_id},
                                 lambda: views.job(self._services, job_id, page))
        return self._page(visit, "job.html", "jobs", job=found)

    async def _trail_page(self, visit: _Visit, verification: Any) -> Answer:
        request = visit.request
        outcome = request.arg("outcome")
        wanted = views.TrailFilter(request.arg("operation")[:128],
                                   outcome if outcome in ("allowed", "denied", "error") else "",
                                   request.page())
        parameters = {key: value for key, value in (
            ("operation", wanted.operation), ("outcome", wanted.outcome)) if value}
        found = await self._read(visit, "trail", parameters,
                                 lambda: views.trail(self._services, wanted))
        may_verify = role_allows(visit.session.role, *ACTIONS["trail-verify"])
        return self._page(visit, "trail.html", "trail", found=found, wanted=wanted,
                          verification=verification, may_verify=may_verify,
                          source=views.source_of)

    async def _verify_trail(self, visit: _Visit) -> Answer:
        service, operation = ACTIONS["trail-verify"]
        await self._authorized(visit, service, operation, {})
        result = await asyncio.to_thread(self._services.trail.verify)
        await self._record(visit, service, operation, {}, "allowed", None, 200)
        return await self._trail_page(visit, result)

    # -- the overview's live stream -----------------------------------------------------------

    async def _stream(self, request: Request, receive: Receive, send: Send) -> None:
        """``text/event-stream``: one ``overview`` event every :data:`STREAM_INTERVAL`
        seconds, until the client goes, the session ends (the stream does not keep it
        alive; its key is looked up again at each update), or the server stops. Opening it is trailed once, as the overview."""
        session = await self._session(request, touch=True)
        if session is None:
            await send_answer(send, Answer(401, b"sign in again\n", "text/plain; charset=utf-8"))
            return
        visit = _Visit(request, session, self._caller(session, request))
        service, operation = PAGES["overview"]
        try:
            await self._authorized(visit, service, operation, {"stream": True})
        except _Refused as refused:
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

    # -- rendering ------------------------------------------------------------------------------

    def _render(self, template: str, session: ConsoleSession | None, **values: Any) -> bytes:
        return self._templates.get_template(template).render(
            session=session, prefix=PREFIX, **values).encode("utf-8")

    def _page(self, visit: _Visit, template: str, section: str, **values: Any) -> Answer:
        return Answer(200, self._render(template, visit.session, section=section, **values))

    def _error(self, session: ConsoleSession | None, status: int, message: str) -> Answer:
        return Answer(status, self._render("error.html", session, section="", status=status,
                                           message=message))


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


def _when(value: object) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS UTC`` (datetimes, or epoch seconds)."""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def _pretty(document: str) -> str:
    try:
        return json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    except ValueError:
        return document
