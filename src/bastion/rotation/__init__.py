"""Certificate rotation: device certificates replaced on a schedule, keys made on the
device, old certificates retired only once the new one is proven.

* the policies — a fleet default (``[rotation]`` in the configuration) and per thing
  group (:class:`RotationPolicies`, set with ``bastion rotation policy …``; Bastion's own
  settings, not an ``iot`` API resource) — and the pure core that resolves them and says
  when a certificate is due (:func:`resolve`, :func:`due_reason`,
  :class:`CertificateLimits` for the audit's certificate checks);
* :class:`RotationService` — rotations: the job (document :func:`rotation_document`),
  the certificate issued for the device's CSR over
  ``$aws/certificates/create-from-csr/<format>``, its confirmation, the old
  certificate's deactivation and revocation after the graces, failures with reasons;
* :class:`FleetSweep` — the daily sweep: alerts and, where the policy says so, jobs;
* :class:`RotationKeeper` — the component that runs the sweep and the graces.

Refusals raise a :class:`RotationError` carrying what goes on the wire.
"""

from __future__ import annotations

from ._documents import CSR_TOPIC, OPERATION, is_rotation_document, rotation_document
from ._errors import (
    ConflictError,
    InvalidRequestError,
    NotAuthorizedError,
    ResourceNotFoundError,
    RotationError,
    ThrottlingError,
)
from ._keeper import RotationKeeper
from ._model import (
    OPEN_STATUSES,
    DueCertificate,
    IssuedCertificate,
    Rotation,
    RotationStatus,
    SweepReport,
)
from ._policies import AWS_AUDIT_DEFAULTS, AuditThresholds, RotationPolicies
from ._policy import (
    CertificateLimits,
    DueReason,
    FleetPolicy,
    GroupPolicy,
    RotationPolicy,
    due_reason,
    nearest_group_policy,
    resolve,
)
from ._service import RotationService, RotationSettings
from ._sweep import FleetSweep

__all__ = [
    "AWS_AUDIT_DEFAULTS",
    "CSR_TOPIC",
    "OPEN_STATUSES",
    "OPERATION",
    "AuditThresholds",
    "CertificateLimits",
    "ConflictError",
    "DueCertificate",
    "DueReason",
    "FleetPolicy",
    "FleetSweep",
    "GroupPolicy",
    "InvalidRequestError",
    "IssuedCertificate",
    "NotAuthorizedError",
    "ResourceNotFoundError",
    "Rotation",
    "RotationError",
    "RotationKeeper",
    "RotationPolicies",
    "RotationPolicy",
    "RotationService",
    "RotationSettings",
    "RotationStatus",
    "SweepReport",
    "ThrottlingError",
    "due_reason",
    "is_rotation_document",
    "nearest_group_policy",
    "resolve",
    "rotation_document",
]
