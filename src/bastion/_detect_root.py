"""The composition of Device Defender detect inside a running Bastion (part of the
composition root, :mod:`bastion.app`).

Builds the detect service on the app's control plane, the broker's metrics-report
topics and cloud-side sampler, and the evaluation loop (one tick per detect interval:
sample, evaluate, expire). Violation events go to the profile's alert targets (through
the app's alert dispatcher) and, when they open an alarm, to the profile's mitigation
actions, applied through the registry services so the broker re-binds the device's live
session at once; every automated action lands in the trail with the violation id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from .alerts import AlertDispatcher, new_alert
from .broker import Broker, Message
from .clock import Clock, SystemClock
from .controlplane import ControlPlane
from .defender.detect import (
    ActionOutcome,
    DetectMitigationTasks,
    DetectService,
    ExecutionStatus,
    SecurityProfile,
    StoreRecords,
    TargetViolation,
    ViolationEvent,
    ViolationEventType,
    attach_detect,
    detach_detect,
)
from .defender.mitigation import MitigationActionService, MitigationActionType
from .registry import (
    CertificateStatus,
    RegistryError,
    ResourceNotFoundError,
    ThingDeleted,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
)
from .reserved.defender import TOPIC_METRICS, CloudMetricSampler, DefenderMetricsTopics
from .trail import Trail

log = logging.getLogger("bastion.detect")

SYSTEM_KEY = "system:detect"
DEFAULT_MIN_REPORT_PERIOD = 300.0


class DetectRuntime:
    """Detect of one app.

    :param interval: seconds between evaluations (cloud-side sampling).
    :param clock: the time of reports and evaluations (tests move it by hand).
    :param alerts: returns the app's alert dispatcher, if running.
    :param sleep: waits between ticks (tests never rely on it: they call :meth:`tick`).
    """

    def __init__(self, plane: ControlPlane, broker: Broker, *, interval: float,
                 clock: Clock | None = None,
                 alerts: Callable[[], AlertDispatcher | None] = lambda: None,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 invalidate_after: float = 2 * 86400) -> None:
        self._plane = plane
        self._broker = broker
        self.interval = interval
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._alerts = alerts
        self._sleep = sleep or asyncio.sleep
        account = plane.account
        self.service = DetectService(
            membership=self._membership,
            account=account,
            on_event=self._on_event, invalidate_after=invalidate_after, clock=self.clock,
            records=StoreRecords(plane.store), statistics_ttl=interval)
        self.actions = MitigationActionService(plane.store, account=account)
        self.tasks = DetectMitigationTasks(
            self.service, self._apply_task_action, action_exists=self._action_exists,
            run=_on_worker_thread)
        self.service.mitigation_tasks = self.tasks
        self._loop: asyncio.AbstractEventLoop | None = None
        self.trail = Trail(plane.store)
        self.sampler: CloudMetricSampler | None = None
        self.topics: DefenderMetricsTopics | None = None
        self._task: asyncio.Task[None] | None = None
        self.actions_taken: list[tuple[str, str, str]] = []
        """(violation id, action name, outcome) of every automated action."""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.service.on_export = self._export
        await asyncio.to_thread(self.service.load)
        self.sampler = CloudMetricSampler(
            self._broker, self.service.dimensions_in_use,
            lambda thing, registered: self.service.topic_dimensions_for(
                thing, registered, TOPIC_METRICS))
        self.topics = DefenderMetricsTopics(
            self._broker, self.service,
            min_period=min(DEFAULT_MIN_REPORT_PERIOD, self.interval), clock=self.clock)
        self._broker.reserved_handlers.append(self.topics)
        attach_detect(self._broker, self.service)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        detach_detect(self._broker)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.sampler is not None:
            self.sampler.close()

    async def _run(self) -> None:
        while True:
            await self._sleep(self.interval)
            try:
                await self.tick()
            except Exception:
                log.exception("detect: evaluation failed")

    async def tick(self) -> list[ViolationEvent]:
        """Sample the cloud-side metrics, evaluate them, invalidate silent alarms.
        Runs on the broker's loop; returns the violation events raised."""
        assert self.sampler is not None
        now = self.clock.time()
        points = self.sampler.sample(now)
        events = await asyncio.to_thread(self.service.ingest, points, now)
        events += await asyncio.to_thread(self.service.expire, now)
        return events

    def registry_event(self, event: object) -> None:
        """Registry changes that move things in or out of profile targets."""
        if isinstance(event, (ThingGroupMembershipChanged, ThingDeleted)):
            self.service.membership_changed(event.thing_name)
        elif isinstance(event, ThingGroupDeleted):
            self.service.membership_changed()

    # -- plumbing for the service --------------------------------------------------------

    def _membership(self, thing: str) -> tuple[bool, frozenset[str]]:
        registry = self._plane.registry
        try:
            names: set[str] = set()
            token: str | None = None
            while True:
                page, token = registry.list_thing_groups_for_thing(thing, next_token=token)
                names.update(g.group_name for g in page)
                if not token:
                    break
        except RegistryError:  # no such thing, or a client id that is no thing name
            return False, frozenset()
        for group in list(names):  # a profile on a parent group covers its children
            try:
                described = registry.describe_thing_group(group)
            except ResourceNotFoundError:
                continue
            names.update(g.group_name for g in described.root_to_parent_thing_groups)
        return True, frozenset(names)

    def _export(self, topic: str, document: dict[str, Any]) -> None:
        """Publish an exported metrics batch on Bastion's own broker (any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        message = Message(topic, json.dumps(document).encode("utf-8"), 0, False)
        loop.call_soon_threadsafe(self._broker.publish, message)

    def _on_event(self, event: ViolationEvent, profile: SecurityProfile) -> None:
        """Alerts and mitigation for one violation event (worker thread)."""
        if not event.behavior.suppress_alerts:
            self._alert(event, profile)
        if event.event_type is ViolationEventType.IN_ALARM:
            for name in profile.mitigation_actions:
                self._mitigate(event, name)
            if event.behavior.severe:
                self._deactivate(event)

    def _alert(self, event: ViolationEvent, profile: SecurityProfile) -> None:
        dispatcher = self._alerts()
        if dispatcher is None or not profile.alert_targets:
            return
        body = violation_message(event)
        subject = (f"Device Defender: {event.thing_name} {event.event_type.value} "
                   f"({profile.name}/{event.behavior.name})")
        for target in profile.alert_targets.values():
            arn = target.get("alertTargetArn", "") if isinstance(target, dict) else ""
            name = dispatcher.targets.name_of(arn) or arn
            try:
                dispatcher.submit(name, new_alert("detect", subject, body))
            except Exception:
                log.exception("detect: alert to %s failed", arn)

    def _record(self, event: ViolationEvent | TargetViolation, operation: str,
                parameters: dict[str, Any], outcome: str, error: str | None) -> None:
        behavior = (event.behavior.name if isinstance(event, ViolationEvent)
                    else event.behavior_name)
        self.actions_taken.append((event.violation_id, operation, outcome))
        try:
            self.trail.append(caller=None, access_key_id=SYSTEM_KEY, source_ip="127.0.0.1",
                              service="iot", operation=operation,
                              parameters={**parameters, "violationId": event.violation_id,
                                          "securityProfileName": event.security_profile_name,
                                          "behaviorName": behavior},
                              outcome=outcome, error_code=error,
                              http_status=200 if outcome == "allowed" else 500)
        except Exception:
            log.exception("detect: recording %s in the trail failed", operation)

    def _mitigate(self, event: ViolationEvent | TargetViolation, action_name: str,
                  extra: dict[str, Any] | None = None) -> ActionOutcome:
        """Apply one ADD_THINGS_TO_THING_GROUP action to the violation's thing through
        the registry (the broker re-binds its live session), recording it in the trail."""
        extra = extra or {}
        try:
            action = self.actions.describe_action(action_name)
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
                self._plane.registry.add_thing_to_thing_group(
                    thing_group_name=group, thing_name=event.thing_name)
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

    def _apply_task_action(self, task_id: str, violation: TargetViolation,
                           action_name: str) -> ActionOutcome:
        try:
            return self._mitigate(violation, action_name, {"taskId": task_id})
        except Exception as exc:
            log.exception("detect: task %s failed on %s", task_id, violation.violation_id)
            return ActionOutcome(ExecutionStatus.FAILED, "InternalFailureException", str(exc))

    def _action_exists(self, name: str) -> bool:
        try:
            self.actions.describe_action(name)
        except Exception:  # noqa: BLE001 - any lookup failure means "no such action"
            return False
        return True

    def _deactivate(self, event: ViolationEvent) -> None:
        try:
            principals: list[str] = []
            token: str | None = None
            while True:
                page, token = self._plane.registry.list_thing_principals(
                    event.thing_name, next_token=token)
                principals.extend(page)
                if not token:
                    break
        except Exception:  # noqa: BLE001 - an action that fails is logged and recorded
            return
        for arn in principals:
            if ":cert/" not in arn:
                continue
            certificate_id = arn.rsplit("/", 1)[1]
            params = {"certificateId": certificate_id, "newStatus": "INACTIVE"}
            try:
                self._plane.identity.update_certificate(certificate_id,
                                                        CertificateStatus.INACTIVE)
            except Exception as exc:  # noqa: BLE001 - an action that fails is logged and recorded
                self._record(event, "UpdateCertificate", params, "error", type(exc).__name__)
                continue
            self._record(event, "UpdateCertificate", params, "allowed", None)


def _on_worker_thread(job: Callable[[], None]) -> None:
    threading.Thread(target=job, name="detect-mitigation-task", daemon=True).start()


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
    return message
