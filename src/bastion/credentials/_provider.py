"""The credentials provider's decision: which device asks, for which role alias, and
whether it gets temporary credentials.

Theory of operation
-------------------
The TLS handshake has proven the device holds the private key of a certificate that
chains to Bastion's CA or a registered CA (the listener's trust store, the same as the
MQTT listeners'). :meth:`CredentialsProvider.credentials` then decides, in the order AWS's
credentials provider answers (so that a device learns nothing about aliases its policy
does not grant):

1. **Certificate** — the broker's gate (:meth:`bastion.enforcement.RegistryGate.bind`,
   the CONNECT rules, without JITP/JITR): registered, ACTIVE, its CA ACTIVE; else
   ``403 Certificate is invalid on this endpoint``. The gate also binds the device's
   effective policies, with the thing named by ``x-amzn-iot-thingname`` as the client id
   — its thing-group policies and ``iot:Connection.Thing.*`` variables apply when it is
   attached to the certificate.
2. **Thing** — when the device names a thing, the certificate must be attached to it;
   else ``403 Invalid thing name passed``. Without the header no thing is named (AWS
   makes it optional too) and the credentials name none.
3. **Policy** — ``iot:AssumeRoleWithCertificate`` on
   ``arn:aws:iot:<region>:<account>:rolealias/<alias>`` must be allowed; else
   ``403 Access Denied``.
4. **Alias** — it must exist; else ``404 Role alias does not exist``.
5. **Role** — its role ARN must name a role temporary credentials may carry (operator,
   auditor; never admin); else ``400 Unable to assume the role, or the role to assume
   does not exist``.

The answer: credentials from :meth:`bastion.access.TemporaryCredentialService.issue`,
valid for the alias's ``credentialDurationSeconds``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Final

from bastion.access import ASSUMABLE_ROLES, TemporaryCredentials, TemporaryCredentialService
from bastion.broker import AuthenticationError, Principal
from bastion.enforcement import RegistryGate
from bastion.registry import ResourceNotFoundError, RoleAliasService

ASSUME_ROLE_ACTION: Final = "iot:AssumeRoleWithCertificate"
THING_NAME_HEADER: Final = "x-amzn-iot-thingname"
_THING_NAME: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_ALIAS_NAME: Final = re.compile(r"[\w=,@-]{1,128}", re.ASCII)


class ProviderError(Exception):
    """A refusal, with what the device sees: the HTTP status, the error type (the
    ``x-amzn-ErrorType`` header) and the message of the JSON body.

    Whose fault: always the device's (or its registration's) — a refusal is a *remote*
    violation; Bastion's own failures are not ProviderErrors.
    """

    def __init__(self, http_status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_type = error_type
        self.message = message


def invalid_certificate() -> ProviderError:
    return ProviderError(403, "AccessDeniedException", "Certificate is invalid on this endpoint")


def invalid_thing() -> ProviderError:
    return ProviderError(403, "AccessDeniedException", "Invalid thing name passed")


def access_denied() -> ProviderError:
    return ProviderError(403, "AccessDeniedException", "Access Denied")


def alias_not_found() -> ProviderError:
    return ProviderError(404, "ResourceNotFoundException", "Role alias does not exist")


def role_not_assumable() -> ProviderError:
    return ProviderError(400, "InvalidRequestException",
                         "Unable to assume the role, or the role to assume does not exist")


@dataclass(frozen=True, slots=True)
class Issued:
    """Credentials handed to a device, with whom they were handed to."""

    credentials: TemporaryCredentials
    certificate_id: str
    thing_name: str | None
    role_alias: str


class CredentialsProvider:
    """Decides and issues (see the module docstring).

    :param gate: the broker's gate: the same certificate rules and policy bindings as
        CONNECT, and its caches (dropped by the security events).
    :param role_aliases: the registry's role aliases (their ARNs name the account).
    :param issuer: makes the credentials.
    """

    __slots__ = ("_gate", "_issuer", "_role_aliases")

    def __init__(self, gate: RegistryGate, role_aliases: RoleAliasService,
                 issuer: TemporaryCredentialService) -> None:
        self._gate = gate
        self._role_aliases = role_aliases
        self._issuer = issuer

    async def credentials(self, principal: Principal, role_alias: str,
                          thing_name: str | None) -> Issued:
        """Temporary credentials for the device ``principal`` under ``role_alias``.

        :param thing_name: the ``x-amzn-iot-thingname`` header, if sent.
        :raises ProviderError: a refusal (steps 1–5 of the module docstring).
        """
        if thing_name is not None and not _THING_NAME.fullmatch(thing_name):
            raise invalid_thing()
        try:
            permissions = await self._gate.bind(principal, thing_name or "",
                                                first_sight=False)
        except AuthenticationError:
            raise invalid_certificate() from None
        if thing_name is not None and permissions.thing_name != thing_name:
            raise invalid_thing()
        if not _ALIAS_NAME.fullmatch(role_alias):
            raise access_denied()  # no policy grants what cannot be an alias
        arn = self._role_aliases.role_alias_arn(role_alias)
        if not permissions.bound.is_allowed(ASSUME_ROLE_ACTION, arn):
            raise access_denied()
        try:
            alias = await asyncio.to_thread(self._role_aliases.describe_role_alias,
                                            role_alias)
        except ResourceNotFoundError:
            raise alias_not_found() from None
        if alias.role is None or alias.role not in ASSUMABLE_ROLES:
            raise role_not_assumable()
        credentials = self._issuer.issue(
            role=alias.role, role_alias=alias.role_alias, thing_name=thing_name,
            certificate_id=principal.certificate_id,
            duration_seconds=alias.credential_duration_seconds)
        return Issued(credentials, principal.certificate_id, thing_name, alias.role_alias)
