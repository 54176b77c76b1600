"""Rotation policies in the store: per-thing-group policies over the fleet default, and
the views the sweep and the audit read (which policy governs which certificate).

Policies are Bastion's own settings, not an AWS IoT resource: they are set with
``bastion rotation policy …`` (over the store), never through the ``iot`` API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bastion.clock import Clock, SystemClock
from bastion.store import RotationPolicyRow, Store

from ._errors import InvalidRequestError, ResourceNotFoundError
from ._policy import (
    CertificateLimits,
    FleetPolicy,
    GroupPolicy,
    RotationPolicy,
    nearest_group_policy,
    resolve,
)

AuditThresholds = Callable[[], tuple[int, int]]
"""``() -> (CERT_AGE_THRESHOLD_IN_DAYS, CERT_EXPIRATION_THRESHOLD_IN_DAYS)`` of the
account's audit configuration (their defaults when the audit is off or unconfigured)."""

AWS_AUDIT_DEFAULTS = (365, 30)


def _defaults() -> tuple[int, int]:
    return AWS_AUDIT_DEFAULTS


class RotationPolicies:
    """The rotation policies of one store.

    :param fleet: the fleet default (``[rotation]`` of the configuration).
    :param audit_thresholds: reads the audit's certificate thresholds.
    :param clock: dates policy changes.
    """

    def __init__(self, store: Store, fleet: FleetPolicy, *,
                 audit_thresholds: AuditThresholds = _defaults,
                 clock: Clock | None = None) -> None:
        if not isinstance(fleet, FleetPolicy):
            raise TypeError(f"fleet must be a FleetPolicy, not {type(fleet).__name__}")
        self._store = store
        self.fleet = fleet
        self._audit_thresholds = audit_thresholds
        self._clock: Clock = clock if clock is not None else SystemClock()

    # -- the operator's settings ----------------------------------------------------------

    def put(self, policy: GroupPolicy) -> GroupPolicy:
        """Set (create or replace) the policy of ``policy.group_name``.

        :raises ResourceNotFoundError: no such thing group.
        :raises InvalidRequestError: the revocation grace is shorter than the deactivation
            grace once both are resolved.
        """
        if not isinstance(policy, GroupPolicy):
            raise TypeError(f"policy must be a GroupPolicy, not {type(policy).__name__}")
        try:
            resolve(policy, self.fleet, audit_age_days=1, audit_expiry_days=0)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        deactivate = (policy.deactivate_after_hours if policy.deactivate_after_hours is not None
                      else self.fleet.deactivate_after_hours)
        revoke = (policy.revoke_after_hours if policy.revoke_after_hours is not None
                  else self.fleet.revoke_after_hours)
        if revoke < deactivate:
            raise InvalidRequestError(
                f"revokeAfterHours ({revoke}) must not be less than deactivateAfterHours "
                f"({deactivate})")
        with self._store.transaction() as uow:
            if uow.thing_groups.get(policy.group_name) is None:
                raise ResourceNotFoundError(f"Thing group {policy.group_name} does not exist")
            uow.rotation_policies.put(_row(policy, self._clock.now()))
        return policy

    def get(self, group_name: str) -> GroupPolicy:
        """:raises ResourceNotFoundError: the group has no rotation policy."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.rotation_policies.get(group_name)
        if row is None:
            raise ResourceNotFoundError(f"Thing group {group_name} has no rotation policy")
        return _policy(row)

    def delete(self, group_name: str) -> None:
        """:raises ResourceNotFoundError: the group has no rotation policy."""
        with self._store.transaction() as uow:
            if not uow.rotation_policies.delete(group_name):
                raise ResourceNotFoundError(f"Thing group {group_name} has no rotation policy")

    def all(self) -> list[GroupPolicy]:
        with self._store.transaction(readonly=True) as uow:
            return [_policy(row) for row in uow.rotation_policies.all()]

    # -- resolution -----------------------------------------------------------------------

    def audit_thresholds(self) -> tuple[int, int]:
        return self._audit_thresholds()

    def fleet_policy(self, thresholds: tuple[int, int] | None = None) -> RotationPolicy:
        age, expiry = thresholds or self._audit_thresholds()
        return resolve(None, self.fleet, audit_age_days=age, audit_expiry_days=expiry)

    def for_thing(self, thing_name: str, thresholds: tuple[int, int] | None = None
                  ) -> RotationPolicy:
        """The policy governing ``thing_name``'s certificates."""
        age, expiry = thresholds or self._audit_thresholds()
        with self._store.transaction(readonly=True) as uow:
            depths = uow.rotation_policies.group_depths(thing_name)
            rows = uow.rotation_policies.for_groups(depths)
        group = nearest_group_policy(depths, {r.group_name: _policy(r) for r in rows},
                                     self.fleet, age)
        return resolve(group, self.fleet, audit_age_days=age, audit_expiry_days=expiry)

    def governed(self, thresholds: tuple[int, int] | None = None
                 ) -> tuple[dict[str, RotationPolicy], dict[str, list[str]]]:
        """Every thing a group policy governs → its policy, and every certificate on one
        of those things → the things. Costs one query per policy and per governed thing;
        nothing at all when no group has a policy."""
        thresholds = thresholds or self._audit_thresholds()
        with self._store.transaction(readonly=True) as uow:
            things: set[str] = set()
            for row in uow.rotation_policies.all():
                things.update(uow.rotation_policies.governed_things(row.group_name))
            on_things = uow.rotations.certificates_of_things(things)
        by_thing = {thing: self.for_thing(thing, thresholds) for thing in sorted(things)}
        return by_thing, on_things

    def certificate_limits(self) -> CertificateLimits:
        """What DEVICE_CERTIFICATE_AGE_CHECK and DEVICE_CERTIFICATE_EXPIRING_CHECK report
        against: a certificate on exactly one thing governed by a group policy has that
        policy; every other certificate the fleet default."""
        by_thing, on_things = self.governed()
        governed = {certificate: by_thing[things[0]]
                    for certificate, things in on_things.items() if len(things) == 1}
        return CertificateLimits(governed, self.fleet)


def _row(policy: GroupPolicy, now: datetime) -> RotationPolicyRow:
    return RotationPolicyRow(policy.group_name, policy.max_age_days,
                             policy.rotate_before_expiry_days, policy.deactivate_after_hours,
                             policy.revoke_after_hours, policy.start_jobs,
                             policy.alert_targets, now)


def _policy(row: RotationPolicyRow) -> GroupPolicy:
    return GroupPolicy(row.group_name, row.max_age_days, row.rotate_before_expiry_days,
                       row.deactivate_after_hours, row.revoke_after_hours, row.start_jobs,
                       row.alert_targets)
