"""Values of certificate rotation: a rotation's status and record, a due certificate,
a sweep's report."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ._policy import DueReason


class RotationStatus(str, enum.Enum):
    """Where a rotation stands.

    ``STARTED`` (job created, no certificate yet) → ``ISSUED`` (the new certificate is
    attached to the thing and ACTIVE) → ``CONFIRMED`` (the device connected with it and
    its job execution SUCCEEDED: the old certificate's graces run) → ``OLD_DEACTIVATED``
    → ``COMPLETED`` (the old certificate is revoked). ``FAILED`` from ``STARTED`` or
    ``ISSUED``: the job execution ended otherwise; the old certificate is untouched and a
    new one, if issued, is deactivated.
    """

    STARTED = "STARTED"
    ISSUED = "ISSUED"
    CONFIRMED = "CONFIRMED"
    OLD_DEACTIVATED = "OLD_DEACTIVATED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


OPEN_STATUSES: Final = frozenset({RotationStatus.STARTED.value, RotationStatus.ISSUED.value})
"""Rotations whose device has not finished: a thing has at most one."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """One rotation of a thing's certificate (see :class:`RotationStatus`)."""

    rotation_id: str
    thing_name: str
    job_id: str
    old_certificate_id: str
    new_certificate_id: str | None
    status: RotationStatus
    reason: str | None
    created_at: datetime
    issued_at: datetime | None
    new_connected_at: datetime | None
    succeeded_at: datetime | None
    deactivate_at: datetime | None
    revoke_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class DueCertificate:
    """A certificate the sweep found due, with the policy that made it so.

    :ivar thing_names: the things it is attached to (a job is started only for one).
    :ivar rotation_id: the rotation the sweep started for it, if it started one.
    """

    certificate_id: str
    thing_names: tuple[str, ...]
    reason: DueReason
    created: datetime
    not_after: datetime
    policy_source: str
    rotation_id: str | None = None


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did."""

    swept_at: datetime
    certificates: int
    due: tuple[DueCertificate, ...]
    started: tuple[str, ...]
    alerted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """The answer to a rotation CSR."""

    rotation_id: str
    thing_name: str
    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    policies: tuple[str, ...]
