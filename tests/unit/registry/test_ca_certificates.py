"""CA registration (verification-certificate flow), CA status, and RegisterCertificate
(+WithoutCA) against registered CAs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bastion.pki import cert_to_pem, certificate_id, create_root_ca, issue_device_certificate
from bastion.registry import (
    AutoRegistrationStatus,
    CaCertificateDeleted,
    CaCertificateRegistered,
    CaCertificateStatus,
    CaCertificateStatusChanged,
    CertificateAuthority,
    CertificateMode,
    CertificateStateError,
    CertificateStatus,
    CertificateValidationError,
    IdentityService,
    InvalidRequestError,
    LimitExceededError,
    RegistrationCodeValidationError,
    RegistrationConfig,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)

from .conftest import EventLog, ExternalCa


def _register(identity: IdentityService, ca: ExternalCa, *, active: bool = True) -> str:
    code = identity.get_registration_code()
    verification = ca.issue(code)
    record = identity.register_ca_certificate(ca.pem, verification, set_as_active=active)
    return record.certificate_id


# -- registration code ------------------------------------------------------------------


def test_registration_code_is_stable_until_deleted(identity: IdentityService) -> None:
    code = identity.get_registration_code()
    assert re.fullmatch(r"[0-9a-f]{64}", code)
    assert identity.get_registration_code() == code
    identity.delete_registration_code()
    assert identity.get_registration_code() != code


# -- CA registration --------------------------------------------------------------------


def test_register_ca_with_verification_certificate(identity: IdentityService,
                                                   external_ca: ExternalCa,
                                                   events: EventLog) -> None:
    code = identity.get_registration_code()
    record = identity.register_ca_certificate(
        external_ca.pem,
        external_ca.issue(code),
        allow_auto_registration=True,
        registration_config=RegistrationConfig(template_body="{}", role_arn="arn:aws:iam::1:role/r"),
    )
    assert record.certificate_id == certificate_id(external_ca.cert)
    assert record.certificate_arn.endswith(f":cacert/{record.certificate_id}")
    assert record.status is CaCertificateStatus.INACTIVE
    assert record.auto_registration_status is AutoRegistrationStatus.ENABLE
    assert record.certificate_mode is CertificateMode.DEFAULT
    assert record.registration_config == RegistrationConfig("{}", "arn:aws:iam::1:role/r", None)
    assert identity.describe_ca_certificate(record.certificate_id) == record
    assert events.events == [
        CaCertificateRegistered(record.certificate_id, CaCertificateStatus.INACTIVE)
    ]
    with pytest.raises(ResourceAlreadyExistsError):
        identity.register_ca_certificate(external_ca.pem, external_ca.issue(code))


def test_verification_cn_must_be_the_registration_code(identity: IdentityService,
                                                       external_ca: ExternalCa) -> None:
    identity.get_registration_code()
    with pytest.raises(RegistrationCodeValidationError) as caught:
        identity.register_ca_certificate(external_ca.pem, external_ca.issue("0" * 64))
    assert caught.value.aws_error_type == "RegistrationCodeValidationException"
    assert caught.value.http_status == 400
    assert identity.list_ca_certificates() == ([], None)


def test_verification_needs_a_registration_code(identity: IdentityService,
                                                external_ca: ExternalCa) -> None:
    with pytest.raises(RegistrationCodeValidationError):
        identity.register_ca_certificate(external_ca.pem, external_ca.issue("a" * 64))


def test_verification_must_be_signed_by_the_ca_key(identity: IdentityService,
                                                   external_ca: ExternalCa,
                                                   other_ca: ExternalCa) -> None:
    code = identity.get_registration_code()
    # Issued by another CA entirely.
    with pytest.raises(CertificateValidationError, match="not signed"):
        identity.register_ca_certificate(external_ca.pem, other_ca.issue(code))
    # Forged: claims the CA as issuer, but is signed by another key.
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, code)]))
        .issuer_name(external_ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(other_ca.key, hashes.SHA256())
    )
    with pytest.raises(CertificateValidationError, match="not signed"):
        identity.register_ca_certificate(external_ca.pem, cert_to_pem(forged).decode())


def test_default_mode_needs_a_verification_certificate(identity: IdentityService,
                                                       external_ca: ExternalCa) -> None:
    with pytest.raises(InvalidRequestError):
        identity.register_ca_certificate(external_ca.pem)
    record = identity.register_ca_certificate(external_ca.pem, certificate_mode="SNI_ONLY")
    assert record.certificate_mode is CertificateMode.SNI_ONLY


def test_a_leaf_certificate_is_not_a_ca(identity: IdentityService,
                                        external_ca: ExternalCa) -> None:
    code = identity.get_registration_code()
    with pytest.raises(CertificateValidationError, match="not a CA"):
        identity.register_ca_certificate(external_ca.issue("leaf"), external_ca.issue(code))


@pytest.mark.parametrize("pem", ["", "garbage", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"],
                         ids=["empty", "garbage", "empty-pem"])
def test_malformed_ca_certificate(identity: IdentityService, pem: str) -> None:
    with pytest.raises(CertificateValidationError):
        identity.register_ca_certificate(pem, certificate_mode="SNI_ONLY")


def test_at_most_ten_cas_with_the_same_subject(identity: IdentityService) -> None:
    for _ in range(10):
        cert, _key = create_root_ca("Same Subject")
        identity.register_ca_certificate(cert_to_pem(cert).decode(), certificate_mode="SNI_ONLY")
    cert, _key = create_root_ca("Same Subject")
    with pytest.raises(LimitExceededError) as caught:
        identity.register_ca_certificate(cert_to_pem(cert).decode(), certificate_mode="SNI_ONLY")
    assert caught.value.http_status == 410


def test_ca_status_updates_and_deletion(identity: IdentityService, external_ca: ExternalCa,
                                        events: EventLog) -> None:
    ca_id = _register(identity, external_ca, active=True)
    events.clear()
    identity.update_ca_certificate(ca_id, new_status="INACTIVE",
                                   new_auto_registration_status=AutoRegistrationStatus.ENABLE)
    record = identity.describe_ca_certificate(ca_id)
    assert record.status is CaCertificateStatus.INACTIVE
    assert record.auto_registration_status is AutoRegistrationStatus.ENABLE
    assert events.events == [
        CaCertificateStatusChanged(ca_id, CaCertificateStatus.ACTIVE, CaCertificateStatus.INACTIVE)
    ]
    with pytest.raises(InvalidRequestError):
        identity.update_ca_certificate(ca_id, new_status="REVOKED")

    identity.update_ca_certificate(ca_id, new_status="ACTIVE")
    with pytest.raises(CertificateStateError):
        identity.delete_ca_certificate(ca_id)
    identity.update_ca_certificate(ca_id, new_status="INACTIVE")
    events.clear()
    identity.delete_ca_certificate(ca_id)
    assert events.events == [CaCertificateDeleted(ca_id)]
    with pytest.raises(ResourceNotFoundError):
        identity.describe_ca_certificate(ca_id)
    with pytest.raises(ResourceNotFoundError):
        identity.delete_ca_certificate(ca_id)


def test_bastions_own_ca_cannot_be_deleted(identity: IdentityService,
                                           authority: CertificateAuthority) -> None:
    record = identity.ensure_authority_registered()
    assert record.certificate_id == authority.certificate_id
    assert identity.ensure_authority_registered() == record
    identity.update_ca_certificate(record.certificate_id, new_status="INACTIVE")
    with pytest.raises(InvalidRequestError):
        identity.delete_ca_certificate(record.certificate_id)
    # Issuing does not silently re-activate a CA the operator deactivated.
    identity.create_keys_and_certificate()
    assert identity.describe_ca_certificate(record.certificate_id).status is (
        CaCertificateStatus.INACTIVE
    )


# -- RegisterCertificate ----------------------------------------------------------------


def test_register_certificate_with_a_registered_ca(identity: IdentityService,
                                                   external_ca: ExternalCa) -> None:
    ca_id = _register(identity, external_ca)
    pem = external_ca.issue("device-a")
    record = identity.register_certificate(pem, external_ca.pem, status="ACTIVE")
    assert record.ca_certificate_id == ca_id
    assert record.status is CertificateStatus.ACTIVE
    assert record.certificate_mode is CertificateMode.DEFAULT
    with pytest.raises(ResourceAlreadyExistsError) as caught:
        identity.register_certificate(pem, external_ca.pem)
    assert caught.value.resource_id == record.certificate_id

    # Without the CA's PEM the issuer is found among the registered CAs.
    other = identity.register_certificate(external_ca.issue("device-b"))
    assert other.ca_certificate_id == ca_id
    assert other.status is CertificateStatus.INACTIVE
    principal = identity.resolve_principal(record.certificate_id)
    assert principal is not None and principal.may_connect


def test_register_certificate_with_an_unregistered_ca_is_refused(
        identity: IdentityService, external_ca: ExternalCa) -> None:
    with pytest.raises(CertificateValidationError, match="not registered"):
        identity.register_certificate(external_ca.issue(), external_ca.pem)
    with pytest.raises(CertificateValidationError, match="registered CA"):
        identity.register_certificate(external_ca.issue())
    assert identity.list_certificates() == ([], None)


def test_register_certificate_with_an_inactive_ca_is_refused(
        identity: IdentityService, external_ca: ExternalCa) -> None:
    _register(identity, external_ca, active=False)
    with pytest.raises(CertificateStateError) as caught:
        identity.register_certificate(external_ca.issue(), external_ca.pem)
    assert caught.value.http_status == 406
    with pytest.raises(CertificateStateError):
        identity.register_certificate(external_ca.issue())


def test_register_certificate_not_signed_by_the_given_ca(
        identity: IdentityService, external_ca: ExternalCa, other_ca: ExternalCa) -> None:
    _register(identity, external_ca)
    with pytest.raises(CertificateValidationError, match="not signed"):
        identity.register_certificate(other_ca.issue(), external_ca.pem)


def test_register_expired_or_weak_certificates_is_refused(
        identity: IdentityService, external_ca: ExternalCa,
        rsa1024_key: rsa.RSAPrivateKey) -> None:
    _register(identity, external_ca)
    past = datetime.now(UTC) - timedelta(days=30)
    expired = external_ca.issue("old", not_before=past, not_after=past + timedelta(days=1))
    with pytest.raises(CertificateValidationError, match="expired"):
        identity.register_certificate(expired, external_ca.pem)
    weak, _ = issue_device_certificate(external_ca.cert, external_ca.key, common_name="weak",
                                       public_key=rsa1024_key.public_key())
    with pytest.raises(CertificateValidationError, match="1024"):
        identity.register_certificate(cert_to_pem(weak).decode(), external_ca.pem)


@pytest.mark.parametrize("status", ["REVOKED", "PENDING_TRANSFER", "nope"])
def test_register_certificate_status_must_be_active_or_inactive(
        identity: IdentityService, external_ca: ExternalCa, status: str) -> None:
    with pytest.raises(InvalidRequestError):
        identity.register_certificate_without_ca(external_ca.issue(), status=status)


def test_register_certificate_without_ca(identity: IdentityService,
                                         other_ca: ExternalCa) -> None:
    record = identity.register_certificate_without_ca(other_ca.issue("sni"), status="ACTIVE")
    assert record.ca_certificate_id is None
    assert record.certificate_mode is CertificateMode.SNI_ONLY
    principal = identity.resolve_principal(record.certificate_id)
    assert principal is not None
    assert principal.ca_status is None
    assert principal.may_connect


def test_deactivating_a_ca_stops_its_certificates(identity: IdentityService,
                                                  external_ca: ExternalCa) -> None:
    ca_id = _register(identity, external_ca)
    record = identity.register_certificate(external_ca.issue(), status="ACTIVE")
    principal = identity.resolve_principal(record.certificate_id)
    assert principal is not None and principal.may_connect
    identity.update_ca_certificate(ca_id, new_status=CaCertificateStatus.INACTIVE)
    principal = identity.resolve_principal(record.certificate_id)
    assert principal is not None
    assert principal.ca_status is CaCertificateStatus.INACTIVE
    assert not principal.may_connect
    identity.delete_ca_certificate(ca_id)
    principal = identity.resolve_principal(record.certificate_id)
    assert principal is not None and principal.ca_status is None and not principal.may_connect
