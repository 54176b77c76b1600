"""What the repositories read and write: one frozen value per stored aggregate.

Rows carry stored facts only. Derived values (ARNs, which depend on the configured region
and account) are added by the services that turn rows into domain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ThingTypeRow:
    name: str
    thing_type_id: str
    description: str | None
    searchable_attributes: tuple[str, ...]
    deprecated: bool
    deprecation_date: datetime | None
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class ThingRow:
    name: str
    thing_id: str
    thing_type_name: str | None
    attributes: Mapping[str, str]
    version: int
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class ThingGroupRow:
    """A thing group; ``query_string`` is set for a dynamic group only."""

    name: str
    thing_group_id: str
    parent_name: str | None
    description: str | None
    attributes: Mapping[str, str]
    version: int
    creation_date: datetime
    last_modified_date: datetime
    query_string: str | None = None
    index_name: str | None = None
    query_version: str | None = None

    @property
    def dynamic(self) -> bool:
        return self.query_string is not None


@dataclass(frozen=True, slots=True)
class CertificateRow:
    certificate_id: str
    ca_certificate_id: str | None
    status: str
    certificate_mode: str
    certificate_pem: str
    owned_by: str
    previous_owned_by: str | None
    customer_version: int
    generation_id: str
    not_before: datetime
    not_after: datetime
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class CaCertificateRow:
    ca_certificate_id: str
    status: str
    auto_registration_status: str
    certificate_mode: str
    certificate_pem: str
    subject_hash: str
    owned_by: str
    customer_version: int
    generation_id: str
    not_before: datetime
    not_after: datetime
    registration_config: Mapping[str, Any] | None
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class PolicyRow:
    name: str
    default_version_id: int
    last_version_id: int
    generation_id: str
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class PolicyVersionRow:
    policy_name: str
    version_id: int
    document: str
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class PolicyTarget:
    """A policy attachment target: ``("cert", id)`` or ``("thinggroup", name)``."""

    target_type: str
    target_id: str


@dataclass(frozen=True, slots=True)
class AttachedPolicy:
    """A policy attached to a target, with its default version."""

    policy: PolicyRow
    default_version: PolicyVersionRow
    target: PolicyTarget = field(compare=True)


@dataclass(frozen=True, slots=True)
class RoleAliasRow:
    name: str
    role_arn: str
    credential_duration_seconds: int
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class BillingGroupRow:
    name: str
    billing_group_id: str
    description: str | None
    version: int
    creation_date: datetime
    last_modified_date: datetime
