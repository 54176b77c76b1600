"""Checks fed by the connection journal: one certificate used by several devices at once
(DEVICE_CERTIFICATE_SHARED_CHECK) and one client id used by several connections that
kick each other off (CONFLICTING_CLIENT_IDS_CHECK).

Observation windows are AWS's:

* shared certificates — on demand: the 31 days up to 2 hours before the audit started;
  scheduled: from 2 hours before the previous run of the same scheduled audit to 2 hours
  before this one (31 days at most). The 2-hour lag lets the journal of every node
  settle before a window is judged;
* conflicting client ids — on demand: the last 31 days; scheduled: since the previous
  run of the same scheduled audit.

Two connections of one certificate are *concurrent* when their lifetimes overlap by a
positive amount inside the window (a takeover, where one ends the instant the other
starts, is not an overlap). A client id *conflicts* when one of its connections was
closed with ``DUPLICATE_CLIENTID`` inside the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from .._catalog import (
    CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES,
    DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS,
)
from .._model import AuditTaskType, FindingDraft, Resource, ResourceIdentifier, ResourceType
from ._base import CheckContext, CheckOutcome, epoch_ms

LOOKBACK: Final = timedelta(days=31)
SHARED_LAG: Final = timedelta(hours=2)
MAX_RELATED: Final = 100
TAKEN_OVER: Final = "DUPLICATE_CLIENTID"


def shared_window(ctx: CheckContext) -> tuple[datetime, datetime]:
    """The window DEVICE_CERTIFICATE_SHARED_CHECK looks at."""
    until = ctx.now - SHARED_LAG
    since = until - LOOKBACK
    if ctx.task_type is AuditTaskType.SCHEDULED_AUDIT_TASK and ctx.previous_run is not None:
        since = max(since, ctx.previous_run - SHARED_LAG)
    return since, until


def conflicting_window(ctx: CheckContext) -> tuple[datetime, datetime]:
    """The window CONFLICTING_CLIENT_IDS_CHECK looks at."""
    since = ctx.now - LOOKBACK
    if ctx.task_type is AuditTaskType.SCHEDULED_AUDIT_TASK and ctx.previous_run is not None:
        since = max(since, ctx.previous_run)
    return since, ctx.now


def _end(session: Mapping[str, Any]) -> datetime | None:
    value: datetime | None = session["disconnected_at"]
    return value


def _connection_info(session: Mapping[str, Any]) -> dict[str, str]:
    info = {"CONNECTION_TIME": epoch_ms(session["connected_at"])}
    end = _end(session)
    if end is not None:
        info["DISCONNECTION_TIME"] = epoch_ms(end)
    if session.get("disconnect_reason"):
        info["DISCONNECT_REASON"] = str(session["disconnect_reason"])
    if session.get("source_ip"):
        info["SOURCE_IP"] = str(session["source_ip"])
    return info


def concurrent_sessions(sessions: Sequence[Mapping[str, Any]], since: datetime,
                        until: datetime) -> list[Mapping[str, Any]]:
    """The sessions that overlap another one of the list inside ``[since, until]``."""
    ordered = sorted(sessions, key=lambda s: (s["connected_at"], s["connection_id"]))
    involved: dict[str, Mapping[str, Any]] = {}
    for i, first in enumerate(ordered):
        first_end = _end(first)
        for second in ordered[i + 1:]:
            start = second["connected_at"]
            if first_end is not None and start >= first_end:
                break  # sorted by start: no later session overlaps ``first`` either
            second_end = _end(second)
            end = min((e for e in (first_end, second_end) if e is not None), default=None)
            if start > until or (end is not None and (end <= start or end < since)):
                continue
            involved[first["connection_id"]] = first
            involved[second["connection_id"]] = second
    return sorted(involved.values(), key=lambda s: (s["connected_at"], s["connection_id"]))


def device_certificate_shared(ctx: CheckContext) -> CheckOutcome:
    since, until = shared_window(ctx)
    fleet = ctx.fleet
    # Connections signed with an access key (MQTT over WebSocket) have no certificate.
    candidates = [c for c in fleet.certificates_with_overlapping_sessions(since, until) if c]
    by_certificate: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for session in fleet.sessions_of_certificates(candidates, since, until):
        by_certificate[session["certificate_id"]].append(session)
    findings: list[FindingDraft] = []
    for certificate_id in sorted(by_certificate):
        involved = concurrent_sessions(by_certificate[certificate_id], since, until)
        if not involved:
            continue
        related = tuple(
            Resource(ResourceType.CLIENT_ID, ResourceIdentifier.client(s["client_id"]),
                     _connection_info(s))
            for s in involved[-MAX_RELATED:])
        clients = sorted({s["client_id"] for s in involved})
        findings.append(FindingDraft(
            Resource(ResourceType.DEVICE_CERTIFICATE,
                     ResourceIdentifier.device_certificate(certificate_id),
                     {"CONCURRENT_CONNECTIONS": str(len(involved)),
                      "CLIENT_IDS": ",".join(clients[:20])}),
            CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES,
            f"Certificate shared by one or more devices: {len(involved)} connections "
            f"({len(clients)} client ids) were open at the same time.",
            related))
    return CheckOutcome(fleet.certificate_count(), findings)


def conflicting_client_ids(ctx: CheckContext) -> CheckOutcome:
    since, until = conflicting_window(ctx)
    fleet = ctx.fleet
    conflicted = fleet.client_ids_taken_over(since, until)
    by_client: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for session in fleet.sessions_of_clients(conflicted, since, until):
        by_client[session["client_id"]].append(session)
    findings: list[FindingDraft] = []
    for client_id in sorted(by_client):
        sessions = sorted(by_client[client_id], key=lambda s: s["connected_at"])
        kicked = [s for s in sessions if s.get("disconnect_reason") == TAKEN_OVER]
        if not kicked:
            continue
        related = tuple(
            Resource(ResourceType.DEVICE_CERTIFICATE,
                     ResourceIdentifier.device_certificate(s["certificate_id"]),
                     _connection_info(s))
            for s in sessions[-MAX_RELATED:])
        principals = sorted({s["certificate_id"] for s in sessions})
        sources = sorted({str(s["source_ip"]) for s in sessions if s.get("source_ip")})
        findings.append(FindingDraft(
            Resource(ResourceType.CLIENT_ID, ResourceIdentifier.client(client_id),
                     {"DISCONNECTIONS": str(len(kicked)), "PRINCIPALS": str(len(principals)),
                      "SOURCE_IPS": ",".join(sources[:20])}),
            DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS,
            f"Multiple connections used the client id {client_id}: {len(kicked)} "
            f"connection(s) were disconnected by another using the same client id.",
            related))
    return CheckOutcome(fleet.connected_client_count(since, until), findings)
