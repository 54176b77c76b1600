"""The rotation sweep: every ACTIVE certificate measured against its policy, once a day.

Theory of operation
-------------------
:meth:`FleetSweep.sweep_if_due` claims the sweep (a compare-and-set of the time of the
last one in the store's settings, so that one node of a cluster sweeps per period) and
runs :meth:`FleetSweep.sweep`, which reads the ACTIVE certificates in batches with the
things they are on, and finds those due (:func:`~._policy.due_reason`) under the policy
that governs each (:mod:`._policies`). For the due certificates:

* every alert target named by their policies gets one alert (kind ``rotation``) listing
  them (at most :data:`MAX_LISTED`, with the total);
* where the policy says ``start_jobs``, a certificate on exactly one thing that has no
  rotation under way gets a rotation (:meth:`RotationService.start_rotation`). A
  certificate on no thing, or on several, is alerted about only: there is no one device
  to rotate it.

A sweep that fails half-way is logged; the next one picks up what is still due (a
rotation already started is not started again).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from bastion.alerts import Alert, new_alert

from ._errors import RotationError
from ._model import DueCertificate, SweepReport
from ._policy import RotationPolicy, due_reason
from ._service import RotationService

log = logging.getLogger("bastion.rotation")

LAST_SWEEP_KEY: Final = "rotation.last_sweep"
BATCH: Final = 1000
MAX_LISTED: Final = 200
ALERT_KIND: Final = "rotation"


class AlertSink(Protocol):
    """What the sweep needs of :class:`bastion.alerts.AlertDispatcher`."""

    def submit(self, target_name: str, alert: Alert) -> None: ...


class FleetSweep:
    """The daily sweep (see the module docstring).

    :param alerts: where alerts go (``None``: none are sent; the report still lists them).
    :param interval: how often a sweep is due.
    :raises ValueError: a non-positive interval.
    """

    def __init__(self, service: RotationService, *, alerts: AlertSink | None,
                 interval: timedelta = timedelta(days=1)) -> None:
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        self._service = service
        self._store = service.store
        self._alerts = alerts
        self.interval = interval
        self.last_report: SweepReport | None = None

    def next_sweep(self) -> datetime | None:
        """When the next sweep is due (``None``: never swept, so now)."""
        with self._store.transaction(readonly=True) as uow:
            last = uow.settings.get(LAST_SWEEP_KEY)
        return None if last is None else datetime.fromisoformat(last) + self.interval

    def sweep_if_due(self) -> SweepReport | None:
        """Sweep when a period has passed since the last sweep of any node."""
        now = self._service.now()
        with self._store.transaction(readonly=True) as uow:
            last = uow.settings.get(LAST_SWEEP_KEY)
        if last is not None and datetime.fromisoformat(last) + self.interval > now:
            return None
        with self._store.transaction() as uow:
            won = uow.rotations.claim_setting(LAST_SWEEP_KEY, last, now.isoformat(), now)
        if not won:
            return None
        return self.sweep()

    def sweep(self) -> SweepReport:
        """Sweep now (see the module docstring)."""
        service = self._service
        now = service.now()
        thresholds = service.policies.audit_thresholds()
        fleet = service.policies.fleet_policy(thresholds)
        by_thing, _ = service.policies.governed(thresholds)
        due: list[tuple[DueCertificate, RotationPolicy]] = []
        total = 0
        after: str | None = None
        while True:
            with self._store.transaction(readonly=True) as uow:
                batch = uow.rotations.live_certificates_after(after, BATCH)
            for cert in batch:
                total += 1
                policy = (by_thing.get(cert.thing_names[0], fleet)
                          if len(cert.thing_names) == 1 else fleet)
                reason = due_reason(policy, created=cert.creation_date,
                                    not_after=cert.not_after, now=now)
                if reason is not None:
                    due.append((DueCertificate(cert.certificate_id, cert.thing_names, reason,
                                               cert.creation_date, cert.not_after,
                                               policy.source), policy))
            if len(batch) < BATCH:
                break
            after = batch[-1].certificate_id
        started: list[str] = []
        listed: list[DueCertificate] = []
        for item, policy in due:
            if policy.start_jobs and len(item.thing_names) == 1:
                rotation_id = self._start(item)
                if rotation_id is not None:
                    started.append(rotation_id)
                    item = replace(item, rotation_id=rotation_id)
            listed.append(item)
        alerted = self._alert(listed, [policy for _, policy in due], now)
        report = SweepReport(now, total, tuple(listed), tuple(started), tuple(alerted))
        self.last_report = report
        log.info("rotation sweep: %d certificates, %d due, %d rotations started, %d alerts",
                 total, len(listed), len(started), len(alerted))
        return report

    def _start(self, item: DueCertificate) -> str | None:
        thing = item.thing_names[0]
        service = self._service
        if service.open_rotation(thing) is not None:
            return None
        try:
            rotation = service.start_rotation(thing, certificate_id=item.certificate_id,
                                              reason=f"sweep: {item.reason.value}")
        except RotationError as exc:
            log.info("rotation sweep: thing %s not started: %s", thing, exc.message)
            return None
        except Exception:
            log.exception("rotation sweep: starting the rotation of thing %s failed", thing)
            return None
        return rotation.rotation_id

    def _alert(self, due: list[DueCertificate], policies: list[RotationPolicy],
               now: datetime) -> list[str]:
        if not due or self._alerts is None:
            return []
        per_target: defaultdict[str, list[DueCertificate]] = defaultdict(list)
        for item, policy in zip(due, policies, strict=True):
            for target in policy.alert_targets:
                per_target[target].append(item)
        sent: list[str] = []
        for target, items in sorted(per_target.items()):
            body: dict[str, Any] = {
                "sweptAt": now.isoformat(), "dueCount": len(items),
                "dueCertificates": [_listed(item) for item in items[:MAX_LISTED]]}
            try:
                self._alerts.submit(target, new_alert(
                    ALERT_KIND, f"{len(items)} device certificates are due for rotation",
                    body, now))
            except Exception:
                log.exception("rotation sweep: alert to %s failed", target)
                continue
            sent.append(target)
        return sent


def _listed(item: DueCertificate) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "certificateId": item.certificate_id, "thingNames": list(item.thing_names),
        "reason": item.reason.value, "creationDate": item.created.isoformat(),
        "notAfter": item.not_after.isoformat(),
        "policy": f"thinggroup/{item.policy_source}" if item.policy_source else "fleet"}
    if item.rotation_id is not None:
        entry["rotationId"] = item.rotation_id
    return entry
