"""The threat detector: what the API's callers and the devices' connections did, turned
into signals (:class:`~._model.Signal`). Pure: no clock, no storage, no I/O; the caller
gives each observation its time. Not thread-safe (the service holds a lock).

Theory of operation
-------------------
* **Failed authentications** (a request whose signature, key or token was refused) are
  counted per source address over ``burst_window`` seconds; ``burst_failures`` of them
  make a SignatureFailureBurst signal and, when ``block_seconds`` > 0, block the address
  for that long (:meth:`ThreatDetector.blocked`): credential stuffing stops at the
  threshold instead of running until it succeeds.
* **Access keys** learn the addresses they are used from. After ``learn_calls``
  successful calls, an address never seen is a NewSourceAddress signal; two different
  addresses within ``concurrent_seconds`` of each other are KeyUsedFromTwoAddresses. A
  key's calls per minute are averaged (exponentially, per minute); a minute with more
  than ``rate_factor`` times the average and at least ``rate_floor`` calls, once the key
  has ``rate_history_minutes`` of history, is UnusualCallRate.
* **Risky changes** are read from the operation and its parameters once it succeeded:
  a policy (version) allowing ``*`` or ``iot:*``; logging disabled; a scheduled audit
  deleted; a CA certificate registered or activated; ``mass_certificates`` certificate
  revocations/deactivations or creations within ``mass_window`` seconds; a fleet
  provisioning template without a pre-provisioning hook.
* **Device certificates**: a connection while another connection of the same
  certificate from another address is live, or ``clone_addresses`` distinct addresses
  within ``clone_window`` seconds, is CertificateCloned.
* **Failed device connects** (the IoT logs' ERROR entries, when they are on) are counted
  per source address like failed API authentications: a burst is ConnectFailureBurst.
* **Threat lists** (operator-imported networks): an API call or a device connection from
  an address inside one is a ThreatListAddress signal.
"""

from __future__ import annotations

import ipaddress
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._model import Signal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

AUTH_FAILURES: Final = frozenset({
    "InvalidSignatureException", "UnrecognizedClientException", "IncompleteSignature",
    "MissingAuthenticationTokenException", "InvalidClientTokenId",
    "SignatureDoesNotMatch", "ExpiredTokenException", "InvalidSignature",
    "AccessDeniedException", "UnauthorizedException", "InvalidRequestException",
})
"""Errors answered to a request whose authentication failed (caller unknown)."""
REVOKING: Final = frozenset({"REVOKED", "INACTIVE", "PENDING_TRANSFER"})
CREATING: Final = frozenset({"CreateKeysAndCertificate", "CreateCertificateFromCsr",
                             "RegisterCertificate", "RegisterCertificateWithoutCA"})


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    burst_failures: int = 20
    burst_window: float = 60.0
    block_seconds: float = 900.0
    learn_calls: int = 20
    concurrent_seconds: float = 60.0
    rate_factor: float = 10.0
    rate_floor: int = 300
    rate_history_minutes: int = 30
    mass_certificates: int = 50
    mass_window: float = 600.0
    clone_addresses: int = 3
    clone_window: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("burst_failures", "learn_calls", "mass_certificates",
                     "clone_addresses", "rate_floor"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("burst_window", "concurrent_seconds", "mass_window", "clone_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.block_seconds < 0:
            raise ValueError("block_seconds must not be negative")


@dataclass(slots=True)
class _KeyUse:
    calls: int = 0
    addresses: dict[str, float] = field(default_factory=dict)
    minute: int = -1
    in_minute: int = 0
    average: float = 0.0
    minutes: int = 0
    flagged_minute: int = -1


class ThreatDetector:
    """See the module docstring."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        self._failures: dict[str, deque[tuple[float, str]]] = {}
        self._connect_failures: dict[str, deque[tuple[float, str]]] = {}
        self._blocked: dict[str, float] = {}
        self._keys: dict[str, _KeyUse] = {}
        self._revocations: deque[float] = deque()
        self._creations: deque[float] = deque()
        self._live: dict[str, dict[str, str]] = {}       # certificate → session → address
        self._seen_from: dict[str, dict[str, float]] = {}  # certificate → address → time
        self._threats: list[Network] = []

    # -- threat lists ----------------------------------------------------------------------

    def set_threat_list(self, networks: Iterable[Network]) -> None:
        self._threats = list(networks)

    def listed(self, address: str) -> Network | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        return next((n for n in self._threats if ip.version == n.version and ip in n), None)

    # -- the API ---------------------------------------------------------------------------

    def blocked(self, address: str, at: float) -> float | None:
        """Until when ``address`` is blocked (``None``: it is not)."""
        until = self._blocked.get(address)
        if until is None:
            return None
        if until <= at:
            del self._blocked[address]
            return None
        return until

    def api_call(self, *, source_ip: str, access_key_id: str, authenticated: bool,
                 operation: str, parameters: Mapping[str, Any], outcome: str,
                 error_code: str | None, at: float) -> list[Signal]:
        """One answered API request."""
        signals: list[Signal] = []
        listed = self.listed(source_ip)
        if listed is not None:
            signals.append(Signal("UnauthorizedAccess:IoTAPI/ThreatListAddress", source_ip, at,
                                  {"network": str(listed), "operation": operation},
                                  source_ip, access_key_id, operation))
        if not authenticated:
            if error_code in AUTH_FAILURES:
                signals.extend(self._failed(source_ip, access_key_id, at))
            return signals
        signals.extend(self._key_used(source_ip, access_key_id, operation, at))
        if outcome == "allowed":
            signals.extend(self._change(source_ip, access_key_id, operation, parameters, at))
        return signals

    def _failed(self, source_ip: str, key: str, at: float) -> list[Signal]:
        s = self.settings
        window = self._failures.setdefault(source_ip, deque())
        if not self._burst(window, at, key) or self.blocked(source_ip, at) is not None:
            return []
        keys = sorted({k for _, k in window if k})[:10]
        evidence: dict[str, Any] = {"failures": len(window), "windowSeconds": s.burst_window,
                                    "keysTried": keys}
        if s.block_seconds > 0:
            self._blocked[source_ip] = at + s.block_seconds
            evidence["blockedUntil"] = at + s.block_seconds
        window.clear()
        return [Signal("CredentialAccess:IoTAPI/SignatureFailureBurst", source_ip, at,
                       evidence, source_ip, keys[0] if keys else "", "")]

    def _burst(self, window: deque[tuple[float, str]], at: float, who: str) -> bool:
        """Count one failure in ``window`` (those of one address); whether the window
        now holds a burst (``burst_failures`` within ``burst_window`` seconds)."""
        window.append((at, who))
        while window and window[0][0] < at - self.settings.burst_window:
            window.popleft()
        return len(window) >= self.settings.burst_failures

    def _key_used(self, source_ip: str, key: str, operation: str, at: float
                  ) -> list[Signal]:
        s = self.settings
        use = self._keys.setdefault(key, _KeyUse())
        signals: list[Signal] = []
        if use.calls >= s.learn_calls and source_ip not in use.addresses:
            signals.append(Signal(
                "UnauthorizedAccess:IoTAPI/NewSourceAddress", key, at,
                {"newAddress": source_ip, "knownAddresses": sorted(use.addresses)[:10]},
                source_ip, key, operation))
        others = sorted(a for a, t in use.addresses.items()
                        if a != source_ip and t >= at - s.concurrent_seconds)
        if others:
            signals.append(Signal(
                "UnauthorizedAccess:IoTAPI/KeyUsedFromTwoAddresses", key, at,
                {"addresses": [source_ip, *others[:9]],
                 "withinSeconds": s.concurrent_seconds}, source_ip, key, operation))
        use.addresses[source_ip] = at
        if len(use.addresses) > 256:  # keep the most recent addresses
            for old in sorted(use.addresses, key=use.addresses.__getitem__)[:64]:
                del use.addresses[old]
        use.calls += 1
        minute = int(at // 60)
        if minute != use.minute:
            if use.minute >= 0:
                gap = min(minute - use.minute, 60)
                for _ in range(gap):  # the minutes in between had no calls
                    use.average = 0.9 * use.average + 0.1 * use.in_minute
                    use.in_minute = 0
                use.minutes += gap
            use.minute, use.in_minute = minute, 0
        use.in_minute += 1
        if use.minutes >= s.rate_history_minutes and use.flagged_minute != minute \
                and use.in_minute >= s.rate_floor \
                and use.in_minute > s.rate_factor * max(use.average, 1.0):
            use.flagged_minute = minute
            signals.append(Signal(
                "Discovery:IoTAPI/UnusualCallRate", key, at,
                {"callsThisMinute": use.in_minute, "usualPerMinute": round(use.average, 2)},
                source_ip, key, operation))
        return signals

    def _change(self, source_ip: str, key: str, operation: str,
                parameters: Mapping[str, Any], at: float) -> list[Signal]:
        s = self.settings

        def signal(kind: str, resource: str, evidence: dict[str, Any]) -> Signal:
            return Signal(kind, resource, at, {"operation": operation, **evidence},
                          source_ip, key, operation)

        if operation in ("CreatePolicy", "CreatePolicyVersion"):
            wide = _wildcard_statements(parameters.get("policyDocument"))
            if wide:
                name = str(parameters.get("policyName", ""))
                return [signal("PrivilegeEscalation:IoTControlPlane/PolicyWidenedToWildcard",
                               f"policy/{name}", {"policyName": name,
                                                  "statements": wide[:5]})]
        elif operation in ("SetV2LoggingOptions", "SetLoggingOptions"):
            options = parameters.get("loggingOptionsPayload", parameters)
            if not isinstance(options, Mapping):
                return []
            level = options.get("defaultLogLevel", options.get("logLevel"))
            if options.get("disableAllLogs") is True or level == "DISABLED":
                return [signal("DefenseEvasion:IoTControlPlane/LoggingReduced", "logging",
                               {"disableAllLogs": options.get("disableAllLogs"),
                                "level": level})]
        elif operation == "SetV2LoggingLevel":
            if parameters.get("logLevel") == "DISABLED":
                return [signal("DefenseEvasion:IoTControlPlane/LoggingReduced", "logging",
                               {"logTarget": parameters.get("logTarget"),
                                "level": "DISABLED"})]
        elif operation == "DeleteScheduledAudit":
            name = str(parameters.get("scheduledAuditName", ""))
            return [signal("DefenseEvasion:IoTControlPlane/AuditScheduleDeleted",
                           f"scheduledaudit/{name}", {"scheduledAuditName": name})]
        elif operation == "RegisterCACertificate" or (
                operation == "UpdateCACertificate" and parameters.get("newStatus") == "ACTIVE"):
            return [signal("Persistence:IoTControlPlane/CACertificateRegistered", "cacert",
                           {"setAsActive": parameters.get("setAsActive"),
                            "certificateId": parameters.get("certificateId")})]
        elif (operation == "UpdateCertificate" and parameters.get("newStatus") in REVOKING) \
                or operation == "RevokeCertificate":
            if _mass(self._revocations, at, s.mass_window, s.mass_certificates):
                return [signal("Impact:IoTControlPlane/MassCertificateRevocation", "certificates",
                               {"certificates": s.mass_certificates,
                                "windowSeconds": s.mass_window})]
        elif operation in CREATING:
            if _mass(self._creations, at, s.mass_window, s.mass_certificates):
                return [signal("Persistence:IoTControlPlane/MassCertificateCreation",
                               "certificates", {"certificates": s.mass_certificates,
                                                "windowSeconds": s.mass_window})]
        elif operation in ("CreateProvisioningTemplate", "UpdateProvisioningTemplate"):
            kind = parameters.get("type") or "FLEET_PROVISIONING"
            if kind == "FLEET_PROVISIONING" and not parameters.get("preProvisioningHook") \
                    and parameters.get("enabled", True) is not False:
                name = str(parameters.get("templateName", ""))
                return [signal("Persistence:IoTControlPlane/ClaimTemplateWithoutHook",
                               f"provisioningtemplate/{name}", {"templateName": name})]
        return []

    # -- devices ---------------------------------------------------------------------------

    def device_error(self, entry: Mapping[str, Any], at: float) -> list[Signal]:
        """One ERROR entry of the IoT logs: failed connects are counted per source
        address like the API's failed authentications, and a burst of them is a
        ConnectFailureBurst (no block: the broker's own limits hold devices)."""
        if entry.get("eventType") != "Connect" or entry.get("status") != "Failure":
            return []
        source = str(entry.get("sourceIp") or "")
        if not source:
            return []
        s = self.settings
        window = self._connect_failures.setdefault(source, deque())
        if not self._burst(window, at, str(entry.get("clientId") or "")):
            return []
        clients = sorted({c for _, c in window if c})[:10]
        evidence = {"failures": len(window), "windowSeconds": s.burst_window,
                    "clientIds": clients, "reason": entry.get("reason")}
        window.clear()
        return [Signal("CredentialAccess:IoTDevice/ConnectFailureBurst", source, at,
                       evidence, source)]

    def device_connected(self, *, certificate_id: str, session_id: str, client_id: str,
                         source_ip: str, at: float) -> list[Signal]:
        s = self.settings
        signals: list[Signal] = []
        listed = self.listed(source_ip)
        if listed is not None:
            signals.append(Signal("UnauthorizedAccess:IoTDevice/ThreatListAddress",
                                  certificate_id, at,
                                  {"network": str(listed), "clientId": client_id},
                                  source_ip))
        if not certificate_id:
            return signals
        live = self._live.setdefault(certificate_id, {})
        seen = self._seen_from.setdefault(certificate_id, {})
        for address, last in list(seen.items()):
            if last < at - s.clone_window:
                del seen[address]
        seen[source_ip] = at
        concurrent = sorted({a for a in live.values() if a != source_ip})
        if concurrent or len(seen) >= s.clone_addresses:
            signals.append(Signal(
                "UnauthorizedAccess:IoTDevice/CertificateCloned", certificate_id, at,
                {"clientId": client_id, "address": source_ip,
                 "liveFromOtherAddresses": concurrent[:10],
                 "addressesWithinWindow": sorted(seen)[:10],
                 "windowSeconds": s.clone_window}, source_ip))
        live[session_id] = source_ip
        return signals

    def device_disconnected(self, *, certificate_id: str, session_id: str) -> None:
        live = self._live.get(certificate_id)
        if live is not None:
            live.pop(session_id, None)
            if not live:
                del self._live[certificate_id]


def _mass(window: deque[float], at: float, span: float, threshold: int) -> bool:
    """Count one event; true exactly when the window reaches ``threshold`` (then it
    restarts, so a long campaign signals once per ``threshold`` events)."""
    window.append(at)
    while window and window[0] < at - span:
        window.popleft()
    if len(window) >= threshold:
        window.clear()
        return True
    return False


def _wildcard_statements(document: object) -> list[dict[str, Any]]:
    """The Allow statements of a policy document whose actions include ``*`` or
    ``iot:*``."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, Mapping):
        return []
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    found = []
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if isinstance(actions, list) and any(a in ("*", "iot:*") for a in actions):
            found.append({"Action": actions, "Resource": statement.get("Resource")})
    return found
