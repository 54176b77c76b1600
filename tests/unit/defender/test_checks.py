"""Individual checks on hand-made data: the policy engine's verdicts on classic policies,
the journal windows and the concurrency rule, the logging options."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bastion.controlplane import device_policy_document
from bastion.defender.audit import CHECKS, AuditTaskType
from bastion.defender.audit._checks import CheckContext
from bastion.defender.audit._checks.connections import (
    concurrent_sessions,
    conflicting_window,
    shared_window,
)
from bastion.defender.audit._checks.policies import (
    iot_policy_allows_all_actions,
    iot_policy_overly_permissive,
    iot_policy_potential_misconfiguration,
)
from bastion.logging_options import LoggingState
from support.audit_fleet import ACCOUNT, ARN, NOW

THING = "${iot:Connection.Thing.ThingName}"


class PolicyFleet:
    """Just enough of a Fleet for the policy checks."""

    account = ACCOUNT

    def __init__(self, **documents: dict[str, Any] | str) -> None:
        self._documents = documents

    def default_policy_versions(self) -> Iterator[tuple[str, int, str]]:
        for name, document in self._documents.items():
            yield name, 1, document if isinstance(document, str) else json.dumps(document)


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _context(check: str, fleet: Any, *, task_type: AuditTaskType = AuditTaskType.ON_DEMAND_AUDIT_TASK,
             previous: datetime | None = None) -> CheckContext:
    return CheckContext(CHECKS[check], NOW, task_type, previous, {}, fleet)


def _flagged(check: str, function: Any, **documents: dict[str, Any] | str) -> dict[str, str]:
    outcome = function(_context(check, PolicyFleet(**documents)))
    assert outcome.total_resources == len(documents)
    return {f.resource.identifier.as_json()["policyVersionIdentifier"]["policyName"]:
            f.reason_code for f in outcome.findings}


OVERLY = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"


@pytest.mark.parametrize(("document", "broad"), [
    (_doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/*"}), True),
    (_doc({"Effect": "Allow", "Action": "iot:Connect",
           "Resource": f"{ARN}:client/${{iot:ClientId}}"}), True),
    (_doc({"Effect": "Allow", "Action": "iot:Connect",
           "Resource": f"{ARN}:client/${{iot:ClientId}}",
           "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}), False),
    (_doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/{THING}"}),
     False),
    (_doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/sensor-7"}),
     False),
    (_doc({"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/*"}), True),
    (_doc({"Effect": "Allow", "Action": "iot:Publish",
           "Resource": f"{ARN}:topic/{THING}/telemetry"}), False),
    (_doc({"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/telemetry"}),
     False),
    (_doc({"Effect": "Allow", "Action": "iot:Subscribe",
           "Resource": f"{ARN}:topicfilter/$aws/things/*/shadow/#"}), True),
    (_doc({"Effect": "Allow", "Action": "iot:UpdateThingShadow", "Resource": f"{ARN}:thing/*"}),
     True),
    (_doc({"Effect": "Allow", "Action": "iot:GetThingShadow",
           "Resource": f"{ARN}:thing/{THING}"}), False),
    (_doc({"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
          {"Effect": "Deny", "Action": "iot:*", "Resource": "*"}), False),
    (_doc({"Effect": "Allow", "NotAction": "iot:Connect", "Resource": "*"}), True),
    (device_policy_document(ACCOUNT), False),
], ids=["client-star", "client-id-var", "client-id-attached", "thing-name", "literal-client",
        "topic-star", "own-topic", "shared-literal-topic", "all-shadows", "thing-star",
        "own-shadow", "deny-wins", "not-action", "bastion-least-privilege"])
def test_overly_permissive(document: dict[str, Any] | str, broad: bool) -> None:
    assert _flagged(OVERLY, iot_policy_overly_permissive, p=document) == (
        {"p": "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"} if broad else {})


MISCONFIGURED = "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK"


def test_potential_misconfiguration() -> None:
    flagged = _flagged(
        MISCONFIGURED, iot_policy_potential_misconfiguration,
        wildcard=_doc({"Effect": "Allow", "Action": "iot:Subscribe",
                       "Resource": f"{ARN}:topicfilter/{THING}/*"},
                      {"Effect": "Deny", "Action": "iot:Subscribe",
                       "Resource": f"{ARN}:topicfilter/{THING}/admin/+"}),
        bypass=_doc({"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"],
                     "Resource": [f"{ARN}:topicfilter/fleet/*", f"{ARN}:topic/fleet/*"]},
                    {"Effect": "Deny", "Action": "iot:Subscribe",
                     "Resource": f"{ARN}:topicfilter/fleet/keys"}),
        receive_denied=_doc({"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"],
                             "Resource": [f"{ARN}:topicfilter/fleet/*", f"{ARN}:topic/fleet/*"]},
                            {"Effect": "Deny", "Action": ["iot:Subscribe", "iot:Receive"],
                             "Resource": [f"{ARN}:topicfilter/fleet/keys",
                                          f"{ARN}:topic/fleet/keys"]}),
        no_wildcard_allowed=_doc({"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"],
                                  "Resource": [f"{ARN}:topicfilter/fleet/status",
                                               f"{ARN}:topic/fleet/*"]},
                                 {"Effect": "Deny", "Action": "iot:Subscribe",
                                  "Resource": f"{ARN}:topicfilter/fleet/keys"}))
    assert flagged == {"wildcard": "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT",
                       "bypass": "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS"}


def test_allows_all_actions() -> None:
    assert _flagged(
        "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK", iot_policy_allows_all_actions,
        star=_doc({"Effect": "Allow", "Action": "*", "Resource": f"{ARN}:topic/x"}),
        iot_star=_doc({"Effect": "Allow", "Action": ["iot:*"], "Resource": "*"}),
        some=_doc({"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
                   "Resource": "*"}),
        prefix=_doc({"Effect": "Allow", "Action": "iot:*Shadow", "Resource": "*"}),
        denied=_doc({"Effect": "Deny", "Action": "iot:*", "Resource": "*"}),
    ) == {"star": "ALLOWS_ALL_IOT_ACTIONS", "iot_star": "ALLOWS_ALL_IOT_ACTIONS"}


def _session(start: datetime, end: datetime | None, ident: str) -> dict[str, Any]:
    return {"connection_id": ident, "connected_at": start, "disconnected_at": end,
            "client_id": ident, "certificate_id": "c", "source_ip": "192.0.2.1",
            "disconnect_reason": None}


def test_windows_are_awss() -> None:
    on_demand = _context("DEVICE_CERTIFICATE_SHARED_CHECK", None)
    assert shared_window(on_demand) == (NOW - timedelta(days=31, hours=2),
                                        NOW - timedelta(hours=2))
    assert conflicting_window(on_demand) == (NOW - timedelta(days=31), NOW)
    previous = NOW - timedelta(days=1)
    scheduled = _context("DEVICE_CERTIFICATE_SHARED_CHECK", None,
                         task_type=AuditTaskType.SCHEDULED_AUDIT_TASK, previous=previous)
    assert shared_window(scheduled) == (previous - timedelta(hours=2), NOW - timedelta(hours=2))
    assert conflicting_window(scheduled) == (previous, NOW)


def test_concurrency_rule() -> None:
    t = NOW - timedelta(days=1)
    hour = timedelta(hours=1)
    since, until = NOW - timedelta(days=2), NOW
    # Back to back (a takeover or a reconnect) is not concurrent.
    assert concurrent_sessions([_session(t, t + hour, "a"), _session(t + hour, None, "b")],
                               since, until) == []
    overlap = [_session(t, t + 2 * hour, "a"), _session(t + hour, t + 3 * hour, "b"),
               _session(t + 5 * hour, None, "c")]
    assert [s["connection_id"] for s in concurrent_sessions(overlap, since, until)] == ["a", "b"]
    # Overlapping only before the window: not in this audit.
    assert concurrent_sessions(overlap, t + 4 * hour, until) == []
    # Two sessions still open overlap forever.
    both_open = [_session(t, None, "a"), _session(t + hour, None, "b")]
    assert len(concurrent_sessions(both_open, since, until)) == 2


@pytest.mark.parametrize(("state", "disabled"), [
    (LoggingState(None, None), False),
    (LoggingState(None, None, fallback_level="CRITICAL"), True),
    (LoggingState({"logLevel": "DISABLED"}, None), True),
    (LoggingState({"logLevel": "ERROR"}, None), False),
    (LoggingState({"logLevel": "DISABLED"}, {"defaultLogLevel": "WARN"}), False),
    (LoggingState(None, {"defaultLogLevel": "INFO", "disableAllLogs": True}), True),
    (LoggingState(None, {"defaultLogLevel": "INFO"},
                  ({"targetType": "DEFAULT", "logLevel": "DISABLED"},)), True),
    (LoggingState(None, {"defaultLogLevel": "DISABLED"},
                  ({"targetType": "THING_GROUP", "logLevel": "DEBUG"},)), True),
], ids=["nothing-set", "config-critical", "v1-disabled", "v1-error", "v2-wins",
        "v2-disable-all", "v2-default-target", "v2-default-level"])
def test_logging_state(state: LoggingState, disabled: bool) -> None:
    assert state.disabled is disabled


def test_timestamps_are_aware() -> None:
    assert NOW.tzinfo is UTC
