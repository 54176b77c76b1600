"""Domain events: what changed in the security state, published after the commit.

The services hand each event to their ``publish`` sink once the transaction that made
the change has committed — never for a change that was rolled back. Consumers (the broker
above all) use them to re-authorize or disconnect live sessions:

* a certificate leaving ``ACTIVE`` (:class:`CertificateStatusChanged`) or deleted, or its
  CA deactivated (:class:`CaCertificateStatusChanged`) → close its sessions;
* :class:`PolicyAttachmentChanged`, :class:`PolicyDefaultVersionChanged`,
  :class:`ThingGroupMembershipChanged`, :class:`ThingPrincipalChanged`,
  :class:`ThingUpdated`, :class:`ThingDeleted`, :class:`ThingGroupDeleted` → re-resolve
  the principals concerned and recompile their policy sets.

Events carry identifiers, not documents: a consumer reads the current state back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._model import CaCertificateStatus, CertificateStatus


@dataclass(frozen=True, slots=True)
class CertificateRegistered:
    """A certificate entered the registry (created, issued or registered)."""

    certificate_id: str
    status: CertificateStatus


@dataclass(frozen=True, slots=True)
class CertificateStatusChanged:
    certificate_id: str
    old: CertificateStatus
    new: CertificateStatus


@dataclass(frozen=True, slots=True)
class CertificateDeleted:
    certificate_id: str


@dataclass(frozen=True, slots=True)
class CaCertificateRegistered:
    """A CA certificate was registered (the broker's trust store may need it)."""

    ca_certificate_id: str
    status: CaCertificateStatus


@dataclass(frozen=True, slots=True)
class CaCertificateStatusChanged:
    ca_certificate_id: str
    old: CaCertificateStatus
    new: CaCertificateStatus


@dataclass(frozen=True, slots=True)
class CaCertificateDeleted:
    ca_certificate_id: str


@dataclass(frozen=True, slots=True)
class PolicyAttachmentChanged:
    """A policy was attached to (``attached``) or detached from a certificate or a thing
    group, given by ARN."""

    policy_name: str
    target_arn: str
    attached: bool


@dataclass(frozen=True, slots=True)
class PolicyDefaultVersionChanged:
    policy_name: str
    version_id: str


@dataclass(frozen=True, slots=True)
class PolicyDeleted:
    policy_name: str


@dataclass(frozen=True, slots=True)
class ThingPrincipalChanged:
    thing_name: str
    principal_arn: str
    attached: bool


@dataclass(frozen=True, slots=True)
class ThingCreated:
    """A thing entered the registry (the fleet index reads it in)."""

    thing_name: str


@dataclass(frozen=True, slots=True)
class ThingUpdated:
    """A thing's type or attributes changed (they feed policy variables)."""

    thing_name: str
    version: int


@dataclass(frozen=True, slots=True)
class ThingDeleted:
    thing_name: str


@dataclass(frozen=True, slots=True)
class ThingGroupMembershipChanged:
    thing_name: str
    group_name: str
    added: bool


@dataclass(frozen=True, slots=True)
class ThingGroupDeleted:
    """A thing group was deleted; ``thing_names`` were its members."""

    group_name: str
    thing_names: tuple[str, ...]
