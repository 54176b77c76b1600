"""The domains repository on both backends: certificates and domain configurations
round-trip; a re-import replaces a certificate in place; a configuration name and a
domain name are taken once; a certificate a configuration names cannot be deleted (the
foreign key refuses it, beneath the service's own check)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bastion.store import ConflictError, DomainConfigurationRow, ServerCertificateRow, Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _certificate(certificate_id: str) -> ServerCertificateRow:
    return ServerCertificateRow(certificate_id, "-----BEGIN CERTIFICATE-----\n…",
                                None, b"\x01sealed", "a.example.test", NOW)


def _domain(name: str, domain_name: str | None, certificate_id: str | None
            ) -> DomainConfigurationRow:
    return DomainConfigurationRow(name, "abcde", domain_name, certificate_id, "DATA",
                                  "ENABLED", "IoTSecurityPolicy_TLS13_1_3_2022_10",
                                  {"authorizerConfig": {"defaultAuthorizerName": "a"}},
                                  NOW, NOW)


def test_certificates_round_trip_and_reimport_in_place(store: Store) -> None:
    with store.transaction() as uow:
        uow.domains.save_certificate(_certificate("c-1"))
    renewed = dataclasses.replace(_certificate("c-1"), chain_pem="chain",
                                  sealed_key=b"\x01other", imported_at=NOW + timedelta(days=1))
    with store.transaction() as uow:
        assert uow.domains.certificate("c-1") == _certificate("c-1")
        uow.domains.save_certificate(renewed)
    with store.transaction(readonly=True) as uow:
        assert uow.domains.certificate("c-1") == renewed
        assert uow.domains.certificate("c-2") is None
        assert [row.certificate_id for row in uow.domains.certificates()
                if row.certificate_id == "c-1"] == ["c-1"]


def test_domains_round_trip_names_are_unique_and_used_certificates_stay(
        store: Store) -> None:
    with store.transaction() as uow:
        uow.domains.save_certificate(_certificate("c-used"))
        uow.domains.insert_domain(_domain("d-1", "one.example.test", "c-used"))
        uow.domains.insert_domain(_domain("iot:Data-ATS", None, None))
    for clash in (_domain("d-1", "other.example.test", "c-used"),
                  _domain("d-2", "one.example.test", "c-used")):
        with pytest.raises(ConflictError), store.transaction() as uow:
            uow.domains.insert_domain(clash)
    with store.transaction() as uow:
        assert uow.domains.domain("d-1") == _domain("d-1", "one.example.test", "c-used")
        assert uow.domains.domains_using("c-used") == ["d-1"]
        with pytest.raises(ConflictError):
            uow.domains.delete_certificate("c-used")
        # The refused delete left the transaction usable.
        disabled = dataclasses.replace(_domain("d-1", "one.example.test", "c-used"),
                                       status="DISABLED")
        assert uow.domains.update_domain(disabled)
    with store.transaction() as uow:
        assert uow.domains.domain("d-1") == disabled
        assert {d.name for d in uow.domains.domains()} >= {"d-1", "iot:Data-ATS"}
        assert uow.domains.delete_domain("d-1")
        assert not uow.domains.delete_domain("d-1")
        assert uow.domains.delete_certificate("c-used")
        assert not uow.domains.delete_certificate("c-used")
