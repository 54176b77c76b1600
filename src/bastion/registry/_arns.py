"""The registry's resource types as they appear in ARNs, and reading an ARN a caller sent.

ARNs are formatted by :meth:`bastion.account.Account.arn` (``<type>/<id>``); this module
turns a caller's ARN back into ``(type, id)`` with the registry's errors.
"""

from __future__ import annotations

import re
from typing import Final

from bastion.account import Account, parse_arn

from ._errors import InvalidRequestError, ResourceNotFoundError

_RESOURCE: Final = re.compile(r"([a-z]+)/(.+)", re.DOTALL)

CERT: Final = "cert"
CA_CERT: Final = "cacert"
THING: Final = "thing"
THING_TYPE: Final = "thingtype"
THING_GROUP: Final = "thinggroup"
POLICY: Final = "policy"
ACCESS_KEY: Final = "accesskey"
"""An access key as a policy target (``arn:aws:iot:<region>:<account>:accesskey/<id>``):
the principal of MQTT over WebSocket signed with that long-lived key."""
ROLE_ALIAS_TARGET: Final = "rolealias"
"""A role alias as a policy target: the principal of MQTT over WebSocket signed with
temporary credentials issued for it (the role session)."""


def split_arn(account: Account, arn: object, allowed_types: frozenset[str]
              ) -> tuple[str, str]:
    """Split an IoT ARN of ``account`` into ``(resource_type, resource_id)``.

    :raises InvalidRequestError: (the caller's fault; HTTP 400) not an IoT ARN of the
        ``aws`` partition, or of a type not in ``allowed_types``.
    :raises ResourceNotFoundError: (HTTP 404) the ARN names another region or account, so
        no such resource exists here.
    """
    if not isinstance(arn, str):
        raise InvalidRequestError("The ARN must be a string")
    kinds = ", ".join(sorted(allowed_types))
    try:
        parts = parse_arn(arn)
    except ValueError:
        raise InvalidRequestError(f"{arn!r} is not a valid ARN of a {kinds}") from None
    match = _RESOURCE.fullmatch(parts.resource)
    if (parts.partition != "aws" or parts.service != "iot" or match is None
            or match.group(1) not in allowed_types):
        raise InvalidRequestError(f"{arn!r} is not a valid ARN of a {kinds}")
    if not account.owns(parts):
        raise ResourceNotFoundError(f"{arn} does not exist in this account and region")
    return match.group(1), match.group(2)
