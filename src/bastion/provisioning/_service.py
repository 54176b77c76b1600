"""ProvisioningService: fleet provisioning by claim, trusted-user claims, JITP and JITR.

Theory of operation
-------------------
*Fleet provisioning by claim.* A device connects with a claim certificate whose policy
reaches only the provisioning topics. It asks for a certificate
(:meth:`~ProvisioningService.create_keys_and_certificate_for_claim` or
:meth:`~ProvisioningService.create_certificate_from_csr_for_claim`): the certificate is
issued ``PENDING_ACTIVATION`` — it cannot connect — together with an ownership token
bound to that claim certificate. RegisterThing
(:meth:`~ProvisioningService.register_thing`) then:

1. checks the request's parameters and the template (it exists, is a fleet provisioning
   template, is enabled, and is the one a temporary claim was made for);
2. spends the token: it must be known, issued to this claim certificate, unexpired and
   unused, and is marked used atomically (two concurrent requests: one wins);
3. asks the template's pre-provisioning hook, if any — deny by default — and merges its
   parameter overrides;
4. evaluates the template with the parameters and the built-in certificate parameters
   (which the device cannot set) into a plan, and applies it (:mod:`._apply`): the new
   certificate gets the template's policies and nothing more, and becomes ``ACTIVE``
   last.

If a step after 2 fails, the token is released so that the device may retry until it
expires. A token that expires unused takes its certificate with it (if that is still
``PENDING_ACTIVATION`` and attached to nothing), as in AWS; the sweep runs on the next
certificate request.

*Trusted user.* :meth:`~ProvisioningService.create_provisioning_claim` issues a
temporary claim certificate (valid five minutes by default) with a policy limited to the
provisioning topics of that one template.

*JITP / JITR.* :meth:`~ProvisioningService.register_on_first_connection` is called by the
broker's gate for a certificate it does not know (or one still ``PENDING_ACTIVATION``):
the certificate must be signed by a registered, ``ACTIVE`` CA with auto-registration
enabled. It is registered ``PENDING_ACTIVATION``; with a template in the CA's
registration configuration (JITP) the template is run right away and the connection can
proceed; without one (JITR) it stays pending and the caller publishes the
``$aws/events/certificates/registered/<caCertificateId>`` event.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Final

from cryptography import x509

from bastion.account import Account
from bastion.clock import Clock
from bastion.pki import cert_to_pem
from bastion.registry import (
    AutoRegistrationStatus,
    CaCertificateRecord,
    CaCertificateStatus,
    CertificateRecord,
    CertificateStatus,
    IdentityService,
    PolicyService,
    RegistryError,
    RegistryService,
)
from bastion.registry import ResourceAlreadyExistsError as RegistryAlreadyExists
from bastion.registry import ResourceNotFoundError as RegistryNotFound
from bastion.store import OwnershipTokenRow, ProvisioningClaimRow, Store

from ._apply import PlanExecutor
from ._errors import (
    AccessDeniedError,
    InvalidRequestError,
    OwnershipTokenError,
    ParameterError,
    ProvisioningError,
)
from ._evaluate import (
    certificate_parameters,
    check_request_parameters,
    plan_provisioning,
    resolve_parameters,
)
from ._hook import HOOK_TIMEOUT, HookClient, HttpHookClient, ask_hook, hook_input
from ._model import (
    AutoRegistration,
    AutoRegistrationOutcome,
    OwnedCertificate,
    ProvisioningClaim,
    RegisteredThing,
)
from ._template import Template, TemplateType, parse_template
from ._templates import TemplateOperations, check_template_name
from ._tokens import TOKEN_LIFETIME, check_token, new_token, token_hash

log = logging.getLogger("bastion.provisioning")

CLAIM_LIFETIME: Final = timedelta(minutes=5)
CLAIM_POLICY_PREFIX: Final = "bastion-provisioning-claim-"
CLAIM_COMMON_NAME: Final = "AWS IoT Provisioning Claim"
SWEEP_BATCH: Final = 50


def claim_policy_document(account: Account, template_name: str) -> str:
    """The policy of a temporary claim certificate: connect with any client id, and
    publish, subscribe and receive only on the certificate topics and on the provision
    topics of ``template_name``."""
    arn = account.arn
    topics = ["$aws/certificates/create/*", "$aws/certificates/create-from-csr/*",
              f"$aws/provisioning-templates/{template_name}/provision/*"]
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": arn("client/*")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": [arn(f"topic/{topic}") for topic in topics]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": [arn(f"topicfilter/{topic}") for topic in topics]},
        ],
    }, indent=2)


class ProvisioningService(TemplateOperations):
    """Provisioning templates, fleet provisioning, claims, JITP and JITR.

    :param store: the open store.
    :param registry: things and groups. :param identity: certificates and CAs.
    :param policies: policies and attachments.
    :param account: region and account (default: the identity service's).
    :param hook_client: how hooks are called (default: :class:`HttpHookClient`).
    :param hook_timeout: seconds a hook has to answer (AWS: 5).
    :param token_lifetime: how long an ownership token is valid (AWS: one hour).
    :param claim_lifetime: how long a CreateProvisioningClaim certificate is valid.
    :param clock: the current time.
    :raises TypeError: a service of the wrong type.
    :raises ValueError: a non-positive timeout or lifetime.
    """

    def __init__(
        self,
        store: Store,
        *,
        registry: RegistryService,
        identity: IdentityService,
        policies: PolicyService,
        account: Account | None = None,
        hook_client: HookClient | None = None,
        hook_timeout: float = HOOK_TIMEOUT,
        token_lifetime: timedelta = TOKEN_LIFETIME,
        claim_lifetime: timedelta = CLAIM_LIFETIME,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(store, identity=identity, account=account, clock=clock)
        if not isinstance(registry, RegistryService) or not isinstance(policies, PolicyService):
            raise TypeError("registry and policies must be the registry's services")
        if hook_timeout <= 0 or token_lifetime <= timedelta(0) or claim_lifetime <= timedelta(0):
            raise ValueError("timeouts and lifetimes must be positive")
        self._registry = registry
        self._policies = policies
        self._hook_client: HookClient = hook_client or HttpHookClient()
        self._hook_timeout = float(hook_timeout)
        self._token_lifetime = token_lifetime
        self._claim_lifetime = claim_lifetime
        self._executor = PlanExecutor(registry, identity, policies)

    # -- trusted user ----------------------------------------------------------------

    def create_provisioning_claim(self, template_name: str) -> ProvisioningClaim:
        """CreateProvisioningClaim: a temporary claim certificate for a fleet
        provisioning template, with a policy reaching only that template's provisioning
        topics (created on first use, ``bastion-provisioning-claim-<templateName>``).

        :raises ResourceNotFoundError: no such template.
        :raises InvalidRequestError: it is a JITP template.
        """
        name = check_template_name(template_name)
        template = self.describe_provisioning_template(name)
        if template.template_type is not TemplateType.FLEET_PROVISIONING:
            raise InvalidRequestError(f"The provisioning template {name} is a JITP template; "
                                      "claims are for FLEET_PROVISIONING templates")
        policy_name = self._claim_policy(name)
        expiration = (self._now() + self._claim_lifetime).replace(microsecond=0)
        issued = self._identity.issue_keys_and_certificate(
            status=CertificateStatus.ACTIVE, not_after=expiration, common_name=CLAIM_COMMON_NAME)
        try:
            self._policies.attach_policy(policy_name, issued.certificate_arn)
            with self._store.transaction() as uow:
                uow.provisioning.insert_claim(ProvisioningClaimRow(
                    issued.certificate_id, name, expiration, self._now()))
        except BaseException:
            self._discard_certificate(issued.certificate_id, force=True)
            raise
        log.info("provisioning claim %s made for template %s (expires %s)",
                 issued.certificate_id, name, expiration.isoformat())
        return ProvisioningClaim(issued.certificate_id, issued.certificate_arn,
                                 issued.certificate_pem, issued.key_pair, expiration,
                                 policy_name)

    def _claim_policy(self, template_name: str) -> str:
        name = CLAIM_POLICY_PREFIX + template_name
        try:
            self._policies.get_policy(name)
        except RegistryNotFound:
            try:
                self._policies.create_policy(name, claim_policy_document(self._account,
                                                                         template_name))
            except RegistryAlreadyExists:
                pass  # made concurrently
        return name

    # -- fleet provisioning by claim ----------------------------------------------------

    def create_keys_and_certificate_for_claim(self, *, claim_certificate_id: str
                                              ) -> OwnedCertificate:
        """CreateKeysAndCertificate over MQTT: a key pair and a ``PENDING_ACTIVATION``
        certificate, with an ownership token bound to ``claim_certificate_id``.

        :raises AccessDeniedError: the claim certificate is a temporary claim that expired.
        """
        self._check_claim(claim_certificate_id)
        self.sweep_expired()
        issued = self._identity.issue_keys_and_certificate(
            status=CertificateStatus.PENDING_ACTIVATION)
        token = self._new_token(issued.certificate_id, claim_certificate_id)
        return OwnedCertificate(issued.certificate_id, issued.certificate_pem, token,
                                issued.key_pair.private_key)

    def create_certificate_from_csr_for_claim(
        self, certificate_signing_request: object, *, claim_certificate_id: str
    ) -> OwnedCertificate:
        """CreateCertificateFromCsr over MQTT: a ``PENDING_ACTIVATION`` certificate for
        the CSR's key, with an ownership token bound to ``claim_certificate_id``.

        :raises InvalidRequestError: no CSR, or a CSR the registry refuses.
        :raises AccessDeniedError: the claim certificate is a temporary claim that expired.
        """
        if not isinstance(certificate_signing_request, str) or not certificate_signing_request:
            raise InvalidRequestError("certificateSigningRequest is required")
        self._check_claim(claim_certificate_id)
        self.sweep_expired()
        try:
            record = self._identity.issue_certificate_from_csr(
                certificate_signing_request, status=CertificateStatus.PENDING_ACTIVATION)
        except RegistryError as exc:
            raise InvalidRequestError(exc.message) from None
        token = self._new_token(record.certificate_id, claim_certificate_id)
        return OwnedCertificate(record.certificate_id, record.certificate_pem, token)

    def register_thing(
        self,
        template_name: str,
        *,
        certificate_ownership_token: object,
        parameters: object = None,
        claim_certificate_id: str,
        client_id: str = "",
    ) -> RegisteredThing:
        """RegisterThing: provision the certificate of the ownership token with a fleet
        provisioning template (see the module docstring for the steps).

        :raises ResourceNotFoundError: no such template.
        :raises InvalidRequestError: a JITP template, a disabled one, or not the template
            a temporary claim was made for.
        :raises OwnershipTokenError: the token is missing, unknown, expired, used, or was
            issued to another claim certificate.
        :raises AccessDeniedError: the pre-provisioning hook did not allow it.
        :raises ParameterError: a parameter is missing or the template cannot be evaluated.
        :raises ResourceConflictsError: a ``FAIL`` override met an existing resource.
        :raises ProvisioningFailedError: the registry refused a step (all undone).
        """
        name = check_template_name(template_name)
        given = check_request_parameters(parameters)
        token = check_token(certificate_ownership_token)
        template, parsed = self._load(name)
        if template.template_type is not TemplateType.FLEET_PROVISIONING:
            raise InvalidRequestError(f"The provisioning template {name} is a JITP template")
        if not template.enabled:
            raise InvalidRequestError(f"The provisioning template {name} is disabled")
        claim = self._check_claim(claim_certificate_id)
        if claim is not None and claim.template_name != name:
            raise AccessDeniedError(f"This claim certificate is for provisioning template "
                                    f"{claim.template_name}, not {name}")
        row = self._spend_token(token, claim_certificate_id)
        try:
            certificate = self._identity.describe_certificate(row.certificate_id)
            values = dict(given)
            hook = template.pre_provisioning_hook
            if hook is not None:
                decision = ask_hook(self._hook_client, hook, hook_input(
                    claim_certificate_id=claim_certificate_id,
                    certificate_id=certificate.certificate_id,
                    certificate_pem=certificate.certificate_pem,
                    template_arn=template.template_arn, client_id=client_id,
                    parameters=given), self._hook_timeout)
                if not decision.allowed:
                    log.warning("RegisterThing with template %s for certificate %s denied: %s",
                                name, certificate.certificate_id, decision.reason)
                    raise AccessDeniedError("The pre-provisioning hook did not allow "
                                            "provisioning")
                try:
                    values.update(check_request_parameters(decision.parameter_overrides))
                except ParameterError as exc:
                    log.warning("pre-provisioning hook of %s answered bad overrides: %s",
                                name, exc.message)
                    raise AccessDeniedError("The pre-provisioning hook did not allow "
                                            "provisioning") from None
            thing_name, configuration = self._provision(parsed, values, certificate)
        except BaseException:
            self._release_token(row.token_hash)
            raise
        log.info("provisioned certificate %s as thing %s with template %s (claim %s)",
                 certificate.certificate_id, thing_name, name, claim_certificate_id)
        return RegisteredThing(thing_name, configuration)

    def _provision(self, template: Template, given: Mapping[str, str],
                   certificate: CertificateRecord) -> tuple[str | None, dict[str, str]]:
        cert = x509.load_pem_x509_certificate(certificate.certificate_pem.encode("ascii"))
        values = resolve_parameters(template, given,
                                    certificate_parameters(cert, certificate.certificate_id))
        plan = plan_provisioning(template, values)
        self._executor.apply(plan, certificate.certificate_id)
        return (None if plan.thing is None else plan.thing.thing_name,
                dict(plan.device_configuration))

    # -- ownership tokens -----------------------------------------------------------

    def _new_token(self, certificate_id: str, claim_certificate_id: str) -> str:
        token = new_token()
        now = self._now()
        with self._store.transaction() as uow:
            uow.provisioning.insert_token(OwnershipTokenRow(
                token_hash(token), certificate_id, claim_certificate_id, now,
                now + self._token_lifetime, None))
        return token

    def _spend_token(self, token: str, claim_certificate_id: str) -> OwnershipTokenRow:
        digest = token_hash(token)
        now = self._now()
        with self._store.transaction() as uow:
            row = uow.provisioning.get_token(digest)
            if row is None or row.claim_certificate_id != claim_certificate_id:
                raise OwnershipTokenError("The certificate ownership token is not valid.")
            if row.expires_at <= now:
                raise OwnershipTokenError("The certificate ownership token has expired.")
            if not uow.provisioning.use_token(digest, now):
                raise OwnershipTokenError(
                    "The certificate ownership token has already been used.")
        return row

    def _release_token(self, digest: str) -> None:
        try:
            with self._store.transaction() as uow:
                uow.provisioning.release_token(digest)
        except Exception:
            log.exception("could not release an ownership token")

    def _check_claim(self, claim_certificate_id: str) -> ProvisioningClaimRow | None:
        with self._store.transaction(readonly=True) as uow:
            claim = uow.provisioning.get_claim(claim_certificate_id)
        if claim is not None and claim.expiration <= self._now():
            raise AccessDeniedError("The provisioning claim has expired")
        return claim

    def sweep_expired(self) -> int:
        """Forget expired ownership tokens; delete the certificates of those never used
        that are still ``PENDING_ACTIVATION`` and attached to nothing. Returns how many
        tokens were forgotten."""
        now = self._now()
        with self._store.transaction(readonly=True) as uow:
            expired = uow.provisioning.expired_tokens(now, limit=SWEEP_BATCH)
        for row in expired:
            if row.used_at is None:
                self._discard_certificate(row.certificate_id)
        with self._store.transaction() as uow:
            return uow.provisioning.delete_tokens([row.token_hash for row in expired])

    def _discard_certificate(self, certificate_id: str, *, force: bool = False) -> None:
        identity = self._identity
        try:
            record = identity.describe_certificate(certificate_id)
            if record.status is CertificateStatus.ACTIVE and force:
                identity.update_certificate(certificate_id, CertificateStatus.INACTIVE)
            elif record.status is not CertificateStatus.PENDING_ACTIVATION and not force:
                return
            identity.delete_certificate(certificate_id, force_delete=force)
        except RegistryError as exc:
            log.info("certificate %s left in place: %s", certificate_id, exc.message)

    # -- JITP / JITR ----------------------------------------------------------------

    def register_on_first_connection(self, certificate_der: bytes
                                     ) -> AutoRegistration | None:
        """Auto-register a certificate the broker does not know (or that is still
        ``PENDING_ACTIVATION``): JITP when its CA has a template, else JITR.

        Returns ``None`` when the certificate cannot be auto-registered (no registered
        CA with auto-registration signed it, or it is in another status); the caller
        then refuses the connection. Never raises for a bad certificate.
        """
        try:
            cert = x509.load_der_x509_certificate(certificate_der)
        except ValueError:
            return None
        certificate_id = hashlib.sha256(certificate_der).hexdigest()
        record = self._certificate_or_none(certificate_id)
        ca: CaCertificateRecord | None = None
        if record is None:
            try:
                record, ca = self._identity.auto_register_certificate(
                    cert_to_pem(cert).decode("ascii"))
                log.info("certificate %s auto-registered (PENDING_ACTIVATION) through CA %s",
                         certificate_id, ca.certificate_id)
            except RegistryAlreadyExists:
                record = self._certificate_or_none(certificate_id)
            except RegistryError as exc:
                log.info("certificate %s not auto-registered: %s", certificate_id, exc.message)
                return None
        if record is None or record.status is not CertificateStatus.PENDING_ACTIVATION or (
                record.ca_certificate_id is None):
            return None
        if ca is None:
            try:
                ca = self._identity.describe_ca_certificate(record.ca_certificate_id)
            except RegistryError:
                return None
            if ca.status is not CaCertificateStatus.ACTIVE or (
                    ca.auto_registration_status is not AutoRegistrationStatus.ENABLE):
                return None
        config = ca.registration_config
        outcome = AutoRegistrationOutcome.REGISTERED
        if config is not None and (config.template_body or config.template_name):
            outcome = self._just_in_time_provision(cert, record, ca)
        return AutoRegistration(outcome, record.certificate_id, ca.certificate_id,
                                self._account.account_id, record.creation_date)

    def _just_in_time_provision(self, cert: x509.Certificate, record: CertificateRecord,
                                ca: CaCertificateRecord) -> AutoRegistrationOutcome:
        config = ca.registration_config
        assert config is not None
        try:
            if config.template_name:
                template, parsed = self._load(config.template_name)
                if template.template_type is not TemplateType.JITP:
                    raise InvalidRequestError(f"The provisioning template "
                                              f"{config.template_name} is not a JITP template")
            else:
                parsed = parse_template(config.template_body or "", TemplateType.JITP)
            values = resolve_parameters(parsed, {},
                                        certificate_parameters(cert, record.certificate_id))
            plan = plan_provisioning(parsed, values)
            self._executor.apply(plan, record.certificate_id)
        except (ProvisioningError, RegistryError) as exc:
            log.warning("JITP of certificate %s (CA %s) failed: %s", record.certificate_id,
                        ca.certificate_id, exc)
            return AutoRegistrationOutcome.PROVISIONING_FAILED
        log.info("JITP provisioned certificate %s (CA %s)%s", record.certificate_id,
                 ca.certificate_id, "" if plan.thing is None else f" as {plan.thing.thing_name}")
        return AutoRegistrationOutcome.PROVISIONED

    def _certificate_or_none(self, certificate_id: str) -> CertificateRecord | None:
        try:
            return self._identity.describe_certificate(certificate_id)
        except RegistryNotFound:
            return None

    def close(self) -> None:
        """Release the hook client's workers."""
        close = getattr(self._hook_client, "close", None)
        if callable(close):
            close()
