"""Policy checks, decided by the policy engine itself rather than by reading strings.

Theory of operation
-------------------
Each policy's default version is compiled once and asked concrete questions about two
synthetic devices, an *attacker* and a *victim*, both things attached to their own
certificates, plus an unattached client with an arbitrary client id:

* IOT_POLICY_OVERLY_PERMISSIVE_CHECK — "could an arbitrary client id connect?" (iot:Connect
  on ``client/<that id>`` for a client whose id names no attached thing) and "could the
  attacker reach the victim's resources?" for every data-plane action (publish, receive,
  retain, subscribe, shadow and job-execution actions). The victim's resources are the
  policy's own Allow resource patterns instantiated for the victim (its thing name, client
  id, certificate fields in place of the policy variables, a victim-owned name in place of
  ``*``) plus the victim's standard topics (``<thing>/…``, ``$aws/things/<thing>/…``) and
  ``thing/<thing>``. Only resources that name the victim count, so a topic every device
  legitimately shares (``topic/telemetry``) is not broad access.
* IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK — a Deny on topics or topic filters that
  contains ``+`` or ``#`` (literal characters in policies, so the Deny protects nothing
  but that exact string); and a Deny on subscribing to a topic filter that the attacker
  can bypass: it may subscribe to a wildcard filter covering the topic (``a/b/#``,
  ``a/+/c``, ``#``, …) and receive the topic's messages.
* IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK (Bastion's) — an Allow statement whose actions cover
  every IoT action (``iot:*``, ``*``), asked of the engine one action at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from bastion.account import Account
from bastion.policy import (
    IOT_POLICY_ACTIONS,
    BoundPolicySet,
    CompiledPolicySet,
    Effect,
    MalformedPolicyError,
    Policy,
    PolicyDocument,
    RequestContext,
    Statement,
    bind,
    compile_policy_set,
    parse_policy,
)

from .._catalog import (
    ALLOWS_ALL_IOT_ACTIONS,
    ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS,
    POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT,
    TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS,
)
from .._model import FindingDraft, Resource, ResourceIdentifier, ResourceType
from ._base import CheckContext, CheckOutcome

ATTACKER: Final = "bastion-audit-probe-attacker"
VICTIM: Final = "bastion-audit-probe-victim"
ANY_CLIENT: Final = "bastion-audit-probe-anyclient"
PROBE_TYPE: Final = "bastion-audit-probe-type"
PROBE_IP: Final = "192.0.2.10"  # TEST-NET-1

#: Data-plane action → the resource type its ARN names.
DATA_PLANE: Final = {
    "iot:Publish": "topic",
    "iot:RetainPublish": "topic",
    "iot:Receive": "topic",
    "iot:Subscribe": "topicfilter",
    "iot:GetRetainedMessage": "topic",
    "iot:GetThingShadow": "thing",
    "iot:UpdateThingShadow": "thing",
    "iot:DeleteThingShadow": "thing",
    "iot:DescribeJobExecution": "thing",
    "iot:GetPendingJobExecutions": "thing",
    "iot:UpdateJobExecution": "thing",
    "iot:StartNextPendingJobExecution": "thing",
}

_VARIABLE: Final = re.compile(r"\$\{[^}]*\}")
_ARN: Final = re.compile(r"arn:[^:]*:iot:[^:]*:[^:]*:([a-z]+)/(.*)", re.DOTALL)
_VICTIM_TOPICS: Final = (f"{VICTIM}/data", f"$aws/things/{VICTIM}/shadow/update",
                         f"$aws/things/{VICTIM}/jobs/notify")


def _value_of(variable: str, who: str) -> str:
    """What a policy variable holds for a probe device (``who``: its name)."""
    name = variable[2:-1]
    if name.startswith("iot:Certificate.SerialNumber"):
        return "a77ac7"
    if name == "iot:Connection.Thing.ThingTypeName":
        return PROBE_TYPE
    return who


def _substitute(text: str, who: str) -> str:
    return _VARIABLE.sub(lambda m: _value_of(m.group(0), who), text)


def _instantiate(text: str) -> str:
    """A resource pattern made concrete for the victim."""
    return _substitute(text, VICTIM).replace("*", VICTIM).replace("?", "v")


def _context(account: Account, *, client_id: str, thing: str | None) -> RequestContext:
    name = thing or client_id
    return RequestContext(
        region=account.region, account=account.account_id, client_id=client_id,
        thing_name=thing,
        thing_type_name=PROBE_TYPE if thing else None, is_attached=thing is not None,
        certificate_subject={"CommonName": [name]},
        certificate_issuer={"CommonName": ["bastion-audit-probe-ca"]},
        certificate_serial_number="a77ac7", source_ip=PROBE_IP)


@dataclass(frozen=True, slots=True)
class _Probe:
    policy: Policy
    compiled: CompiledPolicySet
    attacker: BoundPolicySet
    account: Account

    def arn(self, kind: str, name: str) -> str:
        return self.account.arn(f"{kind}/{name}")


def _allow_patterns(document: PolicyDocument) -> Iterable[str]:
    for statement in document.statements:
        if statement.effect is Effect.ALLOW and statement.resources is not None:
            yield from statement.resources


def _candidates(probe: _Probe, kind: str) -> list[str]:
    """Victim-owned resources of ``kind`` to try: instantiated Allow patterns and the
    victim's standard names."""
    names: list[str] = []
    for pattern in _allow_patterns(probe.policy.document):
        if pattern == "*":
            continue
        match = _ARN.fullmatch(pattern)
        if match is None or match.group(1) != kind:
            continue
        name = _instantiate(match.group(2))
        if VICTIM in name or PROBE_TYPE in name:
            names.append(name)
    if kind in ("topic", "topicfilter"):
        names.extend(_VICTIM_TOPICS)
    elif kind == "thing":
        names.append(VICTIM)
    return list(dict.fromkeys(names))


def _broad_actions(probe: _Probe) -> dict[str, str]:
    """Action → a victim resource the attacker may use it on."""
    broad: dict[str, str] = {}
    # iot:Connect: any client id, from a client that is not an attached thing.
    connect_names = [ANY_CLIENT] + _candidates(probe, "client")
    for name in connect_names:
        context = _context(probe.account, client_id=name, thing=None)
        bound = bind(probe.compiled, context)
        if bound.is_allowed("iot:Connect", probe.arn("client", name)):
            broad["iot:Connect"] = probe.arn("client", name)
            break
    for action, kind in DATA_PLANE.items():
        for name in _candidates(probe, kind):
            resource = probe.arn(kind, name)
            if probe.attacker.is_allowed(action, resource):
                broad[action] = resource
                break
    return broad


def _parse(document: str) -> PolicyDocument | None:
    try:
        return parse_policy(document, max_length=None)
    except MalformedPolicyError:
        return None


def _policies(ctx: CheckContext) -> Iterable[tuple[str, str, Policy]]:
    for name, version, text in ctx.fleet.default_policy_versions():
        document = _parse(text)
        if document is not None:
            yield name, str(version), Policy(name, document, str(version))


def _resource(name: str, version: str, info: dict[str, str] | None = None) -> Resource:
    return Resource(ResourceType.IOT_POLICY, ResourceIdentifier.policy_version(name, version),
                    info or {})


def iot_policy_overly_permissive(ctx: CheckContext) -> CheckOutcome:
    account = ctx.fleet.account
    findings: list[FindingDraft] = []
    total = 0
    for name, version, policy in _policies(ctx):
        total += 1
        compiled = compile_policy_set([policy])
        attacker = bind(compiled, _context(account, client_id=ATTACKER, thing=ATTACKER))
        broad = _broad_actions(_Probe(policy, compiled, attacker, account))
        if not broad:
            continue
        actions = sorted(broad)
        info = {"BROAD_ACTIONS": ",".join(actions)}
        info.update({f"EXAMPLE_{a.split(':')[1].upper()}": r for a, r in sorted(broad.items())
                     if len(info) < 10})
        findings.append(FindingDraft(
            _resource(name, version, info), ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS,
            f"Policy allows broad access to IoT data plane actions: [{', '.join(actions)}]."))
    return CheckOutcome(total, findings)


def _topic_part(resource: str) -> tuple[str, str] | None:
    match = _ARN.fullmatch(resource)
    if match is None or match.group(1) not in ("topic", "topicfilter"):
        return None
    return match.group(1), match.group(2)


def _bypass_filters(topic: str) -> list[str]:
    """Wildcard topic filters that match ``topic``."""
    levels = topic.split("/")
    filters = ["#"]
    filters.extend("/".join(levels[:i] + ["#"]) for i in range(1, len(levels)))
    for i in range(len(levels)):
        filters.append("/".join(levels[:i] + ["+"] + levels[i + 1:]))
    filters.append("/".join("+" for _ in levels))
    return list(dict.fromkeys(filters))


def iot_policy_potential_misconfiguration(ctx: CheckContext) -> CheckOutcome:
    account = ctx.fleet.account
    findings: list[FindingDraft] = []
    total = 0
    for name, version, policy in _policies(ctx):
        total += 1
        wildcards: list[str] = []
        bypassed: list[str] = []
        attacker: BoundPolicySet | None = None
        for statement in policy.document.statements:
            if statement.effect is not Effect.DENY or statement.resources is None:
                continue
            for resource in statement.resources:
                part = _topic_part(resource)
                if part is None:
                    continue
                kind, written = part
                if "+" in written or "#" in written:
                    wildcards.append(resource)
                    continue
                topic = _substitute(written, ATTACKER)
                if kind != "topicfilter" or "*" in topic or "?" in topic:
                    continue
                if attacker is None:
                    attacker = bind(compile_policy_set([policy]),
                                    _context(account,
                                             client_id=ATTACKER, thing=ATTACKER))
                if not attacker.is_allowed("iot:Receive", account.arn(f"topic/{topic}")):
                    continue
                for bypass in _bypass_filters(topic):
                    if attacker.is_allowed("iot:Subscribe",
                                           account.arn(f"topicfilter/{bypass}")):
                        shown = bypass.replace(ATTACKER, "<thing>")
                        bypassed.append(f"{written} (via {shown})")
                        break
        if wildcards:
            findings.append(FindingDraft(
                _resource(name, version, {"RESOURCES": ",".join(wildcards[:10])}),
                POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT,
                "Policy contains MQTT wildcards (+ or #) in a Deny statement; policies "
                "treat them as literal characters, so the Deny does not cover the topics "
                f"they seem to: {', '.join(wildcards[:5])}."))
        if bypassed:
            findings.append(FindingDraft(
                _resource(name, version, {"TOPIC_FILTERS": ",".join(bypassed[:10])}),
                TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS,
                "Policy denies subscribing to topic filters that can still be received by "
                f"subscribing with wildcards: {', '.join(bypassed[:5])}."))
    return CheckOutcome(total, findings)


def _allows_every_action(statement: Statement, account: Account) -> bool:
    if statement.effect is not Effect.ALLOW or statement.actions is None:
        return False
    probe = parse_policy(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": list(statement.actions), "Resource": "*"}]}),
        max_length=None)
    bound = bind(compile_policy_set([Policy("probe", probe)]),
                 _context(account, client_id=ANY_CLIENT, thing=None))
    resource = account.arn(f"topic/{ANY_CLIENT}")
    return all(bound.is_allowed(action, resource) for action in sorted(IOT_POLICY_ACTIONS))


def iot_policy_allows_all_actions(ctx: CheckContext) -> CheckOutcome:
    account = ctx.fleet.account
    findings: list[FindingDraft] = []
    total = 0
    for name, version, policy in _policies(ctx):
        total += 1
        indexes = [str(i) for i, statement in enumerate(policy.document.statements)
                   if _allows_every_action(statement, account)]
        if indexes:
            findings.append(FindingDraft(
                _resource(name, version, {"STATEMENTS": ",".join(indexes)}),
                ALLOWS_ALL_IOT_ACTIONS,
                "Policy allows every IoT action (iot:* or *) in statement(s) "
                f"{', '.join(indexes)}; grant only the actions devices need."))
    return CheckOutcome(total, findings)
