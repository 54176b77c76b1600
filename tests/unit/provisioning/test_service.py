"""ProvisioningService on both backends: templates and versions, ownership tokens (expiry,
replay, binding to the claim) with a fake clock, hooks, claims, plans applied with
rollback, and JITP/JITR."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from bastion.pki import cert_to_pem, create_root_ca, issue_device_certificate
from bastion.provisioning import (
    CLAIM_POLICY_PREFIX,
    AccessDeniedError,
    AutoRegistrationOutcome,
    DeleteConflictError,
    InvalidRequestError,
    OwnershipTokenError,
    ParameterError,
    PreProvisioningHook,
    ProvisioningFailedError,
    ProvisioningService,
    ResourceAlreadyExistsError,
    ResourceConflictsError,
    ResourceNotFoundError,
    TemplateError,
    TemplateType,
    VersionsLimitExceededError,
)
from bastion.registry import (
    CertificateStatus,
    IdentityService,
    PolicyService,
    RegistrationConfig,
    RegistryService,
)
from bastion.registry import ResourceNotFoundError as RegistryNotFound
from support.clock import ManualClock

from .conftest import FakeHook, fleet_body

CLAIM = "c" * 64


# -- templates and versions ------------------------------------------------------------------

def test_template_lifecycle(service: ProvisioningService, clock: ManualClock) -> None:
    created = service.create_provisioning_template("t1", fleet_body(), description="d")
    assert created.template_arn == "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/t1"
    assert (created.default_version_id, created.enabled) == (1, False)  # disabled, as AWS
    assert created.template_type is TemplateType.FLEET_PROVISIONING
    with pytest.raises(ResourceAlreadyExistsError):
        service.create_provisioning_template("t1", fleet_body())

    clock.advance(timedelta(seconds=1))
    v2 = service.create_provisioning_template_version("t1", fleet_body(DeviceConfiguration={}),
                                                      set_as_default=True)
    assert (v2.version_id, v2.is_default_version) == (2, True)
    described = service.describe_provisioning_template("t1")
    assert described.default_version_id == 2
    assert json.loads(described.template_body)["DeviceConfiguration"] == {}
    service.update_provisioning_template("t1", enabled=True, default_version_id=1,
                                         description="new")
    described = service.describe_provisioning_template("t1")
    assert (described.enabled, described.default_version_id, described.description) == (
        True, 1, "new")
    assert described.last_modified_date > described.creation_date

    with pytest.raises(DeleteConflictError):
        service.delete_provisioning_template_version("t1", 1)  # the default
    service.delete_provisioning_template_version("t1", 2)
    for _ in range(4):
        service.create_provisioning_template_version("t1", fleet_body())
    with pytest.raises(VersionsLimitExceededError):
        service.create_provisioning_template_version("t1", fleet_body())
    versions, _ = service.list_provisioning_template_versions("t1")
    assert [v.version_id for v in versions] == [1, 3, 4, 5, 6]  # ids are never reused
    assert [v.is_default_version for v in versions] == [True, False, False, False, False]
    assert service.describe_provisioning_template_version("t1", 3).template_body

    service.create_provisioning_template("t0", fleet_body())
    page, token = service.list_provisioning_templates(max_results=1)
    assert [t.template_name for t in page] == ["t0"] and token
    page, token = service.list_provisioning_templates(next_token=token)
    assert [t.template_name for t in page] == ["t1"] and token is None

    service.delete_provisioning_template("t1")
    with pytest.raises(ResourceNotFoundError):
        service.describe_provisioning_template("t1")


@pytest.mark.parametrize(("call", "error"), [
    (lambda s: s.create_provisioning_template("bad name", fleet_body()), InvalidRequestError),
    (lambda s: s.create_provisioning_template("x" * 37, fleet_body()), InvalidRequestError),
    (lambda s: s.create_provisioning_template("t", "{}"), TemplateError),
    (lambda s: s.create_provisioning_template("t", fleet_body(), template_type="BULK"),
     InvalidRequestError),
    (lambda s: s.create_provisioning_template(
        "t", fleet_body(), template_type="JITP",
        pre_provisioning_hook={"targetArn": "https://h/x"}), InvalidRequestError),
    (lambda s: s.create_provisioning_template(
        "t", fleet_body(), pre_provisioning_hook={"targetArn": "arn:aws:lambda:x"}),
     InvalidRequestError),
    (lambda s: s.update_provisioning_template("missing", enabled=True), ResourceNotFoundError),
    (lambda s: s.describe_provisioning_template_version("missing", 1), ResourceNotFoundError),
    (lambda s: s.list_provisioning_templates(max_results=0), InvalidRequestError),
    (lambda s: s.list_provisioning_templates(next_token="garbage"), InvalidRequestError),
], ids=["name-pattern", "name-length", "bad-body", "bad-type", "hook-on-jitp",
        "lambda-hook", "update-missing", "version-of-missing", "page-size", "page-token"])
def test_template_requests_that_are_refused(
        service: ProvisioningService, call: Callable[[ProvisioningService], object],
        error: type[Exception]) -> None:
    with pytest.raises(error):
        call(service)


def test_a_jitp_template_named_by_a_ca_cannot_be_deleted(
        service: ProvisioningService, identity: IdentityService) -> None:
    service.create_provisioning_template("jitp", fleet_body(), template_type="JITP")
    ca, _ = create_root_ca("JITP CA for delete")
    identity.register_ca_certificate(cert_to_pem(ca).decode(), certificate_mode="SNI_ONLY",
                                     registration_config=RegistrationConfig(
                                         template_name="jitp"))
    with pytest.raises(DeleteConflictError):
        service.delete_provisioning_template("jitp")


# -- ownership tokens ------------------------------------------------------------------------

def test_register_thing_provisions_and_activates(
        service: ProvisioningService, fleet: Callable[..., str], identity: IdentityService,
        registry: RegistryService, policies: PolicyService) -> None:
    template = fleet()
    owned = service.create_keys_and_certificate_for_claim(claim_certificate_id=CLAIM)
    assert owned.private_key and "PRIVATE KEY" in owned.private_key
    assert identity.describe_certificate(owned.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)
    result = service.register_thing(template, certificate_ownership_token=(
        owned.certificate_ownership_token), parameters={"Serial": "1"},
        claim_certificate_id=CLAIM)
    assert result.thing_name == "dev-1"
    assert result.device_configuration == {"greeting": "hello 1"}
    record = identity.describe_certificate(owned.certificate_id)
    assert record.status is CertificateStatus.ACTIVE
    assert registry.describe_thing("dev-1").attributes == {"serial": "1"}
    attached, _ = policies.list_attached_policies(record.certificate_arn)
    assert len(attached) == 1


def test_a_token_is_single_use(service: ProvisioningService, fleet: Callable[..., str]) -> None:
    template = fleet()
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    service.register_thing(template, certificate_ownership_token=token,
                           parameters={"Serial": "1"}, claim_certificate_id=CLAIM)
    with pytest.raises(OwnershipTokenError, match="already been used") as raised:
        service.register_thing(template, certificate_ownership_token=token,
                               parameters={"Serial": "2"}, claim_certificate_id=CLAIM)
    assert raised.value.rejection() == (400, "InvalidCertificateOwnershipToken")


def test_a_token_expires_after_an_hour(service: ProvisioningService, fleet: Callable[..., str],
                                       clock: ManualClock) -> None:
    template = fleet()
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    clock.advance(timedelta(minutes=59, seconds=59))
    fresh = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    clock.advance(timedelta(seconds=1))
    with pytest.raises(OwnershipTokenError, match="expired"):
        service.register_thing(template, certificate_ownership_token=token,
                               parameters={"Serial": "1"}, claim_certificate_id=CLAIM)
    service.register_thing(template, certificate_ownership_token=fresh,
                           parameters={"Serial": "2"}, claim_certificate_id=CLAIM)


@pytest.mark.parametrize(("token", "message"), [
    (None, "cannot be empty"), ("", "cannot be empty"), (7, "not valid"),
    ("made-up", "not valid"),
])
def test_bad_tokens(service: ProvisioningService, fleet: Callable[..., str], token: object,
                    message: str) -> None:
    template = fleet()
    with pytest.raises(OwnershipTokenError, match=message):
        service.register_thing(template, certificate_ownership_token=token,
                               parameters={"Serial": "1"}, claim_certificate_id=CLAIM)


def test_a_token_belongs_to_its_claim_certificate(service: ProvisioningService,
                                                  fleet: Callable[..., str]) -> None:
    template = fleet()
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    with pytest.raises(OwnershipTokenError, match="not valid"):
        service.register_thing(template, certificate_ownership_token=token,
                               parameters={"Serial": "1"}, claim_certificate_id="d" * 64)


def test_a_failed_registration_releases_the_token(
        service: ProvisioningService, fleet: Callable[..., str]) -> None:
    template = fleet()
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    with pytest.raises(ParameterError, match="Missing parameters: Serial"):
        service.register_thing(template, certificate_ownership_token=token,
                               parameters={}, claim_certificate_id=CLAIM)
    assert service.register_thing(template, certificate_ownership_token=token,
                                  parameters={"Serial": "9"},
                                  claim_certificate_id=CLAIM).thing_name == "dev-9"


def test_unused_certificates_are_deleted_when_their_token_expires(
        service: ProvisioningService, identity: IdentityService, clock: ManualClock) -> None:
    unused = service.create_keys_and_certificate_for_claim(claim_certificate_id=CLAIM)
    clock.advance(timedelta(hours=1, seconds=1))
    assert service.sweep_expired() == 1
    with pytest.raises(RegistryNotFound):
        identity.describe_certificate(unused.certificate_id)


def test_a_disabled_or_jitp_template_cannot_register(
        service: ProvisioningService, fleet: Callable[..., str]) -> None:
    fleet("off", enabled=False)
    service.create_provisioning_template("jitp", fleet_body(), template_type="JITP",
                                         enabled=True)
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    for name, message in (("off", "disabled"), ("jitp", "JITP")):
        with pytest.raises(InvalidRequestError, match=message):
            service.register_thing(name, certificate_ownership_token=token,
                                   parameters={"Serial": "1"}, claim_certificate_id=CLAIM)


def test_create_from_csr(service: ProvisioningService, fleet: Callable[..., str],
                         identity: IdentityService) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-dev")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    owned = service.create_certificate_from_csr_for_claim(csr, claim_certificate_id=CLAIM)
    assert owned.private_key is None
    assert identity.describe_certificate(owned.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)
    for bad in (None, "", "not a csr"):
        with pytest.raises(InvalidRequestError):
            service.create_certificate_from_csr_for_claim(bad, claim_certificate_id=CLAIM)


# -- hooks -----------------------------------------------------------------------------------

def hooked(fleet: Callable[..., str]) -> str:
    return fleet("hooked", pre_provisioning_hook=PreProvisioningHook("https://hook.example/p"))


def test_a_hook_allows_and_overrides(service: ProvisioningService, fleet: Callable[..., str],
                                     hook: FakeHook) -> None:
    template = hooked(fleet)
    hook.answer = {"allowProvisioning": True, "parameterOverrides": {"Serial": "hooked"}}
    owned = service.create_keys_and_certificate_for_claim(claim_certificate_id=CLAIM)
    result = service.register_thing(template, certificate_ownership_token=(
        owned.certificate_ownership_token), parameters={"Serial": "1", "Extra": "x"},
        claim_certificate_id=CLAIM, client_id="client-1")
    assert result.thing_name == "dev-hooked"
    (call,) = hook.calls
    assert call["parameters"] == {"Serial": "1", "Extra": "x"}
    assert (call["claimCertificateId"], call["certificateId"], call["clientId"]) == (
        CLAIM, owned.certificate_id, "client-1")
    assert call["templateArn"].endswith(":provisioningtemplate/hooked")
    assert hook.timeouts == [5.0]


@pytest.mark.parametrize("setup", [
    lambda h: setattr(h, "answer", {"allowProvisioning": False}),
    lambda h: h.hang(),
    lambda h: setattr(h, "status", 500),
    lambda h: setattr(h, "answer", {"allowProvisioning": True,
                                    "parameterOverrides": {"AWS::IoT::Certificate::Id": "x"}}),
], ids=["denies", "hangs", "errors", "overrides-a-builtin"])
def test_a_hook_that_does_not_allow_denies(
        service: ProvisioningService, fleet: Callable[..., str], hook: FakeHook,
        identity: IdentityService, registry: RegistryService,
        setup: Callable[[FakeHook], None]) -> None:
    template = hooked(fleet)
    setup(hook)
    owned = service.create_keys_and_certificate_for_claim(claim_certificate_id=CLAIM)
    with pytest.raises(AccessDeniedError) as raised:
        service.register_thing(template, certificate_ownership_token=(
            owned.certificate_ownership_token), parameters={"Serial": "1"},
            claim_certificate_id=CLAIM)
    assert raised.value.rejection() == (403, "AccessDenied")
    assert identity.describe_certificate(owned.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)
    with pytest.raises(RegistryNotFound):
        registry.describe_thing("dev-1")


def test_a_template_without_hook_never_calls_one(
        service: ProvisioningService, fleet: Callable[..., str], hook: FakeHook) -> None:
    template = fleet()
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    service.register_thing(template, certificate_ownership_token=token,
                           parameters={"Serial": "1"}, claim_certificate_id=CLAIM)
    assert hook.calls == []


# -- claims ----------------------------------------------------------------------------------

def test_create_provisioning_claim(service: ProvisioningService, fleet: Callable[..., str],
                                   identity: IdentityService, policies: PolicyService,
                                   clock: ManualClock) -> None:
    template = fleet("claimed")
    fleet("other")
    claim = service.create_provisioning_claim(template)
    assert claim.expiration == clock.now() + timedelta(minutes=5)
    cert = x509.load_pem_x509_certificate(claim.certificate_pem.encode())
    assert cert.not_valid_after_utc == claim.expiration
    record = identity.describe_certificate(claim.certificate_id)
    assert record.status is CertificateStatus.ACTIVE
    attached, _ = policies.list_attached_policies(record.certificate_arn)
    assert [p.policy_name for p in attached] == [CLAIM_POLICY_PREFIX + template]
    document = policies.get_policy(CLAIM_POLICY_PREFIX + template).policy_document
    assert "provisioning-templates/claimed/provision" in document
    assert "things" not in document

    # A claim is for its template only, and expires.
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=claim.certificate_id).certificate_ownership_token
    with pytest.raises(AccessDeniedError, match="claimed"):
        service.register_thing("other", certificate_ownership_token=token,
                               parameters={"Serial": "1"},
                               claim_certificate_id=claim.certificate_id)
    clock.advance(timedelta(minutes=5))
    with pytest.raises(AccessDeniedError, match="expired"):
        service.create_keys_and_certificate_for_claim(claim_certificate_id=claim.certificate_id)


def test_no_claims_for_jitp_templates(service: ProvisioningService) -> None:
    service.create_provisioning_template("jitp", fleet_body(), template_type="JITP")
    with pytest.raises(InvalidRequestError):
        service.create_provisioning_claim("jitp")
    with pytest.raises(ResourceNotFoundError):
        service.create_provisioning_claim("missing")


# -- applying plans --------------------------------------------------------------------------

def groups_body(override: str | None = None) -> str:
    body = json.loads(fleet_body())
    body["Resources"]["thing"]["Properties"]["ThingGroups"] = ["existing-group"]
    if override:
        body["Resources"]["thing"]["OverrideSettings"] = {"AttributePayload": override}
    return json.dumps(body)


def register(service: ProvisioningService, template: str, serial: str = "1") -> str | None:
    token = service.create_keys_and_certificate_for_claim(
        claim_certificate_id=CLAIM).certificate_ownership_token
    return service.register_thing(template, certificate_ownership_token=token,
                                  parameters={"Serial": serial},
                                  claim_certificate_id=CLAIM).thing_name


def test_a_failing_step_undoes_the_earlier_ones(
        service: ProvisioningService, fleet: Callable[..., str], registry: RegistryService,
        policies: PolicyService, identity: IdentityService) -> None:
    template = fleet(body=groups_body())  # the thing group does not exist
    owned = service.create_keys_and_certificate_for_claim(claim_certificate_id=CLAIM)
    with pytest.raises(ProvisioningFailedError) as raised:
        service.register_thing(template, certificate_ownership_token=(
            owned.certificate_ownership_token), parameters={"Serial": "1"},
            claim_certificate_id=CLAIM)
    assert (raised.value.aws_error_type, raised.value.http_status) == (
        "ResourceNotFoundException", 404)
    with pytest.raises(RegistryNotFound):
        registry.describe_thing("dev-1")
    assert policies.list_policies()[0] == []
    assert identity.describe_certificate(owned.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)
    registry.create_thing_group("existing-group")
    assert register(service, template) == "dev-1"
    groups, _ = registry.list_thing_groups_for_thing("dev-1")
    assert [g.group_name for g in groups] == ["existing-group"]


@pytest.mark.parametrize(("override", "expected"), [
    (None, {"old": "1"}),
    ("DO_NOTHING", {"old": "1"}),
    ("REPLACE", {"serial": "1"}),
    ("MERGE", {"old": "1", "serial": "1"}),
])
def test_an_existing_thing_follows_the_override_settings(
        service: ProvisioningService, fleet: Callable[..., str], registry: RegistryService,
        override: str | None, expected: dict[str, str]) -> None:
    registry.create_thing_group("existing-group")
    registry.create_thing("dev-1", attributes={"old": "1"})
    template = fleet(body=groups_body(override))
    assert register(service, template) == "dev-1"
    assert dict(registry.describe_thing("dev-1").attributes) == expected


def test_a_fail_override_refuses_an_existing_thing(
        service: ProvisioningService, fleet: Callable[..., str],
        registry: RegistryService) -> None:
    registry.create_thing_group("existing-group")
    registry.create_thing("dev-1", attributes={"old": "1"})
    template = fleet(body=groups_body("FAIL"))
    with pytest.raises(ResourceConflictsError):
        register(service, template)


def test_a_named_policy_must_exist(service: ProvisioningService, fleet: Callable[..., str],
                                   policies: PolicyService) -> None:
    body = json.loads(fleet_body())
    body["Resources"]["policy"] = {"Type": "AWS::IoT::Policy",
                                   "Properties": {"PolicyName": "shared"}}
    template = fleet(body=json.dumps(body))
    with pytest.raises(ProvisioningFailedError):
        register(service, template)
    policies.create_policy("shared", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}))
    register(service, template, "2")
    register(service, template, "3")  # the same policy serves every device


# -- JITP / JITR -------------------------------------------------------------------------------

def ca_with(identity: IdentityService, config: RegistrationConfig | None, *,
            auto: bool = True) -> tuple[x509.Certificate, object, str]:
    cert, key = create_root_ca("Factory")
    record = identity.register_ca_certificate(
        cert_to_pem(cert).decode(), certificate_mode="SNI_ONLY", set_as_active=True,
        allow_auto_registration=auto, registration_config=config)
    return cert, key, record.certificate_id


def device_der(ca: x509.Certificate, key: object, name: str) -> bytes:
    cert, _ = issue_device_certificate(ca, key, common_name=name)  # type: ignore[call-overload]
    return cert.public_bytes(serialization.Encoding.DER)  # type: ignore[no-any-return]


JITP_BODY = json.dumps({
    "Parameters": {"AWS::IoT::Certificate::CommonName": {}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing",
                  "Properties": {"ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"}}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                                       "Status": "ACTIVE"}},
    },
})


def test_jitr_registers_pending_activation(service: ProvisioningService,
                                           identity: IdentityService) -> None:
    ca, key, ca_id = ca_with(identity, None)
    der = device_der(ca, key, "jitr-1")
    outcome = service.register_on_first_connection(der)
    assert outcome is not None
    assert outcome.outcome is AutoRegistrationOutcome.REGISTERED
    assert outcome.ca_certificate_id == ca_id
    record = identity.describe_certificate(outcome.certificate_id)
    assert record.status is CertificateStatus.PENDING_ACTIVATION
    event = outcome.registered_event(record.creation_date)
    assert set(event) == {"certificateId", "caCertificateId", "timestamp", "certificateStatus",
                          "awsAccountId", "certificateRegistrationTimestamp"}
    again = service.register_on_first_connection(der)  # still pending: the event again
    assert again is not None and again.outcome is AutoRegistrationOutcome.REGISTERED


@pytest.mark.parametrize("by_name", [False, True], ids=["template-body", "template-name"])
def test_jitp_provisions(service: ProvisioningService, identity: IdentityService,
                         registry: RegistryService, by_name: bool) -> None:
    if by_name:
        service.create_provisioning_template("jitp", JITP_BODY, template_type="JITP")
        config = RegistrationConfig(template_name="jitp")
    else:
        config = RegistrationConfig(template_body=JITP_BODY)
    ca, key, _ = ca_with(identity, config)
    outcome = service.register_on_first_connection(device_der(ca, key, "robot-7"))
    assert outcome is not None and outcome.outcome is AutoRegistrationOutcome.PROVISIONED
    assert identity.describe_certificate(outcome.certificate_id).status is (
        CertificateStatus.ACTIVE)
    assert registry.describe_thing("robot-7")


def test_jitp_failure_leaves_the_certificate_pending(
        service: ProvisioningService, identity: IdentityService) -> None:
    body = json.loads(JITP_BODY)
    body["Parameters"]["AWS::IoT::Certificate::Country"] = {}
    ca, key, _ = ca_with(identity, RegistrationConfig(template_body=json.dumps(body)))
    outcome = service.register_on_first_connection(device_der(ca, key, "no-country"))
    assert outcome is not None
    assert outcome.outcome is AutoRegistrationOutcome.PROVISIONING_FAILED
    assert identity.describe_certificate(outcome.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)


def test_no_auto_registration_without_the_ca_allowing_it(
        service: ProvisioningService, identity: IdentityService) -> None:
    ca, key, _ = ca_with(identity, None, auto=False)
    der = device_der(ca, key, "closed")
    assert service.register_on_first_connection(der) is None
    unregistered, unregistered_key = create_root_ca("Unregistered")
    assert service.register_on_first_connection(
        device_der(unregistered, unregistered_key, "rogue")) is None
    assert service.register_on_first_connection(b"not a certificate") is None
