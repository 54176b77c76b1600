"""Rotation policies, pure: which policy governs a certificate, and whether it is due.

Theory of operation
-------------------
A *fleet default* (:class:`FleetPolicy`, from ``[rotation]`` in the configuration) and
at most one :class:`GroupPolicy` per thing group. A group policy may leave any setting
unset: that setting is the fleet default's. Two of the fleet default's settings may be
unset too (``0`` in the configuration): the maximum age and the rotate-before-expiry
window then follow the account's audit configuration — ``CERT_AGE_THRESHOLD_IN_DAYS`` of
DEVICE_CERTIFICATE_AGE_CHECK and ``CERT_EXPIRATION_THRESHOLD_IN_DAYS`` of
DEVICE_CERTIFICATE_EXPIRING_CHECK, which AWS's own tools set with
UpdateAccountAuditConfiguration — so that an operator who never configured rotation sees
the audit and the sweep agree on one number.

A thing's policy (:func:`policy_for_thing`) is the policy of its *nearest* group that
has one: its direct groups first, then their parents, and so on. When several groups at
the same distance have one, the policy that rotates soonest (smallest maximum age, then
the group name) wins — the stricter statement. A certificate's policy is the policy of
the thing it is attached to; a certificate on no thing, or on several, has the fleet
default (the sweep then alerts but starts no job: there is no one device to rotate).

A certificate is *due* (:func:`due_reason`) when it is at least the maximum age old, or
expires within the window (or has expired).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

MAX_DAYS: Final = 3652
"""The largest age or window in days (AWS's audit thresholds stop at ten years)."""
MAX_HOURS: Final = MAX_DAYS * 24

FLEET: Final = ""
"""The ``source`` of a setting that comes from the fleet default."""


class DueReason(str, enum.Enum):
    """Why a certificate is due for rotation."""

    AGE = "AGE"
    EXPIRING = "EXPIRING"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True)
class FleetPolicy:
    """The fleet default. ``max_age_days``/``rotate_before_expiry_days`` of ``0`` follow
    the audit configuration (see the module docstring).

    :raises ValueError: a negative or too large setting, or revocation before
        deactivation.
    """

    max_age_days: int = 0
    rotate_before_expiry_days: int = 0
    deactivate_after_hours: int = 168
    revoke_after_hours: int = 720
    start_jobs: bool = False
    alert_targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_days(self.max_age_days, "max_age_days", allow_zero=True)
        check_days(self.rotate_before_expiry_days, "rotate_before_expiry_days",
                   allow_zero=True)
        check_hours(self.deactivate_after_hours, "deactivate_after_hours")
        check_hours(self.revoke_after_hours, "revoke_after_hours")
        if self.revoke_after_hours < self.deactivate_after_hours:
            raise ValueError("revoke_after_hours must not be less than deactivate_after_hours")


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """A thing group's policy; ``None`` settings are the fleet default's."""

    group_name: str
    max_age_days: int | None = None
    rotate_before_expiry_days: int | None = None
    deactivate_after_hours: int | None = None
    revoke_after_hours: int | None = None
    start_jobs: bool | None = None
    alert_targets: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.max_age_days is not None:
            check_days(self.max_age_days, "maxAgeDays")
        if self.rotate_before_expiry_days is not None:
            check_days(self.rotate_before_expiry_days, "rotateBeforeExpiryDays",
                       allow_zero=True)
        if self.deactivate_after_hours is not None:
            check_hours(self.deactivate_after_hours, "deactivateAfterHours")
        if self.revoke_after_hours is not None:
            check_hours(self.revoke_after_hours, "revokeAfterHours")


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """The settings that govern one certificate, every one resolved.

    :ivar source: the thing group whose policy this is, or :data:`FLEET`.
    """

    source: str
    max_age: timedelta
    rotate_before_expiry: timedelta
    deactivate_after: timedelta
    revoke_after: timedelta
    start_jobs: bool
    alert_targets: tuple[str, ...]

    @property
    def label(self) -> str:
        """How findings and alerts name it."""
        return f"thing group {self.source}" if self.source else "the fleet default"


def check_days(value: object, name: str, *, allow_zero: bool = False) -> int:
    """:raises ValueError: not an integer within 1 (or 0) to :data:`MAX_DAYS`."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_DAYS:
        raise ValueError(f"{name} must be an integer from {low} to {MAX_DAYS}")
    return value


def check_hours(value: object, name: str) -> int:
    """:raises ValueError: not an integer within 0 to :data:`MAX_HOURS`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_HOURS:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_HOURS}")
    return value


def resolve(group: GroupPolicy | None, fleet: FleetPolicy, *, audit_age_days: int,
            audit_expiry_days: int) -> RotationPolicy:
    """``group``'s settings over the fleet default's over the audit thresholds.

    :raises ValueError: the resolved revocation grace is shorter than the deactivation
        grace (a group set one without the other).
    """
    def pick(mine: int | None, fleet_value: int, audit: int) -> int:
        if mine is not None:
            return mine
        return fleet_value if fleet_value else audit

    max_age = pick(group.max_age_days if group else None, fleet.max_age_days, audit_age_days)
    window = pick(group.rotate_before_expiry_days if group else None,
                  fleet.rotate_before_expiry_days, audit_expiry_days)
    deactivate = fleet.deactivate_after_hours
    revoke = fleet.revoke_after_hours
    start_jobs = fleet.start_jobs
    targets = fleet.alert_targets
    if group is not None:
        deactivate = deactivate if group.deactivate_after_hours is None else (
            group.deactivate_after_hours)
        revoke = revoke if group.revoke_after_hours is None else group.revoke_after_hours
        start_jobs = start_jobs if group.start_jobs is None else group.start_jobs
        targets = targets if group.alert_targets is None else group.alert_targets
    revoke = max(revoke, deactivate)
    return RotationPolicy(group.group_name if group else FLEET, timedelta(days=max_age),
                          timedelta(days=window), timedelta(hours=deactivate),
                          timedelta(hours=revoke), start_jobs, tuple(targets))


def nearest_group_policy(depths: Mapping[str, int], policies: Mapping[str, GroupPolicy],
                         fleet: FleetPolicy, audit_age_days: int) -> GroupPolicy | None:
    """The group policy a thing gets (see the module docstring).

    :param depths: the thing's groups and their ancestors → distance from the thing.
    :param policies: group name → its policy (groups without one are absent).
    """
    candidates = [(depth, name) for name, depth in depths.items() if name in policies]
    if not candidates:
        return None
    nearest = min(depth for depth, _ in candidates)

    def strictness(name: str) -> tuple[int, str]:
        age = policies[name].max_age_days
        return (age if age is not None else (fleet.max_age_days or audit_age_days), name)

    return policies[min((name for depth, name in candidates if depth == nearest),
                        key=strictness)]


def due_reason(policy: RotationPolicy, *, created: datetime, not_after: datetime,
               now: datetime) -> DueReason | None:
    """Why a certificate created at ``created`` and valid until ``not_after`` is due at
    ``now`` under ``policy`` (``None``: it is not)."""
    if not_after <= now:
        return DueReason.EXPIRED
    if now - created >= policy.max_age:
        return DueReason.AGE
    if not_after - now <= policy.rotate_before_expiry:
        return DueReason.EXPIRING
    return None


@dataclass(frozen=True, slots=True)
class CertificateLimits:
    """What the audit's certificate checks report against: the policy of each certificate
    that a thing group's policy governs, and the fleet default for every other one.

    :ivar governed: certificate id → its group's resolved policy.
    :ivar fleet: the fleet default (``0`` settings: the audit's own thresholds).
    """

    governed: Mapping[str, RotationPolicy]
    fleet: FleetPolicy

    def max_age(self, certificate_id: str, audit_days: int) -> tuple[timedelta, str]:
        """The age limit of a certificate and the label of where it comes from
        (``""``: the audit's threshold)."""
        policy = self.governed.get(certificate_id)
        if policy is not None:
            return policy.max_age, policy.label
        if self.fleet.max_age_days:
            return timedelta(days=self.fleet.max_age_days), "the fleet default"
        return timedelta(days=audit_days), ""

    def expiry_window(self, certificate_id: str, audit_days: int) -> tuple[timedelta, str]:
        """The rotate-before-expiry window of a certificate, as :meth:`max_age`."""
        policy = self.governed.get(certificate_id)
        if policy is not None:
            return policy.rotate_before_expiry, policy.label
        if self.fleet.rotate_before_expiry_days:
            return timedelta(days=self.fleet.rotate_before_expiry_days), "the fleet default"
        return timedelta(days=audit_days), ""
