"""The code-signing and OTA repositories on both backends: rows round-trip (the sealed key
and the signature as bytes), a request token signs once, listings filter and page, a
profile cannot name a certificate that does not exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bastion.store import (
    ConflictError,
    OtaUpdateRow,
    SigningCertificateRow,
    SigningJobRow,
    SigningProfileRow,
    Store,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _certificate(certificate_id: str) -> SigningCertificateRow:
    return SigningCertificateRow(certificate_id, "-----BEGIN CERTIFICATE-----\n…",
                                 b"\x01sealed\x00bytes", "GENERATED", NOW)


def _profile(name: str, certificate_id: str, status: str = "Active") -> SigningProfileRow:
    return SigningProfileRow(name, "abcdefghij", "AmazonFreeRTOS-Default", certificate_id,
                             {"signingParameters": {"certname": "/c.pem"}}, status, None,
                             None, None, None, NOW)


def _job(job_id: str, token: str, *, created: datetime = NOW) -> SigningJobRow:
    return SigningJobRow(
        job_id=job_id, client_request_token=token, profile_name="p1",
        profile_version="abcdefghij", platform_id="AmazonFreeRTOS-Default",
        certificate_id="c1", source_bucket="b", source_key="fw.bin", source_version="0" * 64,
        file_size=10, file_sha256="0" * 64, signature=b"0E\x02\x20\x00sig", signed_bucket=None,
        signed_key=None, status="Succeeded", status_reason=None, requested_by="AKIA1",
        created_at=created, completed_at=created,
        signature_expires_at=created + timedelta(days=30))


def test_signing_rows_round_trip(store: Store) -> None:
    with store.transaction() as uow:
        uow.signing.insert_certificate(_certificate("c1"))
        uow.signing.insert_profile(_profile("p1", "c1"))
        uow.signing.insert_profile(_profile("p2", "c1", "Canceled"))
        for index in range(3):
            uow.signing.insert_job(_job(f"j{index}", f"t{index}",
                                        created=NOW + timedelta(seconds=index)))
    with store.transaction(readonly=True) as uow:
        certificate = uow.signing.get_certificate("c1")
        assert certificate == _certificate("c1")
        assert uow.signing.get_profile("p1") == _profile("p1", "c1")
        assert uow.signing.get_job("j1") == _job("j1", "t1", created=NOW + timedelta(seconds=1))
        assert uow.signing.get_job_by_token("t2") is not None
        active, _ = uow.signing.list_profiles(limit=10, statuses=frozenset({"Active"}))
        assert [row.name for row in active] == ["p1"]
        first, token = uow.signing.list_jobs(limit=2)
        assert [row.job_id for row in first] == ["j0", "j1"] and token
        rest, token = uow.signing.list_jobs(limit=2, token=token)
        assert [row.job_id for row in rest] == ["j2"] and token is None
    with store.transaction() as uow:
        assert uow.signing.revoke_job("j1", at=NOW, by="AKIA1", reason="leaked")
        assert uow.signing.set_profile_status("p1", status="Revoked", status_reason="r",
                                              revoked_at=NOW, effective_from=NOW,
                                              revoked_by="AKIA1")
    with store.transaction(readonly=True) as uow:
        revoked, _ = uow.signing.list_jobs(limit=10, is_revoked=True)
        assert [row.job_id for row in revoked] == ["j1"]
        assert revoked[0].revocation_reason == "leaked"
        profile = uow.signing.get_profile("p1")
        assert profile is not None and profile.status == "Revoked"


def test_a_request_token_signs_once(store: Store) -> None:
    with store.transaction() as uow:
        uow.signing.insert_certificate(_certificate("c1"))
        uow.signing.insert_job(_job("j1", "same"))
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.signing.insert_job(_job("j2", "same"))


def test_a_profile_needs_its_certificate(store: Store) -> None:
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.signing.insert_profile(_profile("orphan", "missing"))


def test_ota_update_rows(store: Store) -> None:
    row = OtaUpdateRow("u1", "AFR_OTA-u1", "CREATE_COMPLETE",
                       {"targets": ["arn:aws:iot:us-east-1:123456789012:thing/t"],
                        "files": [{"fileName": "fw.bin"}]}, None, NOW, NOW)
    with store.transaction() as uow:
        uow.ota_updates.insert(row)
        uow.ota_updates.insert(OtaUpdateRow("u2", None, "CREATE_FAILED", {}, {"code": "x"},
                                            NOW, NOW))
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.ota_updates.insert(row)
    with store.transaction(readonly=True) as uow:
        assert uow.ota_updates.get("u1") == row
        complete, _ = uow.ota_updates.list_page(limit=10, status="CREATE_COMPLETE")
        assert [r.ota_update_id for r in complete] == ["u1"]
    with store.transaction() as uow:
        assert uow.ota_updates.delete("u1") and not uow.ota_updates.delete("u1")
