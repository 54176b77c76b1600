"""Domain events are published after the commit, and never for a rolled-back change."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from bastion.account import Account
from bastion.registry import (
    CertificateRecord,
    CertificateStatus,
    CertificateStatusChanged,
    IdentityService,
    InvalidRequestError,
    PolicyService,
    ThingCreated,
    ThingGroupMembershipChanged,
)
from bastion.registry import RegistryService as Registry
from bastion.store import CertificateRepository, Store
from support.clock import ManualClock

from .conftest import EventLog

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})


def test_sink_sees_the_committed_state(store: Store, identity: IdentityService,
                                       new_certificate: Callable[..., CertificateRecord],
                                       account: Account, clock: ManualClock) -> None:
    record = new_certificate(active=True)
    seen: list[tuple[object, str | None]] = []

    def sink(event: object) -> None:
        # Read through another connection: only committed data is visible there.
        with store.transaction(readonly=True) as uow:
            row = uow.certificates.get(record.certificate_id)
        seen.append((event, None if row is None else row.status))

    watched = IdentityService(store, account=account, publish=sink, clock=clock)
    watched.update_certificate(record.certificate_id, CertificateStatus.REVOKED)
    assert seen == [
        (CertificateStatusChanged(record.certificate_id, CertificateStatus.ACTIVE,
                                  CertificateStatus.REVOKED), "REVOKED"),
    ]


def test_no_events_when_the_transaction_fails(
        store: Store, identity: IdentityService, policies: PolicyService,
        new_certificate: Callable[..., CertificateRecord], account: Account,
        clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    record = new_certificate(active=False)
    policies.create_policy("p", POLICY)
    policies.attach_policy("p", record.certificate_arn)
    published: list[object] = []
    watched = IdentityService(store, account=account, publish=published.append, clock=clock)

    def failing_delete(self: CertificateRepository, certificate_id: str) -> bool:
        raise RuntimeError("disk full")

    # The forced delete detaches the policy (an event is queued), then fails.
    monkeypatch.setattr(CertificateRepository, "delete", failing_delete)
    with pytest.raises(RuntimeError, match="disk full"):
        watched.delete_certificate(record.certificate_id, force_delete=True)
    assert published == []
    # Rolled back: the policy is still attached and the certificate still there.
    assert policies.list_targets_for_policy("p") == ([record.certificate_arn], None)
    assert identity.describe_certificate(record.certificate_id).status is (
        CertificateStatus.INACTIVE
    )


def test_no_events_for_refused_requests(registry: Registry, events: EventLog) -> None:
    registry.create_thing("t")
    registry.create_thing_group("a")
    registry.create_thing_group("a-child", parent_group_name="a")
    registry.add_thing_to_thing_group(thing_group_name="a", thing_name="t")
    before = list(events.events)
    with pytest.raises(InvalidRequestError):
        registry.add_thing_to_thing_group(thing_group_name="a-child", thing_name="t")
    assert events.events == before


def test_a_failing_sink_does_not_undo_the_change(
        store: Store, account: Account, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    delivered: list[object] = []

    def sink(event: object) -> None:
        delivered.append(event)
        raise ConnectionError("bus down")

    registry = Registry(store, account=account, publish=sink, clock=clock)
    registry.create_thing("t")
    registry.create_thing_group("g1")
    registry.create_thing_group("g2")
    registry.add_thing_to_thing_group(thing_group_name="g1", thing_name="t")
    registry.add_thing_to_thing_group(thing_group_name="g2", thing_name="t")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="bastion.registry"):
        registry.delete_thing("t")  # three events; each delivery fails
    assert len(delivered) == 6  # ThingCreated, two additions, then the three
    assert delivered[0] == ThingCreated("t")
    assert delivered[3:5] == [
        ThingGroupMembershipChanged("t", "g1", False),
        ThingGroupMembershipChanged("t", "g2", False),
    ]
    assert len([r for r in caplog.records if "event sink failed" in r.message]) == 3
    assert registry.list_things() == ([], None)
