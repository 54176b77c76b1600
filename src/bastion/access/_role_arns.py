"""Which Bastion API role an IAM role ARN names.

A role alias points at a role by ARN, as in AWS. Bastion has no IAM: its roles are the
API roles of :class:`~bastion.access.Role`, and an IAM-shaped ARN in this installation's
account names one of them by its role name (any IAM path is allowed before it)::

    arn:aws:iam::<account>:role/bastion-operator   → operator
    arn:aws:iam::<account>:role/bastion-auditor    → auditor
    arn:aws:iam::<account>:role/bastion-admin      → admin (never assumable)

Temporary credentials never carry ``admin``: admin manages access keys, so a device
holding admin credentials — a device whose private key leaked — could mint long-lived
admin keys and own the installation for good. Devices get the least a fleet operator
grants; an administrator signs with an access key of their own.
"""

from __future__ import annotations

from typing import Final

from bastion.account import Account, parse_arn

from ._model import Role

ROLE_NAMES: Final = {
    "bastion-operator": Role.OPERATOR,
    "bastion-auditor": Role.AUDITOR,
    "bastion-admin": Role.ADMIN,
}
"""The IAM role name of each Bastion API role."""

ASSUMABLE_ROLES: Final = frozenset({Role.OPERATOR, Role.AUDITOR})
"""The roles temporary credentials may carry (see the module docstring)."""


def role_arn(account: Account, role: Role) -> str:
    """The IAM role ARN that names ``role`` in ``account``."""
    name = next(name for name, value in ROLE_NAMES.items() if value is role)
    return account.arn(f"role/{name}", service="iam")


def role_of_arn(account: Account, arn: str) -> Role:
    """The Bastion role ``arn`` names.

    :raises TypeError: ``arn`` is not a string.
    :raises ValueError: ``arn`` is not an IAM role ARN of ``account``, or its role name is
        none of :data:`ROLE_NAMES` (the message says which).
    """
    try:
        parsed = parse_arn(arn)
    except ValueError:
        raise ValueError(f"{arn} is not an IAM role ARN") from None
    if not account.owns(parsed, service="iam") or not parsed.resource.startswith("role/"):
        raise ValueError(f"{arn} is not an IAM role ARN of account {account.account_id}")
    name = parsed.resource.rsplit("/", 1)[-1]
    role = ROLE_NAMES.get(name)
    if role is None:
        known = ", ".join(sorted(ROLE_NAMES))
        raise ValueError(f"{arn} names no Bastion role; the role name must be one of {known}")
    return role
