"""The changes mitigation actions make, in one place for audit and detect.

Both Device Defender halves act through :class:`RegistryEffects`: deactivating a
certificate or CA, moving things into a quarantine group, installing a blank default
policy version, turning logging on, sending a message to an alert target. Every change
goes through the registry services, so it publishes the same event as the same change
made through the API, and the broker drops or re-binds the affected live sessions at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from bastion.registry import (
    CaCertificateStatus,
    CertificateStatus,
    IdentityService,
    PolicyService,
    RegistryService,
)
from bastion.store import Store

#: The "blank" default version REPLACE_DEFAULT_POLICY_VERSION installs: it allows nothing
#: (a Deny on a resource that does not exist, because a policy needs a statement).
BLANK_POLICY_DOCUMENT: Final = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*",'
    '"Resource":"arn:aws:iot:*:*:bastion-blank-policy"}]}')


class LoggingSwitch(Protocol):
    """Turns IoT logging on (ENABLE_IOT_LOGGING)."""

    def enable(self, role_arn: str, level: str) -> None: ...


class TargetNotifier(Protocol):
    """Sends a message to an alert target named by ARN (PUBLISH_FINDING_TO_SNS)."""

    def target_exists(self, target_arn: str) -> bool: ...

    def notify(self, target_arn: str, subject: str, message: Mapping[str, Any]) -> None: ...


class MitigationEffects(Protocol):
    """The changes mitigation actions make."""

    def deactivate_certificate(self, certificate_id: str) -> None: ...

    def deactivate_ca_certificate(self, ca_certificate_id: str) -> None: ...

    def things_of_certificate(self, certificate_id: str) -> list[str]: ...

    def certificates_of_thing(self, thing_name: str) -> list[str]: ...

    def add_thing_to_group(self, group_name: str, thing_name: str) -> None: ...

    def replace_default_policy_version(self, policy_name: str) -> str: ...

    def enable_logging(self, role_arn: str, level: str) -> None: ...

    def publish(self, target_arn: str, subject: str, message: Mapping[str, Any]) -> None: ...


class RegistryEffects:
    """:class:`MitigationEffects` through the registry services (whose events reach the
    broker), the logging options and the alert targets."""

    def __init__(self, store: Store, *, identity: IdentityService, registry: RegistryService,
                 policies: PolicyService, logging: LoggingSwitch | None,
                 notifier: TargetNotifier | None) -> None:
        self._store = store
        self._identity = identity
        self._registry = registry
        self._policies = policies
        self._logging = logging
        self._notifier = notifier

    def deactivate_certificate(self, certificate_id: str) -> None:
        self._identity.update_certificate(certificate_id, CertificateStatus.INACTIVE)

    def deactivate_ca_certificate(self, ca_certificate_id: str) -> None:
        self._identity.update_ca_certificate(ca_certificate_id,
                                             new_status=CaCertificateStatus.INACTIVE)

    def things_of_certificate(self, certificate_id: str) -> list[str]:
        with self._store.transaction(readonly=True) as uow:
            return uow.audit_fleet.things_of_certificate(certificate_id)

    def certificates_of_thing(self, thing_name: str) -> list[str]:
        """The ids of the certificates attached to ``thing_name``.

        :raises bastion.registry.ResourceNotFoundError: no such thing.
        """
        certificates: list[str] = []
        token: str | None = None
        while True:
            page, token = self._registry.list_thing_principals(thing_name, next_token=token)
            certificates.extend(arn.rsplit("/", 1)[1] for arn in page if ":cert/" in arn)
            if not token:
                return certificates

    def add_thing_to_group(self, group_name: str, thing_name: str) -> None:
        self._registry.add_thing_to_thing_group(thing_group_name=group_name,
                                                thing_name=thing_name)

    def replace_default_policy_version(self, policy_name: str) -> str:
        version = self._policies.create_policy_version(policy_name, BLANK_POLICY_DOCUMENT,
                                                       set_as_default=True)
        return version.version_id

    def enable_logging(self, role_arn: str, level: str) -> None:
        if self._logging is None:
            raise LookupError("IoT logging options are not available")
        self._logging.enable(role_arn, level)

    def publish(self, target_arn: str, subject: str, message: Mapping[str, Any]) -> None:
        if self._notifier is None or not self._notifier.target_exists(target_arn):
            raise LookupError(f"{target_arn} is not a Bastion alert target")
        self._notifier.notify(target_arn, subject, message)
