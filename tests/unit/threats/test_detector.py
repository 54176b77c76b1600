"""The threat detector (:mod:`bastion.threats._detector`), driven with observations and
times: each signal raised by doing the thing, none by ordinary use."""

from __future__ import annotations

import ipaddress
import json
import random
from typing import Any

import pytest

from bastion.threats import TYPES, DetectorSettings, ThreatDetector

KEY = "AKIAOPERATOR0000001"
WIDE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})
NARROW = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iot:Publish"], "Resource": "arn:aws:iot:*:*:topic/a"}]})


def _call(detector: ThreatDetector, at: float, operation: str = "ListThings",
          source_ip: str = "10.0.0.1", key: str = KEY, authenticated: bool = True,
          outcome: str = "allowed", error_code: str | None = None,
          **parameters: Any) -> list[str]:
    return [s.type for s in detector.api_call(
        source_ip=source_ip, access_key_id=key, authenticated=authenticated,
        operation=operation, parameters=parameters, outcome=outcome,
        error_code=error_code, at=at)]


def test_every_type_has_a_severity_in_guarddutys_scale() -> None:
    assert all(1.0 <= t.severity <= 10.0 for t in TYPES.values())


def test_a_burst_of_bad_signatures_is_one_signal_and_blocks_the_source() -> None:
    detector = ThreatDetector(DetectorSettings(burst_failures=10, burst_window=60,
                                               block_seconds=300))
    seen: list[str] = []
    for i in range(9):
        seen += _call(detector, 100 + i, authenticated=False, outcome="denied",
                      error_code="InvalidSignatureException", source_ip="10.9.9.9",
                      key=f"AKIA{i}")
    assert seen == [] and detector.blocked("10.9.9.9", 109) is None
    seen = _call(detector, 110, authenticated=False, outcome="denied",
                 error_code="UnrecognizedClientException", source_ip="10.9.9.9")
    assert seen == ["CredentialAccess:IoTAPI/SignatureFailureBurst"]
    assert detector.blocked("10.9.9.9", 111) == 410
    assert detector.blocked("10.0.0.1", 111) is None
    assert detector.blocked("10.9.9.9", 411) is None  # the block ends


def test_failures_spread_out_are_not_a_burst() -> None:
    detector = ThreatDetector(DetectorSettings(burst_failures=5, burst_window=60))
    for i in range(20):
        assert _call(detector, i * 30.0, authenticated=False, outcome="denied",
                     error_code="InvalidSignatureException") == []


def test_a_key_learns_its_addresses_then_a_new_one_is_a_signal() -> None:
    detector = ThreatDetector(DetectorSettings(learn_calls=5, concurrent_seconds=60))
    for i in range(5):
        assert _call(detector, i * 100.0) == []
    assert _call(detector, 1000, source_ip="10.0.0.7") == [
        "UnauthorizedAccess:IoTAPI/NewSourceAddress"]
    assert _call(detector, 1100, source_ip="10.0.0.7") == []


def test_one_key_from_two_addresses_at_once() -> None:
    detector = ThreatDetector(DetectorSettings(learn_calls=1000))
    assert _call(detector, 0) == []
    assert _call(detector, 30, source_ip="10.0.0.2") == [
        "UnauthorizedAccess:IoTAPI/KeyUsedFromTwoAddresses"]
    assert _call(detector, 500, source_ip="10.0.0.1") == []  # long after: a move


def test_an_unusual_call_rate_after_a_history() -> None:
    detector = ThreatDetector(DetectorSettings(rate_floor=100, rate_factor=10,
                                               rate_history_minutes=30))
    for minute in range(40):
        for k in range(5):
            assert _call(detector, minute * 60 + k) == []
    signals = []
    for k in range(200):
        signals += _call(detector, 40 * 60 + k * 0.2)
    assert signals == ["Discovery:IoTAPI/UnusualCallRate"]


@pytest.mark.parametrize(("operation", "parameters", "expected"), [
    ("CreatePolicy", {"policyName": "p", "policyDocument": WIDE},
     "PrivilegeEscalation:IoTControlPlane/PolicyWidenedToWildcard"),
    ("CreatePolicyVersion", {"policyName": "p", "policyDocument": WIDE},
     "PrivilegeEscalation:IoTControlPlane/PolicyWidenedToWildcard"),
    ("SetV2LoggingOptions", {"disableAllLogs": True},
     "DefenseEvasion:IoTControlPlane/LoggingReduced"),
    ("SetV2LoggingOptions", {"defaultLogLevel": "DISABLED"},
     "DefenseEvasion:IoTControlPlane/LoggingReduced"),
    ("SetV2LoggingLevel", {"logTarget": {"targetType": "DEFAULT"}, "logLevel": "DISABLED"},
     "DefenseEvasion:IoTControlPlane/LoggingReduced"),
    ("DeleteScheduledAudit", {"scheduledAuditName": "daily"},
     "DefenseEvasion:IoTControlPlane/AuditScheduleDeleted"),
    ("RegisterCACertificate", {"setAsActive": True},
     "Persistence:IoTControlPlane/CACertificateRegistered"),
    ("UpdateCACertificate", {"certificateId": "c", "newStatus": "ACTIVE"},
     "Persistence:IoTControlPlane/CACertificateRegistered"),
    ("CreateProvisioningTemplate", {"templateName": "claim", "enabled": True},
     "Persistence:IoTControlPlane/ClaimTemplateWithoutHook"),
])
def test_risky_changes(operation: str, parameters: dict[str, Any], expected: str) -> None:
    assert _call(ThreatDetector(), 0, operation, **parameters) == [expected]


@pytest.mark.parametrize(("operation", "parameters"), [
    ("CreatePolicy", {"policyName": "p", "policyDocument": NARROW}),
    ("SetV2LoggingOptions", {"defaultLogLevel": "ERROR"}),
    ("UpdateCACertificate", {"certificateId": "c", "newStatus": "INACTIVE"}),
    ("CreateProvisioningTemplate", {"templateName": "t", "preProvisioningHook": {
        "targetArn": "arn:aws:lambda:us-east-1:123456789012:function:hook"}}),
    ("CreateProvisioningTemplate", {"templateName": "t", "type": "JITP"}),
])
def test_ordinary_changes_are_not_risky(operation: str, parameters: dict[str, Any]) -> None:
    assert _call(ThreatDetector(), 0, operation, **parameters) == []


def test_a_denied_risky_call_changes_nothing() -> None:
    assert _call(ThreatDetector(), 0, "CreatePolicy", outcome="error", policyName="p",
                 policyDocument=WIDE) == []


def test_mass_revocation_and_creation() -> None:
    detector = ThreatDetector(DetectorSettings(mass_certificates=10, mass_window=600))
    revoked = []
    for i in range(25):
        revoked += _call(detector, i * 10.0, "UpdateCertificate", certificateId=str(i),
                         newStatus="REVOKED")
    assert revoked == ["Impact:IoTControlPlane/MassCertificateRevocation"] * 2
    created = []
    for i in range(9):
        created += _call(detector, i * 100.0, "CreateKeysAndCertificate")
    assert created == []  # nine in 800 s, under ten


def test_a_certificate_live_from_two_addresses_is_cloned() -> None:
    detector = ThreatDetector()
    assert detector.device_connected(certificate_id="c1", session_id="s1", client_id="a",
                                     source_ip="10.1.1.1", at=0) == []
    [signal] = detector.device_connected(certificate_id="c1", session_id="s2",
                                         client_id="b", source_ip="10.1.1.2", at=5)
    assert signal.type == "UnauthorizedAccess:IoTDevice/CertificateCloned"
    assert signal.evidence["liveFromOtherAddresses"] == ["10.1.1.1"]


def test_a_device_reconnecting_from_its_address_is_not_cloned() -> None:
    detector = ThreatDetector()
    for i in range(50):
        assert detector.device_connected(certificate_id="c1", session_id=f"s{i}",
                                         client_id="a", source_ip="10.1.1.1",
                                         at=i * 60.0) == []
        detector.device_disconnected(certificate_id="c1", session_id=f"s{i}")


def test_threat_lists_match_api_callers_and_devices() -> None:
    detector = ThreatDetector()
    detector.set_threat_list([ipaddress.ip_network("203.0.113.0/24")])
    assert _call(detector, 0, source_ip="203.0.113.9") == [
        "UnauthorizedAccess:IoTAPI/ThreatListAddress"]
    [signal] = detector.device_connected(certificate_id="c", session_id="s", client_id="d",
                                         source_ip="203.0.113.77", at=1)
    assert signal.type == "UnauthorizedAccess:IoTDevice/ThreatListAddress"
    assert signal.evidence["network"] == "203.0.113.0/24"


def test_a_day_of_ordinary_operation_raises_nothing() -> None:
    """One operator key from one address, a few calls a minute with bursts of work, and a
    fleet of devices reconnecting from their own addresses."""
    rng = random.Random(5)
    detector = ThreatDetector()
    operations = ["ListThings", "DescribeThing", "CreateThing", "UpdateThingShadow",
                  "CreateJob", "DescribeJob", "ListViolationEvents", "CreatePolicy",
                  "AttachPolicy", "UpdateCertificate", "CreateKeysAndCertificate"]
    signals = []
    for minute in range(24 * 60):
        for _ in range(rng.randint(0, 6) + (40 if minute % 180 == 0 else 0)):
            operation = rng.choice(operations)
            parameters: dict[str, Any] = {"policyName": "p", "policyDocument": NARROW,
                                          "newStatus": "ACTIVE"}
            signals += _call(detector, minute * 60 + rng.random() * 60, operation,
                             **parameters)
        if minute % 10 == 0:
            for device in range(30):
                signals += [s.type for s in detector.device_connected(
                    certificate_id=f"cert-{device}", session_id=f"{minute}-{device}",
                    client_id=f"dev-{device}", source_ip=f"10.2.0.{device}",
                    at=minute * 60.0)]
                detector.device_disconnected(certificate_id=f"cert-{device}",
                                             session_id=f"{minute}-{device}")
    assert signals == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        DetectorSettings(burst_failures=0)
    with pytest.raises(ValueError):
        DetectorSettings(block_seconds=-1)
