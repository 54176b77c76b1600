"""The catalog of audit checks: severity, resource type, reason codes, settings, default
state and the mitigation actions AWS allows, for every check Bastion knows.

Checks whose subject Bastion does not have (Amazon Cognito identity pools, IAM role
aliases) are listed so that AWS tooling that enables "every check" keeps working: they
run, find no resource of their kind, and complete compliant with a total of 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bastion.defender.mitigation import MitigationActionType

from ._model import CheckName, ConfigName, ResourceType, Severity

# Reason codes --------------------------------------------------------------------------
CERTIFICATE_APPROACHING_EXPIRATION: Final = "CERTIFICATE_APPROACHING_EXPIRATION"
CERTIFICATE_PAST_EXPIRATION: Final = "CERTIFICATE_PAST_EXPIRATION"
CERTIFICATE_PAST_AGE_THRESHOLD: Final = "CERTIFICATE_PAST_AGE_THRESHOLD"
CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES: Final = "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES"
DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS: Final = "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS"
CERTIFICATE_REVOKED_BY_ISSUER: Final = "CERTIFICATE_REVOKED_BY_ISSUER"
INTERMEDIATE_CA_REVOKED_BY_ISSUER: Final = "INTERMEDIATE_CA_REVOKED_BY_ISSUER"
ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS: Final = "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"
POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT: Final = (
    "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT")
TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS: Final = (
    "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS")
LOGGING_DISABLED: Final = "LOGGING_DISABLED"
KEY_ROCA: Final = "CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361"
KEY_DEBIAN: Final = "CERTIFICATE_KEY_VULNERABILITY_CVE-2008-0166"
# Bastion's own key-quality reasons (AWS only names the two CVEs).
KEY_COMPROMISED: Final = "CERTIFICATE_KEY_ON_COMPROMISED_KEY_LIST"
KEY_FERMAT: Final = "CERTIFICATE_KEY_FERMAT_FACTORABLE"
KEY_SMALL_FACTORS: Final = "CERTIFICATE_KEY_HAS_SMALL_FACTORS"
KEY_FACTORABLE: Final = "CERTIFICATE_KEY_FACTORABLE"
KEY_TOO_SHORT: Final = "CERTIFICATE_KEY_TOO_SHORT"
# Bastion's own checks.
CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS: Final = "CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS"
ALLOWS_ALL_IOT_ACTIONS: Final = "ALLOWS_ALL_IOT_ACTIONS"
CLAIM_TEMPLATE_WITHOUT_PRE_PROVISIONING_HOOK: Final = (
    "CLAIM_TEMPLATE_WITHOUT_PRE_PROVISIONING_HOOK")

KEY_QUALITY_REASONS: Final = (KEY_ROCA, KEY_DEBIAN, KEY_COMPROMISED, KEY_FERMAT,
                              KEY_SMALL_FACTORS, KEY_FACTORABLE, KEY_TOO_SHORT)

_SNS = MitigationActionType.PUBLISH_FINDING_TO_SNS
_DEVICE = (_SNS, MitigationActionType.UPDATE_DEVICE_CERTIFICATE,
           MitigationActionType.ADD_THINGS_TO_THING_GROUP)
_CA = (_SNS, MitigationActionType.UPDATE_CA_CERTIFICATE)


@dataclass(frozen=True, slots=True)
class ThresholdSetting:
    """A ``configuration`` value of a check: an integer number of days."""

    name: ConfigName
    default: int
    minimum: int
    maximum: int


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """What is fixed about a check.

    :ivar supported: Bastion has the check's subject (otherwise it always finds nothing).
    :ivar enabled_by_default: the state before an operator configures the account.
    :ivar bastion: one of Bastion's own checks (not in AWS).
    """

    name: CheckName
    severity: Severity
    resource_type: ResourceType
    reason_codes: tuple[str, ...]
    actions: tuple[MitigationActionType, ...]
    settings: tuple[ThresholdSetting, ...] = ()
    supported: bool = True
    enabled_by_default: bool = True
    bastion: bool = False
    summary: str = ""


_EXPIRY = ThresholdSetting(ConfigName.CERT_EXPIRATION_THRESHOLD_IN_DAYS, 30, 30, 3652)
_AGE = ThresholdSetting(ConfigName.CERT_AGE_THRESHOLD_IN_DAYS, 365, 30, 3652)

CHECKS: Final[dict[str, CheckSpec]] = {spec.name.value: spec for spec in (
    CheckSpec(CheckName.AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK, Severity.CRITICAL,
              ResourceType.COGNITO_IDENTITY_POOL,
              ("ALLOWS_BROAD_ACCESS_TO_IOT_THING_ADMIN_READ_ACTIONS",
               "ALLOWS_ACCESS_TO_IOT_NON_THING_ADMIN_ACTIONS",
               "ALLOWS_ACCESS_TO_IOT_THING_ADMIN_WRITE_ACTIONS"), (_SNS,), supported=False,
              summary="Bastion has no Amazon Cognito identity pools."),
    CheckSpec(CheckName.UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK, Severity.CRITICAL,
              ResourceType.COGNITO_IDENTITY_POOL,
              ("ALLOWS_ACCESS_TO_IOT_ADMIN_ACTIONS",
               "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"), (_SNS,), supported=False,
              summary="Bastion has no Amazon Cognito identity pools."),
    CheckSpec(CheckName.IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK, Severity.CRITICAL,
              ResourceType.ROLE_ALIAS,
              ("ALLOWS_BROAD_ACCESS_TO_USED_SERVICES",
               "ALLOWS_ACCESS_TO_SECURITY_AUDITING_SERVICES",
               "ALLOWS_BROAD_ACCESS_TO_IOT_THING_ADMIN_READ_ACTIONS",
               "ALLOWS_ACCESS_TO_IOT_NON_THING_ADMIN_ACTIONS",
               "ALLOWS_ACCESS_TO_IOT_THING_ADMIN_WRITE_ACTIONS",
               "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"), (_SNS,), supported=False,
              summary="Bastion has no role aliases (no credentials provider)."),
    CheckSpec(CheckName.IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK, Severity.MEDIUM,
              ResourceType.ROLE_ALIAS, ("ALLOWS_ACCESS_TO_UNUSED_SERVICES",), (_SNS,),
              supported=False,
              summary="Bastion has no role aliases (no credentials provider)."),
    CheckSpec(CheckName.CA_CERTIFICATE_EXPIRING_CHECK, Severity.MEDIUM,
              ResourceType.CA_CERTIFICATE,
              (CERTIFICATE_APPROACHING_EXPIRATION, CERTIFICATE_PAST_EXPIRATION), _CA,
              summary="An ACTIVE CA certificate expires within 30 days or has expired."),
    CheckSpec(CheckName.CA_CERTIFICATE_KEY_QUALITY_CHECK, Severity.CRITICAL,
              ResourceType.CA_CERTIFICATE, KEY_QUALITY_REASONS, _CA,
              summary="A CA certificate's key is weak or known to be compromised."),
    CheckSpec(CheckName.CONFLICTING_CLIENT_IDS_CHECK, Severity.HIGH, ResourceType.CLIENT_ID,
              (DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS,), (_SNS,),
              summary="Several connections used one client id and took each other over."),
    CheckSpec(CheckName.DEVICE_CERTIFICATE_AGE_CHECK, Severity.LOW,
              ResourceType.DEVICE_CERTIFICATE, (CERTIFICATE_PAST_AGE_THRESHOLD,), _DEVICE,
              (_AGE,), enabled_by_default=False,
              summary="A device certificate has been active longer than the threshold."),
    CheckSpec(CheckName.DEVICE_CERTIFICATE_EXPIRING_CHECK, Severity.MEDIUM,
              ResourceType.DEVICE_CERTIFICATE,
              (CERTIFICATE_APPROACHING_EXPIRATION, CERTIFICATE_PAST_EXPIRATION), _DEVICE,
              (_EXPIRY,),
              summary="An ACTIVE device certificate expires within the threshold or has "
                      "expired."),
    CheckSpec(CheckName.DEVICE_CERTIFICATE_KEY_QUALITY_CHECK, Severity.CRITICAL,
              ResourceType.DEVICE_CERTIFICATE, KEY_QUALITY_REASONS, _DEVICE,
              summary="A device certificate's key is weak or known to be compromised."),
    CheckSpec(CheckName.DEVICE_CERTIFICATE_SHARED_CHECK, Severity.CRITICAL,
              ResourceType.DEVICE_CERTIFICATE, (CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES,),
              _DEVICE,
              summary="One certificate was used by several connections at the same time."),
    CheckSpec(CheckName.INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK,
              Severity.CRITICAL, ResourceType.DEVICE_CERTIFICATE,
              (INTERMEDIATE_CA_REVOKED_BY_ISSUER,), _DEVICE,
              summary="Device certificates are still ACTIVE although their intermediate "
                      "CA is on its issuer's CRL."),
    CheckSpec(CheckName.IOT_POLICY_OVERLY_PERMISSIVE_CHECK, Severity.CRITICAL,
              ResourceType.IOT_POLICY, (ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS,),
              (_SNS, MitigationActionType.REPLACE_DEFAULT_POLICY_VERSION),
              summary="A policy lets any client id connect, or one device reach another "
                      "device's topics, shadow or jobs."),
    CheckSpec(CheckName.IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK, Severity.MEDIUM,
              ResourceType.IOT_POLICY,
              (POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT,
               TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS), (_SNS,),
              summary="A Deny uses MQTT wildcards (literal in policies) or can be bypassed "
                      "by subscribing with wildcards."),
    CheckSpec(CheckName.LOGGING_DISABLED_CHECK, Severity.LOW, ResourceType.ACCOUNT_SETTINGS,
              (LOGGING_DISABLED,), (_SNS, MitigationActionType.ENABLE_IOT_LOGGING),
              summary="Bastion's IoT logging is switched off."),
    CheckSpec(CheckName.REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK, Severity.CRITICAL,
              ResourceType.CA_CERTIFICATE, (CERTIFICATE_REVOKED_BY_ISSUER,), _CA,
              summary="A CA certificate on its issuer's CRL is still ACTIVE."),
    CheckSpec(CheckName.REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK, Severity.MEDIUM,
              ResourceType.DEVICE_CERTIFICATE, (CERTIFICATE_REVOKED_BY_ISSUER,), _DEVICE,
              summary="A device certificate on its CA's CRL is still ACTIVE."),
    CheckSpec(CheckName.DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK, Severity.MEDIUM,
              ResourceType.DEVICE_CERTIFICATE, (CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS,),
              _DEVICE, bastion=True,
              summary="A device certificate is attached to more than one thing."),
    CheckSpec(CheckName.IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK, Severity.HIGH,
              ResourceType.IOT_POLICY, (ALLOWS_ALL_IOT_ACTIONS,),
              (_SNS, MitigationActionType.REPLACE_DEFAULT_POLICY_VERSION), bastion=True,
              summary="A policy allows every IoT action (iot:* or *)."),
    CheckSpec(CheckName.CLAIM_PROVISIONING_TEMPLATE_WITHOUT_HOOK_CHECK, Severity.HIGH,
              ResourceType.PROVISIONING_TEMPLATE,
              (CLAIM_TEMPLATE_WITHOUT_PRE_PROVISIONING_HOOK,), (_SNS,), bastion=True,
              summary="An enabled fleet-provisioning (claim) template has no "
                      "pre-provisioning hook to vet devices."),
)}


def spec_of(check_name: str) -> CheckSpec | None:
    return CHECKS.get(check_name)


def threshold(spec: CheckSpec, configuration: dict[str, str] | None, name: ConfigName) -> int:
    """The value of a threshold setting (its default when not configured)."""
    for setting in spec.settings:
        if setting.name is name:
            raw = (configuration or {}).get(name.value)
            return setting.default if raw is None else int(raw)
    raise KeyError(name)
