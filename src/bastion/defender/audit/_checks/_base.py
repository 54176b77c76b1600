"""What a check gets and gives: :class:`CheckContext` in, :class:`CheckOutcome` out, and
the :class:`Fleet` it reads (the registry, the connection journal, CRLs, key lists,
logging options, provisioning templates), as a protocol so checks can be run on a
fixture without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bastion.account import Account
from bastion.logging_options import LoggingState
from bastion.rotation import CertificateLimits
from bastion.store import CaCertificateRow, CertificateRow, ProvisioningTemplateRow

from .._catalog import CheckSpec, threshold
from .._crl import RevocationIndex
from .._keys import KeyQualityAssessor
from .._model import AuditTaskType, ConfigName, FindingDraft


class Fleet(Protocol):
    """The data the checks read. Iterators are consumed once; batches keep memory flat."""

    @property
    def account(self) -> Account: ...

    def certificate_count(self) -> int: ...

    def certificates(self, statuses: Sequence[str] | None = None) -> Iterator[CertificateRow]:
        """Device certificates (with PEM), by id."""
        ...

    def certificate_validities(self) -> Iterator[tuple[str, str, datetime, datetime, datetime]]:
        """``(id, status, not_before, not_after, creation_date)`` of every certificate."""
        ...

    def certificate_limits(self) -> CertificateLimits:
        """What the rotation policies say of each certificate's age and expiry."""
        ...

    def certificates_of_ca(self, ca_certificate_id: str, statuses: Sequence[str]
                           ) -> list[CertificateRow]: ...

    def ca_certificates(self) -> list[CaCertificateRow]: ...

    def policy_count(self) -> int: ...

    def default_policy_versions(self) -> Iterator[tuple[str, int, str]]:
        """``(policy name, default version id, document)``."""
        ...

    def certificates_on_several_things(self) -> dict[str, list[str]]: ...

    def certificates_with_overlapping_sessions(self, since: datetime, until: datetime
                                               ) -> list[str]: ...

    def sessions_of_certificates(self, certificate_ids: Sequence[str], since: datetime,
                                 until: datetime) -> list[Mapping[str, Any]]: ...

    def client_ids_taken_over(self, since: datetime, until: datetime) -> list[str]: ...

    def sessions_of_clients(self, client_ids: Sequence[str], since: datetime,
                            until: datetime) -> list[Mapping[str, Any]]: ...

    def connected_client_count(self, since: datetime, until: datetime) -> int: ...

    def provisioning_templates(self) -> Iterator[ProvisioningTemplateRow]: ...

    def logging_state(self) -> LoggingState: ...

    def revocations(self) -> RevocationIndex: ...

    def key_assessor(self) -> KeyQualityAssessor: ...


@dataclass(frozen=True, slots=True)
class CheckContext:
    """One check's run.

    :ivar now: the task's start time (every check of a task sees the same instant).
    :ivar previous_run: for a scheduled audit, when its previous run started.
    :ivar canceled: returns whether the task was canceled (long checks poll it).
    """

    spec: CheckSpec
    now: datetime
    task_type: AuditTaskType
    previous_run: datetime | None
    configuration: Mapping[str, str]
    fleet: Fleet
    canceled: Callable[[], bool] = field(default=lambda: False)

    def threshold(self, name: ConfigName) -> int:
        return threshold(self.spec, dict(self.configuration), name)

    def days(self, name: ConfigName) -> timedelta:
        return timedelta(days=self.threshold(name))


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """How many resources the check looked at, and what it found."""

    total_resources: int
    findings: list[FindingDraft]


Check = Callable[[CheckContext], CheckOutcome]

LIVE_STATUSES: tuple[str, ...] = ("ACTIVE", "PENDING_TRANSFER")
"""Certificate statuses that can authenticate (AWS's checks look at these)."""


def epoch_ms(moment: datetime) -> str:
    """A time as AWS's ``additionalInfo`` carries it: epoch milliseconds, as text."""
    return str(int(moment.timestamp() * 1000))
