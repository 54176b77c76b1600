"""The rotation tables on both backends: policies keyed by thing group (gone with it),
the groups governing a thing by distance, rotations moved by conditional updates, the
sweep's claim and its certificate batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bastion.store import CertificateRotationRow, RotationPolicyRow, Store, ThingGroupRow, ThingRow
from bastion.store._rows import CertificateRow

NOW = datetime(2030, 1, 1, tzinfo=UTC)
CERT = "a" * 64


def _seed(store: Store) -> None:
    with store.transaction() as uow:
        for name, parent in (("site", None), ("cameras", "site")):
            uow.thing_groups.insert(ThingGroupRow(name, f"id-{name}", parent, None, {}, 1,
                                                  NOW, NOW))
        uow.things.insert(ThingRow("cam-1", "t1", None, {}, 1, NOW, NOW), searchable=())
        uow.thing_groups.add_member("cameras", "cam-1", NOW)
        uow.certificates.insert(CertificateRow(CERT, None, "ACTIVE", "DEFAULT", "pem", "1",
                                               None, 1, "g", NOW, NOW + timedelta(days=9),
                                               NOW, NOW))
        uow.thing_principals.attach("cam-1", "cert", CERT, NOW)


def test_policies_and_the_groups_that_govern_a_thing(store: Store) -> None:
    _seed(store)
    with store.transaction() as uow:
        uow.rotation_policies.put(RotationPolicyRow("site", 90, None, 24, None, True, ("ops",),
                                                    NOW))
        uow.rotation_policies.put(RotationPolicyRow("site", 60, 10, None, None, None, None,
                                                    NOW))  # replaced
    with store.transaction(readonly=True) as uow:
        policy = uow.rotation_policies.get("site")
        assert policy is not None and (policy.max_age_days, policy.alert_targets) == (60, None)
        assert uow.rotation_policies.group_depths("cam-1") == {"cameras": 0, "site": 1}
        assert uow.rotation_policies.governed_things("site") == ["cam-1"]
        assert uow.rotations.certificates_of_things(["cam-1"]) == {CERT: ["cam-1"]}
        (live,) = uow.rotations.live_certificates_after(None, 10)
        assert (live.certificate_id, live.thing_names) == (CERT, ("cam-1",))
    with store.transaction() as uow:  # the group goes, and its policy with it
        uow.thing_groups.remove_member("cameras", "cam-1")
        uow.thing_groups.delete("cameras")
        uow.thing_groups.delete("site")
    with store.transaction(readonly=True) as uow:
        assert uow.rotation_policies.all() == []


def test_rotations_move_by_conditional_updates(store: Store) -> None:
    _seed(store)
    row = CertificateRotationRow("r1", "cam-1", "job-1", CERT, None, "STARTED", None, NOW)
    with store.transaction() as uow:
        uow.rotations.insert(row)
    with store.transaction() as uow:
        assert uow.rotations.update("r1", only_if_status={"STARTED"}, status="ISSUED",
                                    issued_at=NOW)
        assert not uow.rotations.update("r1", only_if_status={"STARTED"}, status="ISSUED")
        uow.rotations.update("r1", new_certificate_id="b" * 64)
    with store.transaction(readonly=True) as uow:
        assert uow.rotations.last_issued_for("cam-1") == NOW
        found = uow.rotations.by_new_certificate("b" * 64)
        assert found is not None and found.status == "ISSUED"
        assert [r.rotation_id for r in uow.rotations.of_old_certificate(CERT, {"ISSUED"})] == [
            "r1"]
    with store.transaction() as uow:
        uow.rotations.update("r1", status="CONFIRMED", deactivate_at=NOW + timedelta(hours=1))
    with store.transaction(readonly=True) as uow:
        assert uow.rotations.due("CONFIRMED", "deactivate_at", NOW) == []
        assert [r.rotation_id for r in uow.rotations.due(
            "CONFIRMED", "deactivate_at", NOW + timedelta(hours=1))] == ["r1"]
        assert uow.rotations.next_time("CONFIRMED", "deactivate_at") == NOW + timedelta(hours=1)
    with store.transaction() as uow:  # the thing goes, and its rotations with it
        uow.thing_groups.remove_member("cameras", "cam-1")
        uow.things.delete("cam-1")
    with store.transaction(readonly=True) as uow:
        assert uow.rotations.get("r1") is None


def test_the_sweep_claim_is_won_once(store: Store) -> None:
    with store.transaction() as uow:
        assert uow.rotations.claim_setting("rotation.last_sweep", None, "t1", NOW)
    with store.transaction() as uow:
        assert not uow.rotations.claim_setting("rotation.last_sweep", None, "t1", NOW)
        assert not uow.rotations.claim_setting("rotation.last_sweep", "t0", "t2", NOW)
        assert uow.rotations.claim_setting("rotation.last_sweep", "t1", "t2", NOW)
        assert uow.settings.get("rotation.last_sweep") == "t2"
