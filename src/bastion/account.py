"""The AWS account Bastion answers as, and the ARNs built from it.

Every ARN Bastion writes is formatted here: :meth:`Account.arn` for the installation's
own resources, :func:`format_arn` for the rare ARN of another partition, region or
account (a policy-evaluation context names whatever the request names). ARNs read back
from callers are split with :func:`parse_arn`; whether one names *this* account is
:meth:`Account.owns`.

ARNs are never stored: they are derived from the :class:`Account` in force, so an
installation can change its region or account id without rewriting the database.

This module imports nothing from Bastion, so every package can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Account", "Arn", "format_arn", "parse_arn"]

# ASCII only: ``\d`` alone would also take other scripts' digits (``１２``).
_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
_ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")
_SERVICE: Final = re.compile(r"[a-z0-9-]+")

# Services whose ARNs carry no region (``arn:aws:iam::<account>:role/<name>``).
_GLOBAL_SERVICES: Final = frozenset({"iam"})


def format_arn(resource: str, *, partition: str, service: str, region: str,
               account_id: str) -> str:
    """``arn:<partition>:<service>:<region>:<account_id>:<resource>``, without checks.

    Prefer :meth:`Account.arn`; this is for ARNs of a partition, region or account that is
    not necessarily the installation's own (a policy request context; the CLI completing an
    ARN a remote server answered with).
    """
    return f"arn:{partition}:{service}:{region}:{account_id}:{resource}"


@dataclass(frozen=True, slots=True)
class Arn:
    """The six fields of an ARN, as :func:`parse_arn` split them.

    :ivar resource: everything after the account field (``thing/dev1``,
        ``topic/a/b``, ``my-target``); it may hold ``:`` and ``/``.
    """

    partition: str
    service: str
    region: str
    account_id: str
    resource: str


def parse_arn(text: str) -> Arn:
    """Split ``arn:<partition>:<service>:<region>:<account>:<resource>``.

    Only the shape is checked (six ``:``-separated fields, a non-empty partition, service
    and resource); region and account may be empty or wildcards, as in policies.

    :raises TypeError: ``text`` is not a string.
    :raises ValueError: ``text`` is not shaped like an ARN.
    """
    if not isinstance(text, str):
        raise TypeError(f"an ARN must be a string, not {type(text).__name__}")
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not all(parts[i] for i in (1, 2, 5)):
        raise ValueError(f"{text!r} is not an ARN")
    _, partition, service, region, account_id, resource = parts
    return Arn(partition, service, region, account_id, resource)


@dataclass(frozen=True, slots=True)
class Account:
    """The AWS region and account id Bastion answers as (``[account]`` in ``config.toml``).

    The defaults are those of an installation that configured none.

    :raises TypeError: ``region`` or ``account_id`` is not a string.
    :raises ValueError: the region is not shaped like ``us-east-1``, or the account id is
        not 12 digits.
    """

    region: str = "us-east-1"
    account_id: str = "123456789012"

    def __post_init__(self) -> None:
        for name in ("region", "account_id"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be str, not {type(value).__name__}")
        if not _REGION.fullmatch(self.region):
            raise ValueError(f"region {self.region!r} is not an AWS region name")
        if not _ACCOUNT_ID.fullmatch(self.account_id):
            raise ValueError(f"account_id {self.account_id!r} must be 12 digits")

    def arn(self, resource: str, *, service: str = "iot") -> str:
        """The ARN of ``resource`` of ``service`` in this account (partition ``aws``).

        ``Account("eu-west-1", "111122223333").arn("thing/dev1")`` is
        ``"arn:aws:iot:eu-west-1:111122223333:thing/dev1"``; ``arn("role/x",
        service="iam")`` has no region (IAM is global); ``arn("")`` is the prefix every
        IoT ARN of this account starts with.

        :raises ValueError: ``service`` is not a lower-case service name.
        """
        if not _SERVICE.fullmatch(service):
            raise ValueError(f"{service!r} is not an AWS service name")
        region = "" if service in _GLOBAL_SERVICES else self.region
        return format_arn(resource, partition="aws", service=service, region=region,
                          account_id=self.account_id)

    def owns(self, arn: Arn, *, service: str = "iot") -> bool:
        """Whether ``arn`` (from :func:`parse_arn`) is of ``service`` in this account:
        partition ``aws``, this region (none for a global service) and this account id."""
        region = "" if service in _GLOBAL_SERVICES else self.region
        return (arn.partition == "aws" and arn.service == service and arn.region == region
                and arn.account_id == self.account_id)
