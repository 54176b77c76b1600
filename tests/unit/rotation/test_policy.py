"""The pure core of rotation policies: resolution over the fleet default and the audit's
thresholds, the nearest group's policy, and when a certificate is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.rotation import (
    CertificateLimits,
    DueReason,
    FleetPolicy,
    GroupPolicy,
    due_reason,
    is_rotation_document,
    nearest_group_policy,
    resolve,
    rotation_document,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_unset_settings_fall_back_to_the_fleet_then_the_audit() -> None:
    fleet = FleetPolicy(deactivate_after_hours=10, revoke_after_hours=20, alert_targets=("a",))
    policy = resolve(GroupPolicy("g", max_age_days=90), fleet, audit_age_days=365,
                     audit_expiry_days=30)
    assert (policy.max_age, policy.rotate_before_expiry) == (timedelta(days=90),
                                                             timedelta(days=30))
    assert (policy.deactivate_after, policy.revoke_after) == (timedelta(hours=10),
                                                              timedelta(hours=20))
    assert policy.alert_targets == ("a",) and policy.source == "g"
    default = resolve(None, FleetPolicy(max_age_days=200), audit_age_days=365,
                      audit_expiry_days=45)
    assert (default.max_age.days, default.rotate_before_expiry.days) == (200, 45)
    assert default.label == "the fleet default"


def test_the_nearest_group_wins_then_the_strictest() -> None:
    fleet = FleetPolicy()
    policies = {"site": GroupPolicy("site", max_age_days=30),
                "cameras": GroupPolicy("cameras", max_age_days=180),
                "doors": GroupPolicy("doors", max_age_days=90)}
    # cameras and doors are direct groups (0); site is their parent (1).
    chosen = nearest_group_policy({"cameras": 0, "doors": 0, "site": 1}, policies, fleet, 365)
    assert chosen is not None and chosen.group_name == "doors"
    chosen = nearest_group_policy({"plain": 0, "site": 1}, policies, fleet, 365)
    assert chosen is not None and chosen.group_name == "site"
    assert nearest_group_policy({"plain": 0}, policies, fleet, 365) is None


@pytest.mark.parametrize(("created_days_ago", "expires_in_days", "expected"), [
    (10, 1000, None),
    (90, 1000, DueReason.AGE),
    (10, 30, DueReason.EXPIRING),
    (10, 0, DueReason.EXPIRED),
], ids=["fresh", "old", "expiring", "expired"])
def test_due_reason(created_days_ago: int, expires_in_days: int,
                    expected: DueReason | None) -> None:
    policy = resolve(GroupPolicy("g", max_age_days=90, rotate_before_expiry_days=30),
                     FleetPolicy(), audit_age_days=365, audit_expiry_days=30)
    assert due_reason(policy, created=NOW - timedelta(days=created_days_ago),
                      not_after=NOW + timedelta(days=expires_in_days), now=NOW) is expected


@given(st.integers(1, 3652), st.integers(0, 3652), st.integers(0, 5000), st.integers(-10, 5000))
def test_due_exactly_when_past_age_or_within_window(age: int, window: int, created: int,
                                                     expires: int) -> None:
    policy = resolve(GroupPolicy("g", max_age_days=age, rotate_before_expiry_days=window),
                     FleetPolicy(), audit_age_days=365, audit_expiry_days=30)
    reason = due_reason(policy, created=NOW - timedelta(days=created),
                        not_after=NOW + timedelta(days=expires), now=NOW)
    assert (reason is not None) == (created >= age or expires <= window)


@pytest.mark.parametrize("bad", [
    {"max_age_days": 0}, {"max_age_days": 4000}, {"deactivate_after_hours": -1},
    {"max_age_days": True}, {"rotate_before_expiry_days": -1},
], ids=["zero-age", "too-old", "negative-grace", "bool", "negative-window"])
def test_bad_group_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GroupPolicy("g", **bad)  # type: ignore[arg-type]


def test_the_fleet_refuses_revocation_before_deactivation() -> None:
    with pytest.raises(ValueError, match="revoke_after_hours"):
        FleetPolicy(deactivate_after_hours=48, revoke_after_hours=24)


def test_certificate_limits_name_their_source() -> None:
    governed = resolve(GroupPolicy("g", max_age_days=30), FleetPolicy(), audit_age_days=365,
                       audit_expiry_days=30)
    limits = CertificateLimits({"c1": governed}, FleetPolicy())
    assert limits.max_age("c1", 365) == (timedelta(days=30), "thing group g")
    assert limits.max_age("c2", 365) == (timedelta(days=365), "")
    fleet = CertificateLimits({}, FleetPolicy(max_age_days=100, rotate_before_expiry_days=10))
    assert fleet.max_age("c2", 365) == (timedelta(days=100), "the fleet default")
    assert fleet.expiry_window("c2", 30) == (timedelta(days=10), "the fleet default")


def test_the_job_document() -> None:
    document = rotation_document(rotation_id="r", certificate_id="c")
    assert is_rotation_document(document)
    assert not is_rotation_document('{"operation": "install"}')
    assert not is_rotation_document("not json") and not is_rotation_document(None)
