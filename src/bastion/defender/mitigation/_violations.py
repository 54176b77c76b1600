"""What a Device Defender detect violation sets off.

For each violation event the detect service raises (a worker thread calls
:meth:`ViolationResponse.on_violation`):

* an alert to each of the profile's alert targets, unless the behaviour suppresses
  alerts, in the shape of AWS's violation notification (:func:`violation_message`);
* when the event opens an alarm (``in-alarm``): the profile's mitigation actions
  (ADD_THINGS_TO_THING_GROUP: the thing goes into the quarantine groups, and the broker
  re-binds its live session at once), and for a behaviour marked severe, every
  certificate of the thing set INACTIVE (its sessions dropped at once).

Mitigation actions tasks started by an operator (StartDetectMitigationActionsTask) apply
actions through :meth:`ViolationResponse.apply_task_action`. Every automated change is
recorded in the trail under the ``system:detect`` key, with the violation id.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from bastion.alerts import AlertDispatcher, new_alert
from bastion.defender.detect import (
    EXPLANATION_MEMBER,
    ActionOutcome,
    ExecutionStatus,
    FleetEvent,
    SecurityProfile,
    TargetViolation,
    ViolationEvent,
    ViolationEventType,
)
from bastion.trail import Trail

from ._actions import MitigationActionService, MitigationActionType
from ._effects import MitigationEffects

log = logging.getLogger("bastion.detect")

SYSTEM_KEY: Final = "system:detect"
"""The access key the trail names for detect's own changes."""


class ViolationResponse:
    """Alerts and mitigation for detect's violations (see the module docstring).

    :param alerts: the alert dispatcher (``None``: no alerts are sent).
    """

    def __init__(self, *, actions: MitigationActionService, effects: MitigationEffects,
                 trail: Trail, alerts: AlertDispatcher | None) -> None:
        self._actions = actions
        self._effects = effects
        self._trail = trail
        self._alerts = alerts
        self.actions_taken: list[tuple[str, str, str]] = []
        """(violation id, operation, outcome) of every automated change."""

    def on_violation(self, event: ViolationEvent, profile: SecurityProfile) -> None:
        """Alerts and mitigation for one violation event (worker thread)."""

        if not event.behavior.suppress_alerts:
            self._alert(event, profile)
        if event.event_type is ViolationEventType.IN_ALARM:
            for name in profile.mitigation_actions:
                self.mitigate(event, name)
            if event.behavior.severe:
                self._deactivate(event)

    def on_fleet_event(self, event: FleetEvent, profile: SecurityProfile) -> None:
        """One alert for a group that moved together (no violation was raised)."""
        dispatcher = self._alerts
        if dispatcher is None or not profile.alert_targets:
            return
        subject = (f"Device Defender: fleet event, {event.abnormal} of {event.devices} "
                   f"devices of {event.group} moved together ({event.metric})")
        self._send(dispatcher, profile, subject,
                   {"fleetEvent": event.to_json(), "securityProfileName": profile.name})

    def apply_task_action(self, task_id: str, violation: TargetViolation,
                          action_name: str) -> ActionOutcome:
        """One action of a detect mitigation actions task, on one violation."""

        try:
            return self.mitigate(violation, action_name, {"taskId": task_id})
        except Exception as exc:
            log.exception("detect: task %s failed on %s", task_id, violation.violation_id)
            return ActionOutcome(ExecutionStatus.FAILED, "InternalFailureException", str(exc))

    def action_exists(self, name: str) -> bool:
        try:
            self._actions.describe_action(name)
        except Exception:  # noqa: BLE001 - any lookup failure means "no such action"
            return False
        return True

    def mitigate(self, event: ViolationEvent | TargetViolation, action_name: str,
                 extra: dict[str, Any] | None = None) -> ActionOutcome:
        """Apply one ADD_THINGS_TO_THING_GROUP action to the violation's thing, recording
        each change in the trail."""

        extra = extra or {}
        try:
            action = self._actions.describe_action(action_name)
        except Exception as exc:  # noqa: BLE001 - an action that fails is logged and recorded
            log.warning("detect: mitigation action %s: %s", action_name, exc)
            self._record(event, "ApplyMitigationAction", {"actionName": action_name, **extra},
                         "error", "ResourceNotFoundException")
            return ActionOutcome(ExecutionStatus.FAILED, "ResourceNotFoundException",
                                 f"no mitigation action {action_name}")
        if action.action_type is not MitigationActionType.ADD_THINGS_TO_THING_GROUP:
            log.warning("detect: %s is not ADD_THINGS_TO_THING_GROUP; skipped", action_name)
            self._record(event, "ApplyMitigationAction", {"actionName": action_name, **extra},
                         "error", "InvalidRequestException")
            return ActionOutcome(ExecutionStatus.SKIPPED, "InvalidRequestException",
                                 f"{action.action_type.value} is not applied to violations")
        failure: ActionOutcome | None = None
        for group in action.type_params.get("thingGroupNames", ()):
            params = {"actionName": action_name, "thingGroupName": group,
                      "thingName": event.thing_name, **extra}
            try:
                self._effects.add_thing_to_group(group, event.thing_name)
            except Exception as exc:  # noqa: BLE001 - an action that fails is logged and recorded
                log.warning("detect: adding %s to %s failed: %s", event.thing_name, group, exc)
                self._record(event, "AddThingToThingGroup", params, "error",
                             type(exc).__name__)
                failure = ActionOutcome(ExecutionStatus.FAILED, type(exc).__name__, str(exc))
                continue
            log.info("detect: %s added to %s (violation %s)", event.thing_name, group,
                     event.violation_id)
            self._record(event, "AddThingToThingGroup", params, "allowed", None)
        return failure or ActionOutcome(ExecutionStatus.SUCCESSFUL)

    def _alert(self, event: ViolationEvent, profile: SecurityProfile) -> None:
        dispatcher = self._alerts
        if dispatcher is None or not profile.alert_targets:
            return
        subject = (f"Device Defender: {event.thing_name} {event.event_type.value} "
                   f"({profile.name}/{event.behavior.name})")
        self._send(dispatcher, profile, subject, violation_message(event))

    @staticmethod
    def _send(dispatcher: AlertDispatcher, profile: SecurityProfile, subject: str,
              body: dict[str, Any]) -> None:
        """One alert to each of the profile's alert targets."""
        for target in profile.alert_targets.values():
            arn = target.get("alertTargetArn", "") if isinstance(target, dict) else ""
            name = dispatcher.targets.name_of(arn) or arn
            try:
                dispatcher.submit(name, new_alert("detect", subject, body))
            except Exception:
                log.exception("detect: alert to %s failed", arn)

    def _deactivate(self, event: ViolationEvent) -> None:
        try:
            certificates = self._effects.certificates_of_thing(event.thing_name)
        except Exception:  # noqa: BLE001 - no such thing any more: nothing to deactivate
            return
        for certificate_id in certificates:
            params = {"certificateId": certificate_id, "newStatus": "INACTIVE"}
            try:
                self._effects.deactivate_certificate(certificate_id)
            except Exception as exc:  # noqa: BLE001 - an action that fails is logged and recorded
                self._record(event, "UpdateCertificate", params, "error", type(exc).__name__)
                continue
            self._record(event, "UpdateCertificate", params, "allowed", None)

    def _record(self, event: ViolationEvent | TargetViolation, operation: str,
                parameters: dict[str, Any], outcome: str, error: str | None) -> None:
        behavior = (event.behavior.name if isinstance(event, ViolationEvent)
                    else event.behavior_name)
        self.actions_taken.append((event.violation_id, operation, outcome))
        try:
            self._trail.append(caller=None, access_key_id=SYSTEM_KEY, source_ip="127.0.0.1",
                               service="iot", operation=operation,
                               parameters={**parameters, "violationId": event.violation_id,
                                           "securityProfileName": event.security_profile_name,
                                           "behaviorName": behavior},
                               outcome=outcome, error_code=error,
                               http_status=200 if outcome == "allowed" else 500)
        except Exception:
            log.exception("detect: recording %s in the trail failed", operation)


def violation_message(event: ViolationEvent) -> dict[str, Any]:
    """The alert payload, modelled on AWS's Device Defender violation notification."""
    behavior = event.behavior.to_json()
    message: dict[str, Any] = {
        "violationEventTime": int(event.timestamp * 1000),
        "thingName": event.thing_name,
        "behavior": behavior,
        "violationEventType": event.event_type.value,
        "violationId": event.violation_id,
        "securityProfileName": event.security_profile_name,
    }
    if event.metric_value is not None:
        message["metricValue"] = event.metric_value.to_json()
    for key in ("violationEventAdditionalInfo", EXPLANATION_MEMBER):
        value = event.to_json().get(key)
        if value is not None:
            message[key] = value
    return message
