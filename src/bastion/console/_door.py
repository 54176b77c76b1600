"""What every console page and action goes through: the role check of the API operation
it corresponds to, the trail record (with the console as its source), the worker thread,
and rendering.

:class:`Door` holds these steps; :class:`~._pages.Pages` builds the pages and actions on
them, and :class:`~._app.ConsoleApplication` (the ASGI application) routes requests to
those. Every page names its operation in :data:`PAGES`, every action (a ``POST``) in
:data:`ACTIONS`; :func:`bastion.api.role_allows` decides for both, as for the API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import jinja2

from bastion.account import Account
from bastion.api import ADMIN_SERVICE, Caller, TrailSink, role_allows
from bastion.clock import Clock
from bastion.errors import ServiceError
from bastion.services import Services

from ._http import Answer, Request
from ._live import LiveFleet
from ._sessions import ConsoleSession

log = logging.getLogger("bastion.console")

PREFIX: Final = "/console"
SOURCE_KEY: Final = "bastion:source"
"""The trail parameter naming the console as a record's source."""
SOURCE: Final = "console"

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
    "threats": ("guardduty", "ListFindings"),
    "baseline": (ADMIN_SERVICE, "DescribeBaseline"),
}
"""Each page and the API operation whose role check it passes (reads: every role)."""

ACTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "certificate-status": ("iot", "UpdateCertificate"),
    "detect-verify": ("iot", "PutVerificationStateOnViolation"),
    "threat-archive": ("guardduty", "ArchiveFindings"),
    "threat-unarchive": ("guardduty", "UnarchiveFindings"),
    "audit-run": ("iot", "StartOnDemandAuditTask"),
    "audit-suppress": ("iot", "CreateAuditSuppression"),
    "audit-unsuppress": ("iot", "DeleteAuditSuppression"),
    "policy-version-create": ("iot", "CreatePolicyVersion"),
    "trail-verify": (ADMIN_SERVICE, "VerifyTrail"),
}
"""Each action (a POST) and the API operation whose role check it passes."""

_T = TypeVar("_T")


class Refused(Exception):
    """An answer other than the page: a refusal (its status and message)."""

    def __init__(self, status: int, message: str, error_code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


@dataclass(slots=True)
class Visit:
    """One request of a signed-in user, as the trail learns it."""

    request: Request
    session: ConsoleSession
    caller: Caller


class Door:
    """The steps every page and action takes (see the module docstring). The
    application sets the attributes."""

    _services: Services
    _live: LiveFleet
    _trail: TrailSink
    _clock: Clock
    _account: Account
    _templates: jinja2.Environment

    # -- authorization and the trail --------------------------------------------------------

    async def _authorized(self, visit: Visit, service: str, operation: str,
                          parameters: Mapping[str, object]) -> None:
        """:raises Refused: the role may not call ``operation`` (trailed as denied)."""
        if role_allows(visit.session.role, service, operation):
            return
        await self._record(visit, service, operation, parameters, "denied",
                           "AccessDeniedException", 403)
        raise Refused(403, f"Your role ({visit.session.role.value}) may not perform "
                       f"{service}:{operation}.", "AccessDeniedException")

    async def _read(self, visit: Visit, page: str, parameters: Mapping[str, object],
                    read: Callable[[], _T]) -> _T:
        """Authorize the page's operation, run ``read`` in a worker thread, and trail the
        call with its outcome.

        :raises Refused: refused (403) or a service error (its status).
        """
        service, operation = PAGES[page]
        await self._authorized(visit, service, operation, parameters)
        try:
            result = await asyncio.to_thread(read)
        except ServiceError as error:
            await self._record(visit, service, operation, parameters, "error",
                               error.aws_error_type, error.http_status)
            raise Refused(error.http_status, error.message, error.aws_error_type) from None
        await self._record(visit, service, operation, parameters, "allowed", None, 200)
        return result

    async def _record(self, visit: Visit, service: str, operation: str,
                      parameters: Mapping[str, object], outcome: str,
                      error_code: str | None, status: int) -> None:
        await self._append(visit.caller, visit.session.access_key_id,
                           visit.request.source_ip, service, operation, parameters, outcome,
                           error_code, status)

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

    async def _change(self, visit: Visit, action: str, parameters: Mapping[str, object],
                      work: Callable[[], _T]) -> _T:
        """Authorize ``action``'s operation and run ``work`` (a change) in a worker thread
        as the API runs a handler: the change commits with its trail record (303, the
        console's answer to a form); a refusal by the service is trailed as an error.

        :raises Refused: the role may not (403), or the service refused (its status).
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
            raise Refused(error.http_status, error.message, error.aws_error_type) from None
        if not committed:
            await self._record(visit, service, operation, parameters, "allowed", None, 303)
        log.info("console: %s %s:%s %s", session.access_key_id, service, operation,
                 dict(parameters))
        return result

    # -- rendering ------------------------------------------------------------------------------

    def _render(self, template: str, session: ConsoleSession | None, **values: Any) -> bytes:
        return self._templates.get_template(template).render(
            session=session, prefix=PREFIX, **values).encode("utf-8")

    def _page(self, visit: Visit, template: str, section: str, **values: Any) -> Answer:
        return Answer(200, self._render(template, visit.session, section=section, **values))

    def _error(self, session: ConsoleSession | None, status: int, message: str) -> Answer:
        return Answer(status, self._render("error.html", session, section="", status=status,
                                           message=message))


def format_when(value: object) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS UTC`` (datetimes, or epoch seconds)."""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def pretty_json(document: str) -> str:
    try:
        return json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    except ValueError:
        return document
