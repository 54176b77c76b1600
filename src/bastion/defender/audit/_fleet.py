"""The :class:`~._checks.Fleet` of a running Bastion: the store, read in batches through
short read-only transactions, plus the CRL index, the key lists and the logging options
as they are when the audit starts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from bastion.account import Account
from bastion.logging_options import LoggingState
from bastion.rotation import CertificateLimits, FleetPolicy
from bastion.store import (
    CaCertificateRow,
    CertificateRow,
    InvalidPageTokenError,
    ProvisioningTemplateRow,
    Store,
)

from ._crl import RevocationIndex
from ._keys import KeyQualityAssessor

BATCH: Final = 2000


class StoreFleet:
    """Reads for one audit run.

    :param revocations: builds the CRL index (called once, lazily).
    :param assessor: the key-quality assessor of this run.
    :param logging_state: reads the logging options.
    """

    __slots__ = ("_account", "_assessor", "_index", "_limits", "_limits_source", "_logging",
                 "_revocations", "_store")

    def __init__(self, store: Store, account: Account, *,
                 revocations: Callable[[], RevocationIndex],
                 assessor: KeyQualityAssessor, logging_state: Callable[[], LoggingState],
                 certificate_limits: Callable[[], CertificateLimits] | None = None) -> None:
        self._store = store
        self._account = account
        self._revocations = revocations
        self._index: RevocationIndex | None = None
        self._assessor = assessor
        self._logging = logging_state
        self._limits_source = certificate_limits
        self._limits: CertificateLimits | None = None

    @property
    def account(self) -> Account:
        return self._account

    def certificate_count(self) -> int:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.certificate_count()

    def certificates(self, statuses: Sequence[str] | None = None) -> Iterator[CertificateRow]:
        after: str | None = None
        while True:
            with self._store.transaction(readonly=True) as uow:
                rows = uow.audit_fleet.certificates_after(after, BATCH, statuses=statuses)
            yield from rows
            if len(rows) < BATCH:
                return
            after = rows[-1].certificate_id

    def certificate_validities(self) -> Iterator[tuple[str, str, datetime, datetime, datetime]]:
        after: str | None = None
        while True:
            with self._store.transaction(readonly=True) as uow:
                rows = uow.audit_fleet.certificate_validity_after(after, BATCH * 5)
            yield from rows
            if len(rows) < BATCH * 5:
                return
            after = rows[-1][0]

    def certificate_limits(self) -> CertificateLimits:
        """The rotation policies' limits (read once per run)."""
        if self._limits is None:
            self._limits = (self._limits_source() if self._limits_source is not None
                            else CertificateLimits({}, FleetPolicy()))
        return self._limits

    def certificates_of_ca(self, ca_certificate_id: str, statuses: Sequence[str]
                           ) -> list[CertificateRow]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.active_certificates_of_ca(ca_certificate_id, statuses)

    def ca_certificates(self) -> list[CaCertificateRow]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.ca_certificates()

    def policy_count(self) -> int:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.policy_count()

    def default_policy_versions(self) -> Iterator[tuple[str, int, str]]:
        after: str | None = None
        while True:
            with self._store.transaction(readonly=True) as uow:
                rows = uow.audit_fleet.default_policy_versions_after(after, BATCH)
            yield from rows
            if len(rows) < BATCH:
                return
            after = rows[-1][0]

    def certificates_on_several_things(self) -> dict[str, list[str]]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.certificates_on_several_things()

    def certificates_with_overlapping_sessions(self, since: datetime, until: datetime
                                               ) -> list[str]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.certificates_with_overlapping_sessions(since, until)

    def sessions_of_certificates(self, certificate_ids: Sequence[str], since: datetime,
                                 until: datetime) -> list[Mapping[str, Any]]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.sessions_of_certificates(certificate_ids, since, until)

    def client_ids_taken_over(self, since: datetime, until: datetime) -> list[str]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.client_ids_taken_over(since, until)

    def sessions_of_clients(self, client_ids: Sequence[str], since: datetime,
                            until: datetime) -> list[Mapping[str, Any]]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.sessions_of_clients(client_ids, since, until)

    def connected_client_count(self, since: datetime, until: datetime) -> int:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.connected_client_count(since, until)

    def provisioning_templates(self) -> Iterator[ProvisioningTemplateRow]:
        token: str | None = None
        while True:
            try:
                with self._store.transaction(readonly=True) as uow:
                    rows, token = uow.provisioning.templates_page(limit=250, token=token)
            except InvalidPageTokenError:  # pragma: no cover - our own token
                return
            yield from rows
            if not token:
                return

    def logging_state(self) -> LoggingState:
        return self._logging()

    def revocations(self) -> RevocationIndex:
        if self._index is None:
            self._index = self._revocations()
        return self._index

    def key_assessor(self) -> KeyQualityAssessor:
        return self._assessor
