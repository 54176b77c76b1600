"""Where the registry pretends to live: region and account, and the ARNs built from them.

ARNs are never stored; they are derived from the :class:`RegistryConfig` in force, so an
installation can change its region or account id without rewriting the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._errors import InvalidRequestError, ResourceNotFoundError

_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_ACCOUNT: Final = re.compile(r"\d{12}")
_ARN: Final = re.compile(r"arn:aws:iot:([^:]*):([^:]*):([a-z]+)/(.+)", re.DOTALL)

CERT: Final = "cert"
CA_CERT: Final = "cacert"
THING: Final = "thing"
THING_TYPE: Final = "thingtype"
THING_GROUP: Final = "thinggroup"
POLICY: Final = "policy"


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """The AWS region and account id that Bastion answers as.

    :raises ValueError: the region is not shaped like ``us-east-1`` or the account id is
        not 12 digits.
    """

    region: str = "us-east-1"
    account_id: str = "123456789012"

    def __post_init__(self) -> None:
        if not isinstance(self.region, str) or not _REGION.fullmatch(self.region):
            raise ValueError(f"region {self.region!r} is not an AWS region name")
        if not isinstance(self.account_id, str) or not _ACCOUNT.fullmatch(self.account_id):
            raise ValueError(f"account_id {self.account_id!r} must be 12 digits")

    def arn(self, resource_type: str, resource_id: str) -> str:
        """``arn:aws:iot:{region}:{account}:{resource_type}/{resource_id}``."""
        return f"arn:aws:iot:{self.region}:{self.account_id}:{resource_type}/{resource_id}"

    def parse_arn(self, arn: str, allowed_types: frozenset[str]) -> tuple[str, str]:
        """Split an ARN of this region and account into ``(resource_type, resource_id)``.

        :raises InvalidRequestError: not an IoT ARN, or of a type not in ``allowed_types``.
        :raises ResourceNotFoundError: the ARN names another region or account (no such
            resource exists here).
        """
        if not isinstance(arn, str):
            raise InvalidRequestError("The ARN must be a string")
        match = _ARN.fullmatch(arn)
        if match is None or match.group(3) not in allowed_types:
            kinds = ", ".join(sorted(allowed_types))
            raise InvalidRequestError(f"{arn!r} is not a valid ARN of a {kinds}")
        region, account, resource_type, resource_id = match.groups()
        if region != self.region or account != self.account_id:
            raise ResourceNotFoundError(f"{arn} does not exist in this account and region")
        return resource_type, resource_id
