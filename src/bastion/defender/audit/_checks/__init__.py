"""The checks, one small module per family, and :data:`CHECK_FUNCTIONS`: check name →
function. A check whose subject Bastion lacks has no function; the runner reports it
compliant with no resources."""

from __future__ import annotations

from typing import Final

from .._model import CheckName
from . import account, certificates, connections, key_quality, policies, revocation
from ._base import Check, CheckContext, CheckOutcome, Fleet

CHECK_FUNCTIONS: Final[dict[str, Check]] = {
    CheckName.CA_CERTIFICATE_EXPIRING_CHECK: certificates.ca_certificate_expiring,
    CheckName.CA_CERTIFICATE_KEY_QUALITY_CHECK: key_quality.ca_certificate_key_quality,
    CheckName.CONFLICTING_CLIENT_IDS_CHECK: connections.conflicting_client_ids,
    CheckName.DEVICE_CERTIFICATE_AGE_CHECK: certificates.device_certificate_age,
    CheckName.DEVICE_CERTIFICATE_EXPIRING_CHECK: certificates.device_certificate_expiring,
    CheckName.DEVICE_CERTIFICATE_KEY_QUALITY_CHECK: key_quality.device_certificate_key_quality,
    CheckName.DEVICE_CERTIFICATE_SHARED_CHECK: connections.device_certificate_shared,
    CheckName.INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK:
        revocation.intermediate_ca_revoked_for_active_device_certificates,
    CheckName.IOT_POLICY_OVERLY_PERMISSIVE_CHECK: policies.iot_policy_overly_permissive,
    CheckName.IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK:
        policies.iot_policy_potential_misconfiguration,
    CheckName.LOGGING_DISABLED_CHECK: account.logging_disabled,
    CheckName.REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK:
        revocation.revoked_ca_certificate_still_active,
    CheckName.REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK:
        revocation.revoked_device_certificate_still_active,
    CheckName.DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK:
        certificates.certificate_on_several_things,
    CheckName.IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK: policies.iot_policy_allows_all_actions,
    CheckName.CLAIM_PROVISIONING_TEMPLATE_WITHOUT_HOOK_CHECK:
        account.claim_template_without_hook,
}

__all__ = ["CHECK_FUNCTIONS", "Check", "CheckContext", "CheckOutcome", "Fleet"]
