"""The API as an ASGI application: one request, start to finish.

Theory of operation
-------------------
For every HTTP request:

1. **Body** — read in full (at most :data:`MAX_BODY_BYTES`, else 413, trailed as
   ``denied`` with what the unverified ``Authorization`` header and the path say about
   the caller and the operation: :meth:`ApiApplication.record_refusal`), within the body
   timeout from the end of the headers (else ``408 RequestTimeoutException`` and the
   connection is closed: what is left of the body would arrive as the next request).
   The headers themselves, and the number of connections per source address, are
   bounded below the application, in :mod:`._connections`; what is refused there (and a
   request h11 cannot parse) is trailed through :meth:`ApiApplication.record_unparsed`.
2. **Signature structure** — parse ``Authorization`` (:mod:`._sigv4`). The credential
   scope's *service* picks the served service (``iot`` / ``iotdata`` /
   ``iot-jobs-data`` / ``signer``); it is part of what is signed, so it can be trusted once the
   signature checks out.
3. **Route** — method and path → operation of that service (:mod:`._models`). A routing
   failure is held back until the caller is authenticated: unauthenticated callers learn
   nothing about routes.
4. **Authenticate** — normal mode: look the access key up in the
   :class:`~._auth.CredentialSource`, check the clock (±5 min) and the signature. A
   request with a security token is signed with temporary credentials: the token is
   resolved through the :class:`~._auth.SessionSource` instead (:mod:`._sessions`).
   Emulator mode: any key is accepted as an ``admin`` caller and the signature is not
   verified (there is no secret to verify it with); the region of the scope names the
   ARNs.
5. **Authorize** — :func:`~._auth.role_allows`; a refusal is ``403
   AccessDeniedException``.
6. **Bind and validate** the input with the operation's model (:mod:`._binding`).
7. **Handle** — the handler registered for the operation (:mod:`._handlers`), in a worker
   thread unless it must run on the broker's loop; an operation without one answers
   ``NotImplementedException`` naming it. The handler runs inside
   :meth:`~._auth.TrailSink.record_with_change`: the first database transaction it
   commits — the call's change — appends the call's record (as the call is answered when
   it succeeds) in that same transaction, so that a crash (``kill -9``) leaves the change
   and its record, or neither.
8. **Serialize** the result with the output shape (:mod:`._serialize`). Every
   refusal — an :class:`~._errors.ApiError` or a service's own error (registry, jobs,
   shadow, …: any :class:`~bastion.errors.ServiceError`) — is answered here, in one
   place, in the AWS error shape (:func:`~._errors.wire_error`). JSON is parsed only
   within a nesting depth (:mod:`._nesting`); a :class:`RecursionError` that still
   escapes — a service parsing a deep document carried in a string member — is the
   caller's ``400 InvalidRequestException``, not a 500.
9. **Record** the call in the :class:`~._auth.TrailSink`, whatever the outcome, unless
   its record committed with its change and the answer is the one recorded: a refusal
   before authentication (a malformed or missing signature, an unknown key, a bad
   signature, a clock skew) is ``denied`` with the access key id the request named. A
   call that fails after its change committed (a later step refused, say) has two
   records: the change's, and the answer's.

``POST /_bastion/reset`` exists only in emulator mode (see :mod:`._reset`).

``GET /_bastion/health/live`` and ``GET /_bastion/health/ready`` answer a load balancer's
or an orchestrator's probes without SigV4 and without a trail record (a probe every few
seconds is not an API call): ``live`` is 200 while the process serves; ``ready`` is 200
when every check of the :data:`Readiness` callable passes, else 503, with the checks as
JSON either way (no secret in them: component names and "ok" or why not).

``GET /healthz`` and ``GET /readyz`` are the same two probes under the names
orchestrators expect.

Paths under ``/console`` are handed, before anything else is read, to the web console
(:mod:`bastion.console`) when one is plugged: it has its own sign-in, sessions and CSRF
checks, and trails through the same sink. Without one they are ordinary (refused)
requests.

``GET /metrics`` is handed to the :class:`MetricsDoor`, when one is plugged, before SigV4:
it answers a scraper holding the metrics bearer token (:mod:`bastion.metrics`), and
refuses anyone else with 401, trailed as a denied ``bastion:ScrapeMetrics``. Without a
door the path is an ordinary (unsigned, so refused) API request.

Every answer is counted in :attr:`ApiApplication.calls` by service, operation, outcome
and HTTP status (plain integers on the loop; the metrics read them).

``GET /confirmdestination/<token>`` without an ``Authorization`` header confirms the topic
rule destination waiting for that token: the ``enableUrl`` Bastion sends a new HTTP
destination, which AWS lets the endpoint open as is. With SigV4 the same path is the
ordinary ConfirmTopicRuleDestination call.

``GET /_bastion/files/<name>?X-Bastion-Expires=…&X-Bastion-Signature=…`` serves a file
uploaded to Bastion without SigV4: the URL's signature is the authorization
(:mod:`bastion.files`); 403 for a missing, bad or expired signature, 404 for an unknown
file, 404 for every such path when the file service is not plugged in. The other file
requests — the operator's ``PUT``/``GET``/``DELETE /_bastion/files…`` and a device's
``PUT /_bastion/uploads/…`` — go to the :class:`~._files.FilesDoor`; a ``PUT``'s body is
not read here but streamed to disk by the door, the call trailed like any other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.errors import ServiceError
from bastion.events import EventSink
from bastion.files import FILES_PATH, FilesError, FileService

from ._auth import (
    ADMIN_SERVICE,
    OUTCOME_ALLOWED,
    OUTCOME_DENIED,
    OUTCOME_ERROR,
    Caller,
    ChangeRecord,
    CredentialSource,
    Role,
    SessionSource,
    TrailSink,
    role_allows,
)
from ._binding import bind_input, parse_query
from ._connections import Refusal
from ._context import Gateway, OperationContext, ServiceDirectory
from ._errors import (
    ApiError,
    access_denied,
    internal_failure,
    invalid_request,
    not_implemented,
    request_timeout,
    wire_error,
)
from ._files import Disconnected, FilesDoor, is_files_request, is_streamed_upload
from ._handlers import TABLE, HandlerSpec, HandlerTable
from ._models import Catalog, RouteMatch, ServiceApi, load_catalog
from ._reset import reset_emulator
from ._serialize import (
    JSON_CONTENT_TYPE,
    Response,
    serialize_error,
    serialize_output,
    success_status,
)
from ._sessions import caller_session, security_token, trail_parameters
from ._sigv4 import (
    HttpRequest,
    SigV4Authorization,
    check_clock,
    invalid,
    parse_authorization,
    unrecognized_client,
    verify_signature,
)

log = logging.getLogger("bastion.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES: Final = 2 * 1024 * 1024
BODY_TIMEOUT: Final = 30.0
RESET_PATH: Final = "/_bastion/reset"
HEALTH_PREFIX: Final = "/_bastion/health/"
HEALTH_ALIASES: Final = {"/healthz": "live", "/readyz": "ready"}
"""The usual probe paths, answered as ``/_bastion/health/live`` and ``/ready``."""
CONSOLE_PREFIX: Final = "/console"
CONFIRM_DESTINATION_PATH: Final = "/confirmdestination/"
"""ConfirmTopicRuleDestination's path: also a destination's ``enableUrl``, opened without
SigV4 (:meth:`ApiApplication._confirm_destination`)."""

Readiness = Callable[[], Awaitable[dict[str, str]]]
"""The checks behind ``/_bastion/health/ready``: each name with "ok", or why not."""

CallCounts = Counter[tuple[str, str, str, int]]
"""Requests answered, by ``(service, operation, outcome, HTTP status)``."""

SCRAPE_OPERATION: Final = "ScrapeMetrics"
"""How the trail and the counts name a ``GET /metrics`` (service ``bastion``)."""


class ScrapeAnswer(Protocol):
    """What a :class:`MetricsDoor` answers (``refusal``: why not served, or ``None``)."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def refusal(self) -> str | None: ...


class MetricsDoor(Protocol):
    """The scrape endpoint the API serves on its port (:class:`bastion.metrics.MetricsEndpoint`)."""

    @property
    def path(self) -> str: ...

    def load(self) -> None:
        """Ready it (blocking; before serving). Raises what keeps it from serving."""

    def answer(self, authorization: str | None) -> ScrapeAnswer:
        """Answer one scrape, on the event loop."""


@dataclass(slots=True)
class _Call:
    """What the trail learns about one request, filled in as the pipeline advances."""

    source_ip: str
    access_key_id: str = ""
    caller: Caller | None = None
    service: str = ""
    operation: str = ""
    parameters: Mapping[str, object] = field(default_factory=dict)
    outcome: str = OUTCOME_DENIED
    change: ChangeRecord | None = None  # the record joined to the call's change, if any
    change_status: int = 0              # the HTTP status that record says


class CallWatch(Protocol):
    """What watches the API's callers (:class:`bastion.threats.ThreatService`)."""

    def blocked(self, source_ip: str) -> float | None:
        """Until when (epoch seconds) requests from ``source_ip`` are refused."""

    def observe_call(self, *, source_ip: str, access_key_id: str, authenticated: bool,
                     operation: str, parameters: Mapping[str, Any], outcome: str,
                     error_code: str | None) -> None:
        """One answered request (on the event loop: cheap, no I/O)."""


class ApiApplication:
    """The ASGI callable.

    :param credentials: the access keys (normal mode); ``None`` refuses every request
        until keys are configured.
    :param trail: where every call is recorded.
    :param emulator: accept any SigV4 credentials (see the module docstring).
    :param account_id: the account id of callers (the ARNs' account).
    :param publish: the registry's event sink (used by the emulator reset).
    :param clock: the current time, for the signature's clock check.
    :param files: serves ``/_bastion/files/…`` (``None``: those paths are 404).
    :param body_timeout: seconds to receive a request's body once its headers are in.
    :param sessions: resolves temporary credentials (``None``: requests carrying a
        security token are refused).
    :param metrics: serves ``GET /metrics`` (``None``: the path is not special).
    :param calls: where answers are counted (default: a new :data:`CallCounts`).
    :param threats: sees every answered request and may refuse a source address
        (threat detection's temporary blocks); ``None``: nothing watches.
    :param console: serves the paths under ``/console`` (``None``: they are not special).
    """

    def __init__(self, *, gateway: Gateway, services: ServiceDirectory,
                 credentials: CredentialSource | None, trail: TrailSink, emulator: bool,
                 account_id: str, publish: EventSink | None = None,
                 table: HandlerTable = TABLE, catalog: Catalog | None = None,
                 clock: Clock | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                 files: FileService | None = None,
                 body_timeout: float = BODY_TIMEOUT,
                 readiness: Readiness | None = None,
                 sessions: SessionSource | None = None,
                 metrics: MetricsDoor | None = None,
                 calls: CallCounts | None = None,
                 threats: CallWatch | None = None,
                 console: Asgi | None = None) -> None:
        self._gateway = gateway
        self._console = console
        self._services = services
        self._credentials = credentials
        self._trail = trail
        self._emulator = emulator
        self._account_id = account_id
        self._publish = publish
        self._table = table
        self._catalog = catalog or load_catalog()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._max_body = max_body_bytes
        self._files = files
        self._files_door = None if files is None else FilesDoor(files, self._authenticate)
        self._body_timeout = body_timeout
        self._readiness = readiness
        self._sessions = sessions
        self._metrics = metrics
        self.calls: CallCounts = calls if calls is not None else Counter()
        self._threats = threats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = tuple((name.decode("latin-1").lower(), value.decode("latin-1"))
                        for name, value in scope.get("headers", ()))
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        request = HttpRequest(
            method=scope["method"].upper(),
            raw_path=raw_path.decode("latin-1").split("?", 1)[0],
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=b"",
        )
        source_ip = _source_ip(scope)
        console = self._console
        if console is not None and (request.raw_path == CONSOLE_PREFIX
                                    or request.raw_path.startswith(CONSOLE_PREFIX + "/")):
            await console(scope, receive, send)
            return
        if request.method == "GET" and request.raw_path in HEALTH_ALIASES:
            path = HEALTH_PREFIX + HEALTH_ALIASES[request.raw_path]
            await _send_response(send, await self._health(path), str(uuid.uuid4()))
            return
        if request.raw_path.startswith(HEALTH_PREFIX) and request.method == "GET":
            await _send_response(send, await self._health(request.raw_path),
                                 str(uuid.uuid4()))
            return
        metrics = self._metrics
        if metrics is not None and request.raw_path == metrics.path and request.method == "GET":
            await _send_response(send, await self._scrape(metrics, request, source_ip),
                                 str(uuid.uuid4()))
            return
        if self._files_door is not None and is_streamed_upload(request):
            await self._streamed(request, receive, send, source_ip)
            return
        try:
            async with asyncio.timeout(self._body_timeout):
                body, too_large = await _read_body(receive, self._max_body)
        except _Disconnected:
            return
        except TimeoutError:
            log.info("%s: request body not received within %.1f s; closing",
                     source_ip or "?", self._body_timeout)
            error = request_timeout(
                f"The request body was not received within {self._body_timeout:g} seconds")
            await self.record_refusal(request, source_ip, error)
            await _send_response(send, serialize_error(error), str(uuid.uuid4()), close=True)
            return
        request = dataclasses.replace(request, body=body)
        if too_large:
            refused = ApiError("RequestEntityTooLargeException", 413,
                               f"The request body exceeds {self._max_body} bytes")
            response = serialize_error(refused)
            await self.record_refusal(request, source_ip, refused)
        else:
            response = await self.handle(request, source_ip)
        await _send_response(send, response, str(uuid.uuid4()))

    async def _streamed(self, request: HttpRequest, receive: Receive, send: Send,
                        source_ip: str) -> None:
        """A ``PUT`` of a file, its body read by the files door as it arrives; when it is
        refused before the whole body was read, the connection is closed."""
        door = self._files_door
        assert door is not None
        complete = False

        async def stream() -> Response:
            nonlocal complete
            answer = await door.receive(request, receive, call, source_ip)
            complete = True
            return answer

        call = _Call(source_ip)
        try:
            response = await self.handle(request, source_ip, call=call, pipeline=stream)
        except Disconnected:
            return
        await _send_response(send, response, str(uuid.uuid4()), close=not complete)

    async def handle(self, request: HttpRequest, source_ip: str, *, call: _Call | None = None,
                     pipeline: Callable[[], Awaitable[Response]] | None = None) -> Response:
        """Answer one request (steps 2-9 of the theory of operation); ``pipeline``
        replaces them (a streamed upload)."""
        call = call if call is not None else _Call(source_ip)
        threats = self._threats
        try:
            if threats is not None:
                until = threats.blocked(source_ip)
                if until is not None:
                    raise ApiError(
                        "AccessDeniedException", 403,
                        "Requests from this address are refused until "
                        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(until))} after "
                        "too many failed authentications")
            response = await (pipeline() if pipeline is not None
                              else self._pipeline(request, call))
            call.outcome = OUTCOME_ALLOWED
            error_code = None
        except ServiceError as error:
            refused = wire_error(error, call.service)
            if self._json(call) and refused.aws_error_type == "InvalidRequestException":
                # ACM's model has no InvalidRequestException: its validation error is this
                refused = ApiError("ValidationException", 400, refused.message)
            response = serialize_error(refused, json_protocol=self._json(call))
            error_code = refused.aws_error_type
        except Disconnected:
            await self._record(call, "ClientDisconnected", 499)
            raise
        except RecursionError:
            log.warning("%s %s: a document nested too deeply for %s:%s", request.method,
                        request.raw_path, call.service, call.operation)
            refused = invalid_request("The request holds a JSON document nested too deeply")
            response = serialize_error(refused, json_protocol=self._json(call))
            error_code = refused.aws_error_type
        except Exception:
            log.exception("%s %s: internal error in %s:%s", request.method,
                          request.raw_path, call.service, call.operation)
            failure = internal_failure()
            response = serialize_error(failure, json_protocol=self._json(call))
            error_code = failure.aws_error_type
        log.debug("%s %s -> %d %s", request.method, request.raw_path, response.status,
                  error_code or "")
        self._count(call, response.status)
        if threats is not None:
            try:
                threats.observe_call(
                    source_ip=source_ip, access_key_id=call.access_key_id,
                    authenticated=call.caller is not None, operation=call.operation,
                    parameters=call.parameters, outcome=call.outcome, error_code=error_code)
            except Exception:
                log.exception("threat detection failed on %s:%s", call.service,
                              call.operation)
        change = call.change
        if change is not None and change.committed:
            if error_code is None and response.status == call.change_status:
                return response  # recorded with its change, as it was answered
            log.warning("%s:%s answered %d %s after its change committed (with its record "
                        "saying %d); recording the answer too", call.service,
                        call.operation, response.status, error_code or "",
                        call.change_status)
        await self._record(call, error_code, response.status)
        return response

    async def _pipeline(self, request: HttpRequest, call: _Call) -> Response:
        if request.raw_path == RESET_PATH:
            return await self._reset(request, call)
        if self._files_door is not None and is_files_request(request) \
                and not (request.method == "GET" and request.raw_path.startswith(FILES_PATH)):
            return await self._files_door.serve(request, call, call.source_ip)
        if request.raw_path.startswith(FILES_PATH):
            return await self._download(request, call)
        if (request.raw_path.startswith(CONFIRM_DESTINATION_PATH) and request.method == "GET"
                and request.header("authorization") is None):
            return await self._confirm_destination(request, call)
        auth = parse_authorization(request)
        call.access_key_id = auth.credential.access_key_id
        service = self._catalog.by_signing_name(auth.credential.service)
        if service is None:
            names = ", ".join(f"'{name}'" for name in self._catalog.signing_names)
            raise invalid(f"Credential should be scoped to correct service: one of {names}.")
        call.service = service.name
        query = parse_query(request.raw_query)
        match: RouteMatch | None = None
        route_error: ApiError | None = None
        try:
            match = service.match(request.method, request.raw_path, query,
                                  request.header("x-amz-target"))
            call.operation = match.operation.name
        except ApiError as error:
            route_error = error
        caller = await self._authenticate(request, auth, call.source_ip)
        call.caller = caller
        call.outcome = OUTCOME_ERROR
        if route_error is not None or match is None:
            raise route_error or internal_failure()
        operation = match.operation
        allowed = role_allows(caller.role, service.name, operation.name)
        spec = self._table.get(service.name, operation.name)
        if not allowed or spec is None:
            # Refused before validation; the trail still gets what could be bound.
            try:
                call.parameters = bind_input(operation, match.labels, query, request.header,
                                             request.body, validate=False)
            except ApiError:
                pass
            if not allowed:
                call.outcome = OUTCOME_DENIED
                raise access_denied(
                    f"User: {caller.access_key_id} (role {caller.role.value}) is not "
                    f"authorized to perform: iot:{operation.name}")
            raise not_implemented(service.name, operation.name)
        params = bind_input(operation, match.labels, query, request.header, request.body)
        call.parameters = params
        host_header = request.header("host") or ""
        host = _host_without_port(host_header)
        status = success_status(operation)
        if spec.on_loop:
            context = OperationContext(caller, self._services.default, self._gateway, host,
                                       host_header, self._services.default_regional)
            answer = self._run_recorded(spec, context, params, call, status)
            result = await answer if inspect.isawaitable(answer) else answer
        else:
            def run() -> Mapping[str, Any]:
                services = self._services.for_region(caller.region)
                context = OperationContext(caller, services, self._gateway, host, host_header,
                                           self._services.regional_for(caller.region))
                answer = self._run_recorded(spec, context, params, call, status)
                assert not inspect.isawaitable(answer), "only on_loop handlers may await"
                return answer
            result = await asyncio.to_thread(run)
        return serialize_output(operation, result, json_protocol=service.json_protocol)

    def _run_recorded(self, spec: HandlerSpec, context: OperationContext,
                      params: dict[str, Any], call: _Call, status: int
                      ) -> Mapping[str, Any] | Awaitable[Mapping[str, Any]]:
        """Run the handler in this thread, its change carrying the call's record as the
        call is answered when it succeeds (``allowed``, ``status``). (An ``on_loop``
        handler may answer with an awaitable; those change nothing in the store.)"""
        with self._trail.record_with_change(
                caller=call.caller, access_key_id=call.access_key_id,
                source_ip=call.source_ip, service=call.service, operation=call.operation,
                parameters=trail_parameters(call.caller, params), outcome=OUTCOME_ALLOWED,
                error_code=None, http_status=status) as change:
            call.change, call.change_status = change, status
            return spec.handler(context, params)

    async def _authenticate(self, request: HttpRequest, auth: SigV4Authorization,
                            source_ip: str, *, streamed_body: bool = False) -> Caller:
        credential = auth.credential
        if self._emulator:
            try:
                Account(credential.region, self._account_id)
            except ValueError:
                raise invalid("Credential should be scoped to a valid region.") from None
            return Caller(credential.access_key_id, Role.ADMIN, source_ip, credential.region,
                          self._account_id, emulated=True)
        token = security_token(request)
        if token is not None:  # temporary credentials
            if self._sessions is None:
                raise unrecognized_client()
            claims = await asyncio.to_thread(self._sessions.resolve,
                                             credential.access_key_id, token)
            check_clock(auth, self._clock.now())
            verify_signature(request, auth, claims.secret_access_key,
                             streamed_body=streamed_body)
            return Caller(credential.access_key_id, Role(claims.role), source_ip,
                          credential.region, self._account_id, emulated=False,
                          session=caller_session(claims))
        source = self._credentials
        if source is None:
            raise unrecognized_client()
        found = await asyncio.to_thread(source.lookup, credential.access_key_id)
        if found is None:
            raise unrecognized_client()
        secret, role = found[0], Role(found[1])  # any str enum with Role's values
        check_clock(auth, self._clock.now())
        verify_signature(request, auth, secret, streamed_body=streamed_body)
        return Caller(credential.access_key_id, role, source_ip, credential.region,
                      self._account_id, emulated=False)

    async def _health(self, path: str) -> Response:
        kind = path[len(HEALTH_PREFIX):]
        body: dict[str, object]
        if kind == "live":
            status, body = 200, {"status": "live"}
        elif kind == "ready":
            checks = await self._readiness() if self._readiness is not None else {}
            ready = all(value == "ok" for value in checks.values())
            status = 200 if ready else 503
            body = {"status": "ready" if ready else "unavailable", "checks": checks}
        else:
            status, body = 404, {"message": "Use /_bastion/health/live or /ready"}
        return Response(status, (("content-type", JSON_CONTENT_TYPE),
                                 ("cache-control", "no-store")),
                        json.dumps(body).encode())

    async def _scrape(self, metrics: MetricsDoor, request: HttpRequest,
                      source_ip: str) -> Response:
        """``GET /metrics`` (see the module docstring): a refusal is trailed as denied,
        a served scrape is only counted."""
        answer = metrics.answer(request.header("authorization"))
        call = _Call(source_ip, service=ADMIN_SERVICE, operation=SCRAPE_OPERATION,
                     outcome=OUTCOME_ALLOWED if answer.refusal is None else OUTCOME_DENIED)
        self._count(call, answer.status)
        if answer.refusal is not None:
            log.info("%s: metrics scrape refused: %s", source_ip or "?", answer.refusal)
            call.parameters = {"reason": answer.refusal}
            await self._record(call, "UnauthorizedException", answer.status)
        return Response(answer.status, answer.headers, answer.body)

    def _count(self, call: _Call, status: int) -> None:
        self.calls[(call.service, call.operation, call.outcome, status)] += 1

    async def _confirm_destination(self, request: HttpRequest, call: _Call) -> Response:
        """``GET /confirmdestination/<token>`` without SigV4: a destination's ``enableUrl``
        opened as is, as AWS allows (the token, 256 random bits sent only to the
        destination, is the authorization). Trailed as ConfirmTopicRuleDestination with
        the token shortened; an unknown token is ``401 UnauthorizedException``."""
        token = urllib.parse.unquote(request.raw_path[len(CONFIRM_DESTINATION_PATH):])
        call.service, call.operation = "iot", "ConfirmTopicRuleDestination"
        call.parameters = {"confirmationToken": token[:8] + "…"}
        call.outcome = OUTCOME_ERROR
        rules = self._gateway.services.rules

        def run() -> None:
            with self._trail.record_with_change(
                    caller=None, access_key_id="", source_ip=call.source_ip,
                    service=call.service, operation=call.operation,
                    parameters=call.parameters, outcome=OUTCOME_ALLOWED, error_code=None,
                    http_status=200) as change:
                call.change, call.change_status = change, 200
                rules.confirm_destination(token)

        await asyncio.to_thread(run)
        return Response(200, (("content-type", JSON_CONTENT_TYPE),), b"{}")

    async def _reset(self, request: HttpRequest, call: _Call) -> Response:
        if not self._emulator:
            raise ApiError("UnknownOperationException", 404,
                           f"{RESET_PATH} exists only in emulator mode")
        call.service, call.operation = ADMIN_SERVICE, "ResetEmulator"
        call.outcome = OUTCOME_ERROR
        if request.method != "POST":
            raise ApiError("MethodNotAllowedException", 405, f"Use POST {RESET_PATH}")
        await reset_emulator(self._gateway, self._publish)
        log.info("emulator state reset")
        return Response(200, (("content-type", JSON_CONTENT_TYPE),), b"{}")

    async def _download(self, request: HttpRequest, call: _Call) -> Response:
        """``GET /_bastion/files/<name>`` with a presigned URL (see the module docstring)."""
        call.service, call.operation = ADMIN_SERVICE, "DownloadFile"
        call.parameters = {"path": request.raw_path}
        call.outcome = OUTCOME_ERROR
        files = self._files
        if files is None:
            raise ApiError("ResourceNotFoundException", 404, "No files are served here")
        if request.method != "GET":
            raise ApiError("MethodNotAllowedException", 405, "Use GET with a presigned URL")
        try:
            row, data = await asyncio.to_thread(files.download, request.raw_path,
                                                request.raw_query)
        except FilesError as error:
            if error.http_status == 403:
                call.outcome = OUTCOME_DENIED
            raise
        headers = (("content-type", "application/octet-stream"),
                   ("x-bastion-sha256", row.sha256))
        return Response(200, headers, data)

    async def record_refusal(self, request: HttpRequest, source_ip: str,
                             refused: ApiError) -> None:
        """Trail a request refused before the pipeline ran (e.g. a body too large) as
        ``denied``, with what it says about itself: the access key id and service of its
        ``Authorization`` header and the operation its path routes to — unverified, as
        the trail records for any failed authentication. Never raises.

        :param request: the request as far as it was read (its body may be empty).
        :param refused: the error answered.
        """
        call = _Call(source_ip)
        content_length = request.header("content-length")
        if content_length is not None:
            call.parameters = {"contentLength": content_length}
        try:
            self._describe(request, call)
        except ServiceError:
            pass  # as much as could be learned; the refusal is recorded regardless
        self._count(call, refused.http_status)
        await self._record(call, refused.aws_error_type, refused.http_status)

    async def record_unparsed(self, refusal: Refusal) -> None:
        """Trail a request refused below the application, before any of it was parsed
        (:mod:`._connections`: a malformed request, headers too slow, too many
        connections from one address), as ``denied``: the source address and the reason,
        nothing of what was sent. Never raises.
        """
        call = _Call(refusal.source_ip, parameters={"reason": refusal.reason})
        self._count(call, refusal.http_status)
        await self._record(call, refusal.error_code, refusal.http_status)

    def _describe(self, request: HttpRequest, call: _Call) -> None:
        auth = parse_authorization(request)
        call.access_key_id = auth.credential.access_key_id
        service = self._catalog.by_signing_name(auth.credential.service)
        if service is None:
            return
        call.service = service.name
        match = service.match(request.method, request.raw_path,
                              parse_query(request.raw_query), request.header("x-amz-target"))
        call.operation = match.operation.name

    async def _record(self, call: _Call, error_code: str | None, status: int) -> None:
        try:
            await asyncio.to_thread(
                self._trail.record, caller=call.caller, access_key_id=call.access_key_id,
                source_ip=call.source_ip, service=call.service, operation=call.operation,
                parameters=trail_parameters(call.caller, call.parameters),
                outcome=call.outcome, error_code=error_code, http_status=status)
        except Exception:
            log.exception("the trail refused a record of %s:%s", call.service, call.operation)

    def _json(self, call: _Call) -> bool:
        """Whether the call's service speaks the JSON protocol (its errors carry
        ``__type``)."""
        service = self._catalog.services.get(call.service)
        return service is not None and service.json_protocol

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def service(self, name: str) -> ServiceApi:
        return self._catalog.services[name]


class _Disconnected(Exception):
    pass


def _host_without_port(host_header: str) -> str:
    host = host_header.strip()
    if host.startswith("["):
        end = host.find("]")
        return host[:end + 1] if end > 0 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _source_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


async def _send_response(send: Send, response: Response, request_id: str, *,
                         close: bool = False) -> None:
    headers = [(b"x-amzn-requestid", request_id.encode("ascii")),
               (b"content-length", str(len(response.body)).encode("ascii"))]
    if close:  # the server (h11) closes the connection once the response is sent
        headers.append((b"connection", b"close"))
    headers.extend((name.encode("latin-1"), value.encode("latin-1"))
                   for name, value in response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
