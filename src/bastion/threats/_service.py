"""The threat service: the detector's signals aggregated into findings, kept in the
store, alerted, and answered in GuardDuty's shapes.

Theory of operation
-------------------
Observations come from three places, on whatever thread they happen: the API (every
answered request, :meth:`ThreatService.observe_call`; :meth:`~ThreatService.blocked`
before a request is served), the broker's connection events
(:meth:`~ThreatService.device_connected` / ``_disconnected``) and the trail's periodic
verification (:meth:`~ThreatService.trail_checked`). Each goes through the
:class:`~._detector.ThreatDetector` under one lock; a signal of a (type, resource) that
already has a finding adds to it (count, last seen, latest evidence), as GuardDuty
aggregates, and an archived finding stays archived. Changed findings are written to the
store and new ones alerted by :meth:`~ThreatService.flush`, which the
:class:`ThreatWatch` component calls every second (never on the caller's thread: the API
and the broker only append to a list).

There is one detector per Bastion (GuardDuty's ``ListDetectors`` answers it); its id is
derived from the account so it is stable across restarts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.store import Store, ThreatFindingRow, ThreatIntelSetRow

from ._detector import DetectorSettings, Network, ThreatDetector
from ._errors import BadRequestError, NotFoundError
from ._model import Finding, Signal

log = logging.getLogger("bastion.threats")

AlertSink = Callable[[Finding, dict[str, Any]], None]
"""Called (from :meth:`ThreatService.flush`) with each new finding and its JSON."""
FileReader = Callable[[str], bytes]
"""Reads one of Bastion's files by name (a threat list's location)."""

MAX_INTEL_ENTRIES = 250_000


@dataclass(frozen=True, slots=True)
class IntelSet:
    id: str
    name: str
    format: str
    location: str
    status: str  # ACTIVE | INACTIVE
    networks: tuple[Network, ...]
    created_at: float


class ThreatService:
    """See the module docstring."""

    def __init__(self, store: Store | None, *, account: Account,
                 settings: DetectorSettings | None = None, clock: Clock | None = None,
                 read_file: FileReader | None = None, alert: AlertSink | None = None
                 ) -> None:
        self._store = store
        self.account = account
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.detector = ThreatDetector(settings)
        self._read_file = read_file
        self.alert = alert
        self._lock = threading.RLock()
        self._findings: dict[str, Finding] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._dirty: set[str] = set()
        self._new: list[str] = []
        self._intel: dict[str, IntelSet] = {}
        self.detector_id = hashlib.sha256(
            f"bastion-threats:{account.account_id}:{account.region}".encode()
        ).hexdigest()[:32]
        self.created_at = self.clock.time()

    # -- state -----------------------------------------------------------------------------

    def load(self) -> None:
        """Read findings and threat lists from the store."""
        if self._store is None:
            return
        with self._store.transaction(readonly=True) as uow:
            rows = uow.threats.findings()
            sets = uow.threats.intel_sets()
        with self._lock:
            for row in rows:
                doc = row.document
                finding = Finding(row.id, row.type, row.resource_id,
                                  row.first_seen.timestamp(), row.last_seen.timestamp(),
                                  row.count, dict(doc.get("evidence", {})),
                                  str(doc.get("sourceIp", "")), str(doc.get("accessKeyId", "")),
                                  str(doc.get("api", "")), row.archived,
                                  row.updated_at.timestamp())
                self._findings[row.id] = finding
                self._by_key[(row.type, row.resource_id)] = row.id
            for s in sets:
                self._intel[s.id] = IntelSet(s.id, s.name, s.format, s.location, s.status,
                                             _networks(s.entries), s.created_at.timestamp())
            self._apply_intel()

    def flush(self) -> int:
        """Write changed findings and alert new ones; how many were written."""
        with self._lock:
            changed = [replace(self._findings[i]) for i in sorted(self._dirty)]
            new = [self._findings[i] for i in self._new]
            self._dirty.clear()
            self._new = []
        if changed and self._store is not None:
            with self._store.transaction() as uow:
                for finding in changed:
                    uow.threats.save_finding(_row(finding))
        for finding in new:
            log.warning("threat finding %s on %s (severity %.1f)", finding.type,
                        finding.resource_id, finding.severity)
            if self.alert is not None:
                try:
                    self.alert(finding, self.finding_json(finding))
                except Exception:
                    log.exception("threats: alert for %s failed", finding.id)
        return len(changed)

    def _absorb(self, signals: Iterable[Signal]) -> None:
        """Aggregate signals into findings; lock held."""
        for signal in signals:
            key = (signal.type, signal.resource_id)
            found = self._by_key.get(key)
            if found is None:
                finding = Finding(uuid.uuid4().hex, signal.type, signal.resource_id,
                                  signal.at, signal.at, 1, dict(signal.evidence),
                                  signal.source_ip, signal.access_key_id, signal.api,
                                  False, signal.at)
                self._findings[finding.id] = finding
                self._by_key[key] = finding.id
                self._new.append(finding.id)
            else:
                finding = self._findings[found]
                finding.count += 1
                finding.last_seen = max(finding.last_seen, signal.at)
                finding.evidence = dict(signal.evidence)
                finding.source_ip = signal.source_ip or finding.source_ip
                finding.api = signal.api or finding.api
                finding.updated_at = signal.at
            self._dirty.add(finding.id)

    # -- observations ----------------------------------------------------------------------

    def blocked(self, source_ip: str) -> float | None:
        with self._lock:
            return self.detector.blocked(source_ip, self.clock.time())

    def observe_call(self, *, source_ip: str, access_key_id: str, authenticated: bool,
                     operation: str, parameters: Mapping[str, Any], outcome: str,
                     error_code: str | None) -> None:
        with self._lock:
            self._absorb(self.detector.api_call(
                source_ip=source_ip, access_key_id=access_key_id,
                authenticated=authenticated, operation=operation, parameters=parameters,
                outcome=outcome, error_code=error_code, at=self.clock.time()))

    def device_connected(self, *, certificate_id: str, session_id: str, client_id: str,
                         source_ip: str) -> None:
        with self._lock:
            self._absorb(self.detector.device_connected(
                certificate_id=certificate_id, session_id=session_id, client_id=client_id,
                source_ip=source_ip, at=self.clock.time()))

    def device_disconnected(self, *, certificate_id: str, session_id: str) -> None:
        with self._lock:
            self.detector.device_disconnected(certificate_id=certificate_id,
                                              session_id=session_id)

    def device_error(self, entry: Mapping[str, Any]) -> None:
        """An ERROR entry of the IoT logs (:meth:`bastion.iotlogs.IoTLogs.on_error`)."""
        with self._lock:
            self._absorb(self.detector.device_error(entry, self.clock.time()))

    def trail_checked(self, ok: bool, reason: str | None, sequence: int | None) -> None:
        if ok:
            return
        with self._lock:
            self._absorb([Signal("DefenseEvasion:IoTTrail/VerificationFailed", "trail",
                                 self.clock.time(),
                                 {"reason": reason, "firstBrokenSequence": sequence})])

    # -- GuardDuty's findings --------------------------------------------------------------

    def check_detector(self, detector_id: str) -> None:
        """:raises BadRequestError: not this Bastion's detector (GuardDuty answers 400)."""
        if detector_id != self.detector_id:
            raise BadRequestError("The request is rejected because the input detectorId "
                                  "is not owned by the current account.")

    def finding_json(self, f: Finding) -> dict[str, Any]:
        kind = f.kind
        resource: dict[str, Any] = {"ResourceType": kind.resource.value}
        if f.access_key_id:
            resource["AccessKeyDetails"] = {"AccessKeyId": f.access_key_id,
                                            "UserType": "BastionAccessKey"}
        action: dict[str, Any] = {}
        if f.api or f.source_ip:
            action = {"ActionType": "AWS_API_CALL", "AwsApiCallAction": {
                "Api": f.api, "ServiceName": "iot", "CallerType": "Remote IP",
                "RemoteIpDetails": _remote(f.source_ip)}}
            if kind.resource.value == "IoTCertificate":
                action = {"ActionType": "NETWORK_CONNECTION", "NetworkConnectionAction": {
                    "ConnectionDirection": "INBOUND", "Protocol": "TCP", "Blocked": False,
                    "RemoteIpDetails": _remote(f.source_ip)}}
        return {
            "AccountId": self.account.account_id,
            "Arn": self.account.arn(f"detector/{self.detector_id}/finding/{f.id}")
            .replace(":iot:", ":guardduty:", 1),
            "CreatedAt": _iso(f.first_seen), "UpdatedAt": _iso(f.updated_at),
            "Description": f"{kind.title}: {f.resource_id}.",
            "Id": f.id, "Partition": "aws", "Region": self.account.region,
            "Resource": resource, "SchemaVersion": "2.0", "Severity": kind.severity,
            "Title": kind.title, "Type": f.type, "Confidence": kind.severity,
            "Service": {
                "Action": action or None, "Archived": f.archived, "Count": f.count,
                "DetectorId": self.detector_id, "EventFirstSeen": _iso(f.first_seen),
                "EventLastSeen": _iso(f.last_seen), "ServiceName": "guardduty",
                "ResourceRole": "TARGET",
                "AdditionalInfo": {"Type": "default", "Value": _json(
                    {"resourceId": f.resource_id, "evidence": f.evidence})},
            },
        }

    def list_finding_ids(self, criteria: Mapping[str, Any] | None,
                         sort: Mapping[str, Any] | None) -> list[str]:
        """ListFindings: ids matching ``criteria`` (GuardDuty's FindingCriteria).

        :raises BadRequestError: an unknown criterion field or condition.
        """
        with self._lock:
            documents = [self.finding_json(f) for f in self._findings.values()]
        matching = [d for d in documents if _matches(d, criteria)]
        field = (sort or {}).get("AttributeName") or "updatedAt"
        descending = (sort or {}).get("OrderBy", "DESC" if not sort else "ASC") == "DESC"
        matching.sort(key=lambda d: (_sort_value(_field(d, field)), d["Id"]),
                      reverse=descending)
        return [d["Id"] for d in matching]

    def findings(self) -> list[Finding]:
        """Every finding (copies), oldest first."""
        with self._lock:
            return [replace(f, evidence=dict(f.evidence))
                    for f in sorted(self._findings.values(), key=lambda f: f.first_seen)]

    def get_findings(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        with self._lock:
            return [self.finding_json(self._findings[i]) for i in ids if i in self._findings]

    def statistics(self, criteria: Mapping[str, Any] | None) -> dict[str, int]:
        """CountBySeverity of the findings matching ``criteria``."""
        counts: dict[str, int] = {}
        for document in self.get_findings(self.list_finding_ids(criteria, None)):
            key = str(float(document["Severity"]))
            counts[key] = counts.get(key, 0) + 1
        return counts

    def archive(self, ids: Iterable[str], archived: bool) -> None:
        """ArchiveFindings / UnarchiveFindings (unknown ids: BadRequest, like GuardDuty).

        :raises BadRequestError: an id names no finding.
        """
        wanted = list(ids)
        with self._lock:
            missing = [i for i in wanted if i not in self._findings]
            if missing:
                raise BadRequestError(f"The request is rejected because the finding ids "
                                      f"{missing[:5]} do not exist.")
            now = self.clock.time()
            for i in wanted:
                self._findings[i].archived = archived
                self._findings[i].updated_at = now
                self._dirty.add(i)
        self.flush()

    # -- threat lists ----------------------------------------------------------------------

    def create_intel_set(self, name: str, format_: str, location: str, activate: bool
                         ) -> IntelSet:
        """CreateThreatIntelSet from one of Bastion's files (``location``: the file's
        name, ``bastion-file://<name>``, or a presigned ``/_bastion/files/<name>`` URL).

        :raises BadRequestError: a format other than TXT, an unknown file, a bad entry.
        """
        if format_ != "TXT":
            raise BadRequestError(f"The format {format_} is not supported; use TXT "
                                  "(one address or network per line).")
        if not 1 <= len(name) <= 300:
            raise BadRequestError("Name must be 1 to 300 characters.")
        file_name = _file_name(location)
        if self._read_file is None:
            raise BadRequestError("Bastion holds no files to read a threat list from.")
        try:
            text = self._read_file(file_name).decode("utf-8")
        except Exception as exc:  # noqa: BLE001 - the operator's location is at fault
            raise BadRequestError(f"The threat list {location} cannot be read: "
                                  f"{type(exc).__name__}") from None
        entries = _entries(text)
        intel = IntelSet(uuid.uuid4().hex, name, format_, location,
                         "ACTIVE" if activate else "INACTIVE", _networks(entries),
                         self.clock.time())
        if self._store is not None:
            with self._store.transaction() as uow:
                uow.threats.save_intel_set(ThreatIntelSetRow(
                    intel.id, name, format_, location, intel.status, entries,
                    _dt(intel.created_at)))
        with self._lock:
            self._intel[intel.id] = intel
            self._apply_intel()
        return intel

    def intel_sets(self) -> list[IntelSet]:
        with self._lock:
            return sorted(self._intel.values(), key=lambda s: (s.created_at, s.id))

    def intel_set(self, intel_id: str) -> IntelSet:
        """:raises NotFoundError: no such threat list."""
        with self._lock:
            found = self._intel.get(intel_id)
        if found is None:
            raise NotFoundError(f"The request is rejected because the threat intel set "
                                f"{intel_id} does not exist.")
        return found

    def delete_intel_set(self, intel_id: str) -> None:
        self.intel_set(intel_id)
        if self._store is not None:
            with self._store.transaction() as uow:
                uow.threats.delete_intel_set(intel_id)
        with self._lock:
            self._intel.pop(intel_id, None)
            self._apply_intel()

    def _apply_intel(self) -> None:
        self.detector.set_threat_list(
            n for s in self._intel.values() if s.status == "ACTIVE" for n in s.networks)


def _row(f: Finding) -> ThreatFindingRow:
    return ThreatFindingRow(f.id, f.type, f.resource_id, _dt(f.first_seen),
                            _dt(f.last_seen), f.count, f.archived, _dt(f.updated_at),
                            {"evidence": f.evidence, "sourceIp": f.source_ip,
                             "accessKeyId": f.access_key_id, "api": f.api})


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _iso(epoch: float) -> str:
    return _dt(epoch).strftime("%Y-%m-%dT%H:%M:%S.") + f"{_dt(epoch).microsecond // 1000:03d}Z"


def _json(value: Any) -> str:
    import json
    return json.dumps(value, sort_keys=True, default=str)


def _remote(address: str) -> dict[str, Any]:
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        return {}
    return {"IpAddressV4": address} if version == 4 else {"IpAddressV6": address}


def _file_name(location: str) -> str:
    if location.startswith("bastion-file://"):
        return location[len("bastion-file://"):]
    marker = "/_bastion/files/"
    if marker in location:
        from urllib.parse import unquote
        return unquote(location.split(marker, 1)[1].split("?", 1)[0])
    return location


def _entries(text: str) -> list[str]:
    """The addresses and networks of a TXT threat list (``#`` comments, blank lines).

    :raises BadRequestError: an entry that is neither, or too many.
    """
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise BadRequestError(f"line {number} of the threat list is not an IP "
                                  f"address or network: {entry[:60]!r}") from None
        entries.append(entry)
        if len(entries) > MAX_INTEL_ENTRIES:
            raise BadRequestError(f"a threat list holds at most {MAX_INTEL_ENTRIES} entries")
    return entries


def _networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


# -- FindingCriteria --------------------------------------------------------------------

_FIELDS = {
    "id": "Id", "type": "Type", "severity": "Severity", "region": "Region",
    "accountId": "AccountId", "updatedAt": "UpdatedAt", "createdAt": "CreatedAt",
    "confidence": "Confidence", "service.archived": "Service.Archived",
    "service.count": "Service.Count",
    "service.eventFirstSeen": "Service.EventFirstSeen",
    "service.eventLastSeen": "Service.EventLastSeen",
    "resource.resourceType": "Resource.ResourceType",
    "resource.accessKeyDetails.accessKeyId": "Resource.AccessKeyDetails.AccessKeyId",
    "service.action.actionType": "Service.Action.ActionType",
    "service.action.awsApiCallAction.api": "Service.Action.AwsApiCallAction.Api",
    "service.action.awsApiCallAction.remoteIpDetails.ipAddressV4":
        "Service.Action.AwsApiCallAction.RemoteIpDetails.IpAddressV4",
    "service.action.networkConnectionAction.remoteIpDetails.ipAddressV4":
        "Service.Action.NetworkConnectionAction.RemoteIpDetails.IpAddressV4",
}
"""The criterion fields Bastion answers (GuardDuty's names → the finding's members)."""


def _field(document: Mapping[str, Any], name: str) -> Any:
    path = _FIELDS.get(name)
    if path is None:
        raise BadRequestError(f"The request is rejected because the criterion field "
                              f"{name!r} is not supported.")
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (1, float(value))
    return (2, str(value))


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.endswith("Z"):
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=UTC).timestamp() * 1000
    return None


def _matches(document: Mapping[str, Any], criteria: Mapping[str, Any] | None) -> bool:
    if not criteria:
        return True
    for name, condition in (criteria.get("Criterion") or {}).items():
        value = _field(document, name)
        if not isinstance(condition, Mapping):
            raise BadRequestError(f"The condition of {name!r} must be an object.")
        for op, operand in condition.items():
            if not _holds(op, value, operand):
                return False
    return True


def _holds(op: str, value: Any, operand: Any) -> bool:
    text = "" if value is None else (str(value).lower() if isinstance(value, bool)
                                     else str(value))
    if op in ("Eq", "Equals"):
        return text in [str(o) for o in operand]
    if op in ("Neq", "NotEquals"):
        return text not in [str(o) for o in operand]
    if op in ("Matches", "NotMatches"):
        import fnmatch
        hit = any(fnmatch.fnmatchcase(text, str(o)) for o in operand)
        return hit if op == "Matches" else not hit
    number = _as_number(value)
    if number is None:
        return False
    limits = {"Gt": number > operand, "GreaterThan": number > operand,
              "Gte": number >= operand, "GreaterThanOrEqual": number >= operand,
              "Lt": number < operand, "LessThan": number < operand,
              "Lte": number <= operand, "LessThanOrEqual": number <= operand}
    if op not in limits:
        raise BadRequestError(f"The request is rejected because the condition {op!r} is "
                              "not supported.")
    return bool(limits[op])



