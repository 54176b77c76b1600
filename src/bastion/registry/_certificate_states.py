"""The certificate status machine of UpdateCertificate and DeleteCertificate, as tables.

* UpdateCertificate may set ``ACTIVE``, ``INACTIVE`` or ``REVOKED``. The other statuses
  are internal: ``PENDING_TRANSFER`` and ``PENDING_ACTIVATION`` are entered through the
  transfer and auto-registration flows, and ``REGISTER_INACTIVE`` is deprecated. Asking
  for one of them is an invalid request.
* ``REVOKED`` is final. A certificate ``PENDING_TRANSFER`` must have its transfer
  accepted, rejected or cancelled first. A refused transition is a
  ``CertificateStateException`` (HTTP 406), the error AWS documents for UpdateCertificate.
* Setting the status a certificate already has is a no-op.
* Only certificates that cannot connect and are not in transfer may be deleted.
"""

from __future__ import annotations

from typing import Final

from ._model import CertificateStatus

ACTIVE: Final = CertificateStatus.ACTIVE
INACTIVE: Final = CertificateStatus.INACTIVE
REVOKED: Final = CertificateStatus.REVOKED

SETTABLE_STATUSES: Final = frozenset({ACTIVE, INACTIVE, REVOKED})
"""Statuses UpdateCertificate accepts as ``newStatus``."""

TRANSITIONS: Final[dict[CertificateStatus, frozenset[CertificateStatus]]] = {
    CertificateStatus.ACTIVE: frozenset({INACTIVE, REVOKED}),
    CertificateStatus.INACTIVE: frozenset({ACTIVE, REVOKED}),
    CertificateStatus.REVOKED: frozenset(),
    CertificateStatus.PENDING_ACTIVATION: frozenset({ACTIVE, INACTIVE, REVOKED}),
    CertificateStatus.REGISTER_INACTIVE: frozenset({ACTIVE, INACTIVE, REVOKED}),
    CertificateStatus.PENDING_TRANSFER: frozenset(),
}
"""For each current status, the statuses UpdateCertificate may move it to."""

DELETABLE_STATUSES: Final = frozenset(
    {
        CertificateStatus.INACTIVE,
        CertificateStatus.REVOKED,
        CertificateStatus.PENDING_ACTIVATION,
        CertificateStatus.REGISTER_INACTIVE,
    }
)
"""Statuses in which DeleteCertificate is allowed (never ACTIVE or PENDING_TRANSFER)."""

REGISTRATION_STATUSES: Final = frozenset({ACTIVE, INACTIVE})
"""Statuses a certificate may be registered with (RegisterCertificate ``status``)."""


def may_transition(current: CertificateStatus, new: CertificateStatus) -> bool:
    """Whether UpdateCertificate may move a certificate from ``current`` to ``new``
    (the same status is always allowed, as a no-op)."""
    return new == current or new in TRANSITIONS[current]
