"""What each console page shows, read from the services (the view models).

Every function here blocks on the database: the application runs them in a worker
thread. They return plain frozen values (or dicts of them) that the templates render;
no function formats HTML, and every string that a device controls (names, attributes,
client ids, shadow documents) is passed as is, for the templates to escape.

Lists that the services page by name are read whole up to :data:`SCAN_LIMIT` entries
and filtered here (name prefix, group, connected now), then cut into console pages of
:data:`PAGE_SIZE`: enough for the fleets the console's first slice is for; a search
over more things belongs to the fleet index.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final, TypeVar

from bastion.defender.audit import AuditTaskStatus, Finding, Severity
from bastion.policy import Decision
from bastion.registry import CertificateRecord
from bastion.services import Services
from bastion.trail import TrailRecord

from ._charts import Chart, line_chart
from ._live import ConnectedClient

PAGE_SIZE: Final = 50
SCAN_LIMIT: Final = 10_000
EXPIRY_HORIZON: Final = timedelta(days=30)
_BATCH: Final = 250
_T = TypeVar("_T")


def _all_pages(read: Callable[[str | None], tuple[Sequence[_T], str | None]],
               limit: int = SCAN_LIMIT) -> Iterator[_T]:
    """Every item of a paged service read, at most ``limit``."""
    token: str | None = None
    seen = 0
    while True:
        items, token = read(token)
        for item in items:
            yield item
            seen += 1
            if seen >= limit:
                return
        if not token:
            return


@dataclass(frozen=True, slots=True)
class Paged:
    """One console page of a longer list."""

    items: tuple[Any, ...]
    page: int
    pages: int
    total: int
    truncated: bool = False  # the scan stopped at SCAN_LIMIT


def paginate(items: Sequence[Any], page: int, *, truncated: bool = False) -> Paged:
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    return Paged(tuple(items[start:start + PAGE_SIZE]), page, pages, len(items), truncated)


# -- overview -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StoredFigures:
    """The overview's numbers that come from the database."""

    active_violations: int
    findings_by_severity: dict[str, int]
    audit_task: str | None
    expiring_certificates: int


def stored_figures(services: Services, now: datetime) -> StoredFigures:
    """Active Detect violations, the latest completed audit's open (unsuppressed) findings
    by severity, and active certificates that expire within 30 days."""
    violations = 0
    if services.detect is not None:
        violations = len(services.detect.service.list_active_violations())
    severities = {severity.value: 0 for severity in Severity}
    task_id = latest_audit_task(services, now)
    if task_id is not None and services.audit is not None:
        audit = services.audit.audit
        for finding in _all_pages(lambda token: audit.list_audit_findings(
                task_id=task_id, list_suppressed_findings=False, max_results=_BATCH,
                next_token=token)):
            severities[finding.severity.value] += 1
    identity = services.plane.identity
    expiring = sum(1 for record in _all_pages(lambda token: identity.list_certificates(
        max_results=_BATCH, next_token=token))
        if record.status.value == "ACTIVE" and record.validity.not_after - now <= EXPIRY_HORIZON)
    return StoredFigures(violations, severities, task_id, expiring)


def latest_audit_task(services: Services, now: datetime) -> str | None:
    """The newest completed audit task of the last 90 days, if any."""
    if services.audit is None:
        return None
    tasks, _token = services.audit.audit.list_audit_tasks(
        start_time=now - timedelta(days=90), end_time=now + timedelta(minutes=1),
        task_status=AuditTaskStatus.COMPLETED.value, max_results=1)
    return tasks[0].task_id if tasks else None


# -- things ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ThingRow:
    name: str
    thing_type: str | None
    connected: bool


@dataclass(frozen=True, slots=True)
class ThingFilter:
    prefix: str = ""
    thing_type: str = ""
    group: str = ""
    connected: str = ""  # "", "yes" or "no"
    page: int = 1


def things(services: Services, wanted: ThingFilter, connected_now: frozenset[str]) -> Paged:
    """Things by name, filtered (see the module docstring); ``connected_now`` holds the
    client ids connected to this node.

    :raises bastion.errors.ServiceError: a malformed type or group name, or no such group.
    """
    registry = services.plane.registry
    members: set[str] | None = None
    if wanted.group:
        members = set(_all_pages(lambda token: registry.list_things_in_thing_group(
            wanted.group, max_results=_BATCH, next_token=token)))
    type_name = wanted.thing_type or None
    rows: list[ThingRow] = []
    scanned = 0
    for thing in _all_pages(lambda token: registry.list_things(
            thing_type_name=type_name, max_results=_BATCH, next_token=token)):
        scanned += 1
        if not thing.thing_name.startswith(wanted.prefix):
            continue
        if members is not None and thing.thing_name not in members:
            continue
        connected = thing.thing_name in connected_now
        if wanted.connected and connected != (wanted.connected == "yes"):
            continue
        rows.append(ThingRow(thing.thing_name, thing.thing_type_name, connected))
    return paginate(rows, wanted.page, truncated=scanned >= SCAN_LIMIT)


@dataclass(frozen=True, slots=True)
class ConnectionEntry:
    client_id: str
    source_ip: str | None
    connected_at: datetime
    disconnected_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class ThingPage:
    name: str
    arn: str
    thing_type: str | None
    attributes: dict[str, str]
    version: int
    certificates: tuple[CertificateRecord, ...]
    policies: tuple[str, ...]
    groups: tuple[str, ...]
    shadow: str | None
    connectivity: str
    history: tuple[ConnectionEntry, ...] = field(default_factory=tuple)
    charts: tuple[Chart, ...] = field(default_factory=tuple)


def thing(services: Services, name: str, now: float) -> ThingPage:
    """A thing with its certificates, the policies attached to them, its groups, its
    classic shadow (pretty-printed), its connection history and its Detect metrics.

    :raises bastion.errors.ServiceError: no such thing, or a malformed name.
    """
    plane = services.plane
    found = plane.registry.describe_thing(name)
    principals = list(_all_pages(lambda token: plane.registry.list_thing_principals(
        name, max_results=_BATCH, next_token=token), limit=100))
    certificates: list[CertificateRecord] = []
    policies: set[str] = set()
    for arn in principals:
        certificate_id = arn.rsplit("/", 1)[-1]
        certificates.append(plane.identity.describe_certificate(certificate_id))
        policies.update(_all_pages(partial(_attached, services, arn), limit=100))
    groups = tuple(group.group_name for group in _all_pages(
        lambda token: plane.registry.list_thing_groups_for_thing(
            name, max_results=_BATCH, next_token=token), limit=100))
    connectivity = plane.registry.thing_connectivity(name)
    return ThingPage(
        name=found.thing_name, arn=found.thing_arn, thing_type=found.thing_type_name,
        attributes=dict(found.attributes), version=found.version,
        certificates=tuple(certificates), policies=tuple(sorted(policies)), groups=groups,
        shadow=_shadow(services, name),
        connectivity=("connected" if connectivity.connected else "disconnected"
                      if connectivity.timestamp is not None else "never connected"),
        history=tuple(_history(services, name)), charts=thing_metrics(services, name, now))


PLOTTED_METRICS: Final = ("aws:num-messages-sent", "aws:num-messages-received",
                           "aws:num-authorization-failures", "aws:num-disconnects")
"""The Detect metrics a thing's page plots (with those of its active violations)."""
PLOT_WINDOW: Final = 24 * 3600.0
MIN_PLOT_SPAN: Final = 300.0


def thing_metrics(services: Services, name: str, now: float) -> tuple[Chart, ...]:
    """Charts of the thing's Detect metrics of the last 24 hours, on one time axis from
    the first datapoint: the metrics of its active violations first (marked), then
    :data:`PLOTTED_METRICS`; only metrics with a numeric datapoint in the window."""
    if services.detect is None:
        return ()
    detect = services.detect.service
    violated = {v.behavior.metric for v in detect.list_active_violations(thing_name=name)}
    charts = []
    series = {}
    for metric in [*sorted(violated), *(m for m in PLOTTED_METRICS if m not in violated)]:
        values = detect.list_metric_values(name, metric, now - PLOT_WINDOW, now + 1)
        scalars = [(t, v) for t, value in values if (v := value.scalar()) is not None]
        if scalars:
            series[metric] = scalars
    if not series:
        return ()
    # One time axis for every chart: from the first datapoint (at least 5 minutes).
    first = min(t for scalars in series.values() for t, _ in scalars)
    start = min(first, now - MIN_PLOT_SPAN)
    charts = [line_chart(metric, scalars, start, now + 1, violated=metric in violated)
              for metric, scalars in series.items()]
    return tuple(chart for chart in charts if chart is not None)


def _attached(services: Services, target: str, marker: str | None
              ) -> tuple[list[str], str | None]:
    items, token = services.plane.policies.list_attached_policies(target, marker=marker)
    return [item.policy_name for item in items], token


def _shadow(services: Services, name: str) -> str | None:
    """The classic shadow as indented JSON, or ``None`` when the thing has none."""
    from bastion.errors import ServiceError

    try:
        reply = services.shadow.get(name)
    except ServiceError as error:
        if error.http_status == 404:
            return None
        raise
    try:
        return json.dumps(json.loads(reply.payload), indent=2,
                          ensure_ascii=False)
    except ValueError:
        return reply.payload.decode("utf-8", "replace")


def _history(services: Services, name: str) -> list[ConnectionEntry]:
    rows = services.plane.registry.connection_history(name, limit=20)
    return [ConnectionEntry(row.client_id, row.source_ip, row.connected_at,
                            row.disconnected_at, row.disconnect_reason) for row in rows]


# -- certificates ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CertificateRow:
    record: CertificateRecord
    things: tuple[str, ...]
    connected: int  # live connections with it on this node
    expiring: bool


def certificates(services: Services, page: int, now: datetime,
                 live: Sequence[ConnectedClient]) -> Paged:
    """Certificates, newest first, each with the things it is attached to and the live
    connections using it."""
    plane = services.plane
    records = list(_all_pages(lambda token: plane.identity.list_certificates(
        max_results=_BATCH, next_token=token)))
    paged = paginate(records, page, truncated=len(records) >= SCAN_LIMIT)
    using = Counter(client.certificate_id for client in live)
    rows = []
    for record in paged.items:
        rows.append(CertificateRow(record, _things_of(services, record.certificate_arn), using[record.certificate_id],
                                   record.validity.not_after - now <= EXPIRY_HORIZON))
    return Paged(tuple(rows), paged.page, paged.pages, paged.total, paged.truncated)


def _things_of(services: Services, certificate_arn: str) -> tuple[str, ...]:
    """The things a certificate is attached to (at most 100)."""
    registry = services.plane.registry
    return tuple(_all_pages(lambda token: registry.list_principal_things(
        certificate_arn, max_results=_BATCH, next_token=token), limit=100))


def certificate(services: Services, certificate_id: str, now: datetime,
                live: Sequence[ConnectedClient]) -> CertificateRow:
    """:raises bastion.errors.ServiceError: no such certificate, or a malformed id."""
    plane = services.plane
    record = plane.identity.describe_certificate(certificate_id)
    names = _things_of(services, record.certificate_arn)
    connected = sum(1 for client in live if client.certificate_id == record.certificate_id)
    return CertificateRow(record, names, connected,
                          record.validity.not_after - now <= EXPIRY_HORIZON)


# -- policies ---------------------------------------------------------------------------------

def policies(services: Services, page: int) -> Paged:
    found = list(_all_pages(lambda token: services.plane.policies.list_policies(
        max_results=_BATCH, next_token=token)))
    return paginate([policy.policy_name for policy in found], page,
                    truncated=len(found) >= SCAN_LIMIT)


# -- Defender -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SuppressionRow:
    check_name: str
    resource: str             # the identifier as one line
    identifier_json: str      # the identifier as the delete form sends it back
    expiration_date: datetime | None
    suppress_indefinitely: bool
    description: str | None


@dataclass(frozen=True, slots=True)
class FindingsPage:
    task_id: str | None
    findings: Paged
    suppressions: tuple[SuppressionRow, ...] = ()


def findings(services: Services, page: int, now: datetime) -> FindingsPage:
    """The latest completed audit's findings (suppressed ones too, marked), most severe
    first."""
    if services.audit is None:
        return FindingsPage(None, paginate([], 1))
    audit = services.audit.audit
    suppressions = tuple(
        SuppressionRow(item.check_name, resource_label(item.identifier.fields),
                       plain_json(item.identifier.fields), item.expiration_date,
                       item.suppress_indefinitely, item.description)
        for item in _all_pages(lambda token: audit.list_audit_suppressions(
            max_results=_BATCH, next_token=token), limit=1000))
    task_id = latest_audit_task(services, now)
    if task_id is None:
        return FindingsPage(None, paginate([], 1), suppressions)
    order = {severity.value: rank for rank, severity in enumerate(Severity)}
    found = sorted(_all_pages(lambda token: audit.list_audit_findings(
        task_id=task_id, max_results=_BATCH, next_token=token)),
        key=lambda f: (order[f.severity.value], f.check_name, f.finding_id))
    return FindingsPage(task_id, paginate(found, page), suppressions)


SUPPRESSION_DAYS: Final = {"7": 7, "30": 30, "90": 90, "forever": None}
"""How long the console's "Suppress" form may suppress a finding's check and resource."""


def suppress_finding(services: Services, finding_id: str, duration: str,
                     description: str, now: datetime) -> Finding:
    """CreateAuditSuppression for the check and resource of a finding.

    :raises bastion.errors.ServiceError: no such finding, or the audit refused (already
        suppressed, say).
    :raises KeyError: an unknown duration (the form offers only those of
        :data:`SUPPRESSION_DAYS`).
    """
    if services.audit is None:
        raise LookupError("the audit is turned off")
    audit = services.audit.audit
    days = SUPPRESSION_DAYS[duration]
    finding = audit.describe_audit_finding(finding_id)
    identifier = json.loads(plain_json(finding.non_compliant_resource.identifier.fields))
    audit.create_audit_suppression(
        finding.check_name, identifier,
        expiration_date=None if days is None else now + timedelta(days=days),
        suppress_indefinitely=True if days is None else None,
        description=description or None)
    return finding


def plain_json(fields: Mapping[str, Any]) -> str:
    """A resource identifier (read-only mappings and tuples) as JSON text."""
    return json.dumps(fields, default=_plain, sort_keys=True)


def resource_label(fields: Mapping[str, Any]) -> str:
    """A finding resource's identifier as one line (``key=value, …``); nested members
    (read-only mappings and tuples) as JSON."""
    return ", ".join(f"{key}={value if isinstance(value, str) else json.dumps(value, default=_plain)}"
                     for key, value in sorted(fields.items()))


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def violations(services: Services, page: int) -> Paged:
    if services.detect is None:
        return paginate([], 1)
    found = sorted(services.detect.service.list_active_violations(),
                   key=lambda v: -v.last_violation_time)
    return paginate(found, page)


VERIFICATION_STATES: Final = ("FALSE_POSITIVE", "BENIGN_POSITIVE", "TRUE_POSITIVE", "UNKNOWN")


def violation_reason(violation: Any) -> str:
    """Why a violation fired, in a line: an ML violation's explanation, else its
    criteria."""
    details = getattr(violation, "details", None) or {}
    if details.get("summary"):
        return str(details["summary"])
    criteria = violation.behavior.criteria
    if criteria.ml_confidence is not None:
        return f"ML Detect, confidence {criteria.ml_confidence}"
    if criteria.statistic is not None:
        return f"{criteria.comparison_operator.value} {criteria.statistic} of the fleet"
    value = criteria.value.to_json() if criteria.value is not None else {}
    operator = criteria.comparison_operator.value if criteria.comparison_operator else ""
    return f"{operator} {json.dumps(value)}"


@dataclass(frozen=True, slots=True)
class ThreatRow:
    id: str
    type: str
    title: str
    severity: float
    resource: str
    source_ip: str
    count: int
    first_seen: float
    last_seen: float
    archived: bool
    evidence: str


def threat_findings(services: Services, page: int, archived: bool) -> Paged:
    """Threat findings (archived or not), the most severe and newest first."""
    threats = services.threats
    if threats is None:
        return paginate([], 1)
    rows = [ThreatRow(f.id, f.type, f.kind.title, f.severity, f.resource_id, f.source_ip,
                      f.count, f.first_seen, f.last_seen, f.archived,
                      json.dumps(f.evidence, sort_keys=True, default=str)[:400])
            for f in threats.findings() if f.archived == archived]
    rows.sort(key=lambda r: (-r.severity, -r.last_seen))
    return paginate(rows, page)


@dataclass(frozen=True, slots=True)
class BaselineRow:
    control: str
    title: str
    passed: bool
    evidence: str


def baseline(services: Services) -> list[BaselineRow]:
    """``bastion baseline check``, control by control."""
    from bastion.baseline import CONTROLS, Baseline

    state = Baseline(services, services.datadir.config_path)
    rows = []
    for control in CONTROLS:
        verdict = control.check(state)
        rows.append(BaselineRow(control.id, control.title, verdict.passed, verdict.evidence))
    return rows


# -- jobs ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: str
    status: str
    target_selection: str
    created_at: datetime
    counts: dict[str, int]
    total: int


def jobs(services: Services, page: int) -> Paged:
    """Jobs, newest first, each with its executions counted by status."""
    from bastion.jobs import ExecutionStatus

    found = list(_all_pages(lambda token: services.jobs.list_jobs(
        max_results=_BATCH, next_token=token)))
    found.sort(key=lambda job: job.created_at, reverse=True)
    paged = paginate(found, page, truncated=len(found) >= SCAN_LIMIT)
    rows = []
    for summary in paged.items:
        job = services.jobs.describe_job(summary.job_id)
        counts = {status.value: job.process_details.count(status) for status in ExecutionStatus}
        rows.append(JobRow(job.job_id, job.status.value, job.target_selection.value,
                           job.created_at, counts, sum(counts.values())))
    return Paged(tuple(rows), paged.page, paged.pages, paged.total, paged.truncated)


@dataclass(frozen=True, slots=True)
class JobPage:
    row: JobRow
    description: str | None
    executions: Paged


def job(services: Services, job_id: str, page: int) -> JobPage:
    """A job with its executions, one per thing (by thing name).

    :raises bastion.errors.ServiceError: no such job, or a malformed id.
    """
    from bastion.jobs import ExecutionStatus

    found = services.jobs.describe_job(job_id)
    counts = {status.value: found.process_details.count(status) for status in ExecutionStatus}
    executions = list(_all_pages(lambda token: services.jobs.list_job_executions_for_job(
        job_id, max_results=_BATCH, next_token=token)))
    return JobPage(JobRow(found.job_id, found.status.value, found.target_selection.value,
                          found.created_at, counts, sum(counts.values())),
                   found.description, paginate(executions, page))


# -- what the broker would decide ----------------------------------------------------------------

AUTHORIZATION_ACTIONS: Final = {"CONNECT": ("iot:Connect", "client"),
                                "PUBLISH": ("iot:Publish", "topic"),
                                "SUBSCRIBE": ("iot:Subscribe", "topicfilter"),
                                "RECEIVE": ("iot:Receive", "topic")}


@dataclass(frozen=True, slots=True)
class AuthorizationTest:
    action_type: str
    resource: str  # the ARN evaluated
    client_id: str
    decision: Decision


def authorization_test(services: Services, certificate_id: str, client_id: str,
                       action_type: str, resource: str) -> AuthorizationTest:
    """TestAuthorization for one action and resource by a certificate: ``resource`` is an
    ARN, or a client id / topic / topic filter made into the action's ARN.

    :raises bastion.errors.ServiceError: no such certificate.
    :raises KeyError: an unknown action type (the form offers only the four).
    """
    from bastion.enforcement import authorization_decisions

    action, kind = AUTHORIZATION_ACTIONS[action_type]
    plane = services.plane
    arn = resource if resource.startswith("arn:") else plane.account.arn(f"{kind}/{resource}")
    decision = authorization_decisions(plane.identity, plane.policies, plane.account,
                                       certificate_id, client_id=client_id or None,
                                       action=action, resources=[arn])[0]
    return AuthorizationTest(action_type, arn, client_id, decision)


# -- policy versions compared ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "same", "added", "removed" or "hunk"
    text: str


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    old: str
    new: str
    versions: tuple[str, ...]
    lines: tuple[DiffLine, ...]


def policy_diff(services: Services, name: str, old: str, new: str) -> PolicyDiff:
    """Two versions of a policy compared line by line (their documents pretty-printed);
    by default the one before the default version against the default.

    :raises bastion.errors.ServiceError: no such policy or version, or a malformed id.
    """
    import difflib

    policies = services.plane.policies
    versions = sorted(policies.list_policy_versions(name), key=lambda v: int(v.version_id))
    ids = tuple(v.version_id for v in versions)
    default = next((v.version_id for v in versions if v.is_default_version), ids[-1])
    new = new or default
    if not old:
        earlier = [version for version in ids if int(version) < int(new)] if new.isdigit() \
            else []
        old = earlier[-1] if earlier else new
    documents = [_indented(policies.get_policy_version(name, version).policy_document)
                 for version in (old, new)]
    lines = []
    for line in difflib.unified_diff(documents[0].splitlines(), documents[1].splitlines(),
                                     f"version {old}", f"version {new}", lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = ("hunk" if line.startswith("@@") else "added" if line.startswith("+")
                else "removed" if line.startswith("-") else "same")
        lines.append(DiffLine(kind, line))
    return PolicyDiff(old, new, ids, tuple(lines))


def _indented(document: str) -> str:
    try:
        return json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    except ValueError:
        return document


# -- trail ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TrailFilter:
    operation: str = ""
    outcome: str = ""
    page: int = 1


TRAIL_WINDOW: Final = 2000
"""The newest records the trail page looks through."""


def trail(services: Services, wanted: TrailFilter) -> Paged:
    """The newest records (of the last :data:`TRAIL_WINDOW`), newest first, filtered by
    operation and outcome."""
    records: list[TrailRecord] = services.trail.recent(TRAIL_WINDOW)
    chosen = [record for record in reversed(records)
              if (not wanted.operation or record.operation == wanted.operation)
              and (not wanted.outcome or record.outcome == wanted.outcome)]
    return paginate(chosen, wanted.page)


def source_of(record: TrailRecord) -> str:
    """Which door a record came through: ``console`` when its parameters say so, else
    ``api`` (``bastion`` for Bastion's own records, whose key is ``system:…``)."""
    try:
        parameters = json.loads(record.parameters)
    except ValueError:
        return "?"
    source = parameters.get("bastion:source") if isinstance(parameters, dict) else None
    if isinstance(source, str):
        return source
    return "bastion" if record.access_key_id.startswith("system:") else "api"
