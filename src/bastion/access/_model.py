"""Roles, statuses and the public view of an access key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Role(str, Enum):
    """What an access key may do on the control-plane API.

    ``bastion.api`` re-exports this enum; its values are part of the stored data.
    """

    ADMIN = "admin"
    """Everything, including access-key and user management."""
    OPERATOR = "operator"
    """Everything except access-key and user management."""
    AUDITOR = "auditor"
    """Read-only operations."""


class AccessKeyStatus(str, Enum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key as listed: everything but the secret."""

    access_key_id: str
    role: Role
    status: AccessKeyStatus
    description: str
    creation_date: datetime
    last_modified_date: datetime
