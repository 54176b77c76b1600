"""Device certificates: issuing, CSR checks, status transitions, deletion, listing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bastion.pki import certificate_id, load_pem_certificate
from bastion.registry import (
    CERTIFICATE_STATUS_TRANSITIONS,
    CaCertificateRegistered,
    CaCertificateStatus,
    CertificateAuthority,
    CertificateDeleted,
    CertificateMode,
    CertificateRecord,
    CertificateRegistered,
    CertificateStateError,
    CertificateStatus,
    CertificateStatusChanged,
    DeleteConflictError,
    IdentityService,
    InvalidRequestError,
    PolicyAttachmentChanged,
    PolicyService,
    RegistryError,
    RegistryService,
    ResourceNotFoundError,
)
from bastion.store import Store
from support.clock import ManualClock

from .conftest import EventLog, csr_pem

ALLOW_ALL = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}'


def test_create_keys_and_certificate(identity: IdentityService, authority: CertificateAuthority,
                                     events: EventLog) -> None:
    created = identity.create_keys_and_certificate(set_as_active=True)
    cert = load_pem_certificate(created.certificate_pem)
    assert created.certificate_id == certificate_id(cert)
    assert len(created.certificate_id) == 64
    assert created.certificate_arn == (
        f"arn:aws:iot:eu-west-1:111122223333:cert/{created.certificate_id}"
    )
    assert cert.subject.rfc4514_string() == "CN=AWS IoT Certificate"
    assert cert.issuer == authority.certificate.subject
    assert cert.not_valid_after_utc == datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    cert.verify_directly_issued_by(authority.certificate)

    private_key = serialization.load_pem_private_key(
        created.key_pair.private_key.encode(), password=None
    )
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert private_key.key_size == 2048
    assert private_key.public_key() == cert.public_key()
    assert created.key_pair.private_key not in repr(created)

    record = identity.describe_certificate(created.certificate_id)
    assert record.status is CertificateStatus.ACTIVE
    assert record.ca_certificate_id == authority.certificate_id
    assert record.certificate_mode is CertificateMode.DEFAULT
    assert record.validity.not_after == cert.not_valid_after_utc
    # Bastion's CA was registered on first use, ACTIVE.
    ca = identity.describe_ca_certificate(authority.certificate_id)
    assert ca.status is CaCertificateStatus.ACTIVE
    assert events.events == [
        CaCertificateRegistered(authority.certificate_id, CaCertificateStatus.ACTIVE),
        CertificateRegistered(created.certificate_id, CertificateStatus.ACTIVE),
    ]


def test_certificates_are_inactive_unless_asked(identity: IdentityService,
                                                ec_key: ec.EllipticCurvePrivateKey) -> None:
    record = identity.create_certificate_from_csr(csr_pem(ec_key))
    assert record.status is CertificateStatus.INACTIVE


def test_issuing_without_an_authority_is_an_internal_failure(store: Store) -> None:
    service = IdentityService(store)
    with pytest.raises(RegistryError) as caught:
        service.create_keys_and_certificate()
    assert caught.value.aws_error_type == "InternalFailureException"
    assert caught.value.http_status == 500


# -- CSR --------------------------------------------------------------------------------


def test_csr_with_rsa_2048_is_accepted(identity: IdentityService,
                                       rsa2048_key: rsa.RSAPrivateKey) -> None:
    record = identity.create_certificate_from_csr(csr_pem(rsa2048_key, "rsa-device"))
    cert = load_pem_certificate(record.certificate_pem)
    assert cert.public_key() == rsa2048_key.public_key()
    assert cert.subject.rfc4514_string() == "CN=rsa-device"


def test_csr_with_ec_p256_is_accepted(identity: IdentityService,
                                      ec_key: ec.EllipticCurvePrivateKey) -> None:
    record = identity.create_certificate_from_csr(csr_pem(ec_key), set_as_active=True)
    assert record.status is CertificateStatus.ACTIVE
    assert load_pem_certificate(record.certificate_pem).public_key() == ec_key.public_key()


def test_same_csr_twice_gives_two_certificates(identity: IdentityService,
                                               ec_key: ec.EllipticCurvePrivateKey) -> None:
    csr = csr_pem(ec_key)
    first = identity.create_certificate_from_csr(csr)
    second = identity.create_certificate_from_csr(csr)
    assert first.certificate_id != second.certificate_id


def test_csr_with_rsa_1024_is_refused(identity: IdentityService,
                                      rsa1024_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(InvalidRequestError, match="1024 bits"):
        identity.create_certificate_from_csr(csr_pem(rsa1024_key))
    assert identity.list_certificates() == ([], None)


def test_csr_on_an_unsupported_curve_is_refused(identity: IdentityService) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(InvalidRequestError, match="curve"):
        identity.create_certificate_from_csr(csr_pem(key))


def test_tampered_csr_is_refused(identity: IdentityService,
                                 ec_key: ec.EllipticCurvePrivateKey) -> None:
    csr = x509.load_pem_x509_csr(csr_pem(ec_key, "device-1").encode())
    der = csr.public_bytes(serialization.Encoding.DER)
    tampered_der = der.replace(b"device-1", b"device-2")
    assert tampered_der != der
    tampered = x509.load_der_x509_csr(tampered_der)  # still parses ...
    assert tampered.subject.rfc4514_string() == "CN=device-2"
    pem = tampered.public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(InvalidRequestError, match="signature"):  # ... but does not verify
        identity.create_certificate_from_csr(pem)


@pytest.mark.parametrize(
    "csr",
    ["", "not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
     "x" * 5000],
    ids=["empty", "text", "bad-base64-der", "too-long"],
)
def test_malformed_csr_is_refused(identity: IdentityService, csr: str) -> None:
    with pytest.raises(InvalidRequestError):
        identity.create_certificate_from_csr(csr)


# -- status transitions -----------------------------------------------------------------


def _force_status(store: Store, cert_id: str, status: CertificateStatus) -> None:
    """Put a certificate in a status the API cannot set (transfer, auto-registration)."""
    with store.transaction() as uow:
        uow.certificates.set_status(cert_id, status, datetime.now(UTC))


S = CertificateStatus
SETTABLE = {S.ACTIVE, S.INACTIVE, S.REVOKED}
# Written out independently of the implementation's table: (from, to) pairs UpdateCertificate
# accepts besides "no change". REVOKED and PENDING_TRANSFER allow nothing.
ALLOWED = {
    (S.ACTIVE, S.INACTIVE), (S.ACTIVE, S.REVOKED),
    (S.INACTIVE, S.ACTIVE), (S.INACTIVE, S.REVOKED),
    (S.PENDING_ACTIVATION, S.ACTIVE), (S.PENDING_ACTIVATION, S.INACTIVE),
    (S.PENDING_ACTIVATION, S.REVOKED),
    (S.REGISTER_INACTIVE, S.ACTIVE), (S.REGISTER_INACTIVE, S.INACTIVE),
    (S.REGISTER_INACTIVE, S.REVOKED),
}


def test_transition_table_matches_the_documented_rules() -> None:
    table = {(old, new) for old, news in CERTIFICATE_STATUS_TRANSITIONS.items() for new in news}
    assert table == ALLOWED


@pytest.mark.parametrize(
    ("current", "new"),
    list(itertools.product(CertificateStatus, CertificateStatus)),
    ids=lambda status: status.value,
)
def test_certificate_status_transition_table(
    identity: IdentityService, store: Store, events: EventLog,
    new_certificate: Callable[..., CertificateRecord],
    current: CertificateStatus, new: CertificateStatus,
) -> None:
    record = new_certificate(active=False)
    _force_status(store, record.certificate_id, current)
    events.clear()
    if new not in SETTABLE:
        with pytest.raises(InvalidRequestError):
            identity.update_certificate(record.certificate_id, new)
        expected = current
    elif new == current:
        identity.update_certificate(record.certificate_id, new)
        assert events.events == []
        expected = current
    elif (current, new) in ALLOWED:
        identity.update_certificate(record.certificate_id, new.value)
        assert events.events == [CertificateStatusChanged(record.certificate_id, current, new)]
        expected = new
    else:
        with pytest.raises(CertificateStateError) as caught:
            identity.update_certificate(record.certificate_id, new)
        assert caught.value.http_status == 406
        assert events.events == []
        expected = current
    assert identity.describe_certificate(record.certificate_id).status is expected


def test_revoked_is_final(identity: IdentityService,
                          new_certificate: Callable[..., CertificateRecord]) -> None:
    record = new_certificate(active=True)
    identity.update_certificate(record.certificate_id, CertificateStatus.REVOKED)
    for status in (CertificateStatus.ACTIVE, CertificateStatus.INACTIVE):
        with pytest.raises(CertificateStateError):
            identity.update_certificate(record.certificate_id, status)
    assert identity.describe_certificate(record.certificate_id).status is CertificateStatus.REVOKED


def test_status_changes_bump_the_customer_version(
        identity: IdentityService, new_certificate: Callable[..., CertificateRecord]) -> None:
    record = new_certificate(active=True)
    identity.update_certificate(record.certificate_id, "INACTIVE")
    updated = identity.describe_certificate(record.certificate_id)
    assert updated.customer_version == record.customer_version + 1
    assert updated.generation_id != record.generation_id


@pytest.mark.parametrize("status", ["active", "DELETED", ""], ids=["lowercase", "unknown", "empty"])
def test_unknown_status_is_an_invalid_request(
        identity: IdentityService, new_certificate: Callable[..., CertificateRecord],
        status: str) -> None:
    record = new_certificate()
    with pytest.raises(InvalidRequestError):
        identity.update_certificate(record.certificate_id, status)


def test_unknown_and_malformed_certificate_ids(identity: IdentityService) -> None:
    with pytest.raises(ResourceNotFoundError):
        identity.describe_certificate("ab" * 32)
    with pytest.raises(ResourceNotFoundError):
        identity.update_certificate("ab" * 32, CertificateStatus.INACTIVE)
    with pytest.raises(InvalidRequestError):
        identity.describe_certificate("xyz")
    assert identity.resolve_principal("ab" * 32) is None


# -- deletion ---------------------------------------------------------------------------


def test_delete_certificate_rules(
    identity: IdentityService, registry: RegistryService, policies: PolicyService,
    events: EventLog, new_certificate: Callable[..., CertificateRecord],
) -> None:
    record = new_certificate(active=True)
    cert_id, arn = record.certificate_id, record.certificate_arn
    with pytest.raises(CertificateStateError) as caught:
        identity.delete_certificate(cert_id)
    assert caught.value.aws_error_type == "CertificateStateException"

    identity.update_certificate(cert_id, CertificateStatus.INACTIVE)
    registry.create_thing("dev")
    registry.attach_thing_principal("dev", arn)
    policies.create_policy("p", ALLOW_ALL)
    policies.attach_policy("p", arn)

    for force in (False, True):  # a thing attachment blocks even a forced delete
        with pytest.raises(DeleteConflictError) as conflict:
            identity.delete_certificate(cert_id, force_delete=force)
        assert conflict.value.http_status == 409
    registry.detach_thing_principal("dev", arn)

    with pytest.raises(DeleteConflictError, match="policies"):
        identity.delete_certificate(cert_id)
    events.clear()
    identity.delete_certificate(cert_id, force_delete=True)
    assert events.events == [
        PolicyAttachmentChanged("p", arn, False),
        CertificateDeleted(cert_id),
    ]
    with pytest.raises(ResourceNotFoundError):
        identity.describe_certificate(cert_id)
    with pytest.raises(ResourceNotFoundError):
        identity.delete_certificate(cert_id)
    assert policies.list_targets_for_policy("p") == ([], None)


def test_revoked_certificates_can_be_deleted(
        identity: IdentityService, new_certificate: Callable[..., CertificateRecord]) -> None:
    record = new_certificate(active=True)
    identity.update_certificate(record.certificate_id, CertificateStatus.REVOKED)
    identity.delete_certificate(record.certificate_id)


def test_certificates_pending_transfer_cannot_be_deleted(
        identity: IdentityService, store: Store,
        new_certificate: Callable[..., CertificateRecord]) -> None:
    record = new_certificate(active=False)
    _force_status(store, record.certificate_id, CertificateStatus.PENDING_TRANSFER)
    with pytest.raises(CertificateStateError):
        identity.delete_certificate(record.certificate_id)


# -- listing ----------------------------------------------------------------------------


def test_list_certificates_pages_by_creation_date(
        identity: IdentityService, clock: ManualClock,
        new_certificate: Callable[..., CertificateRecord]) -> None:
    created = []
    for _ in range(5):
        created.append(new_certificate().certificate_id)
        clock.advance(timedelta(seconds=1))
    twins = [new_certificate().certificate_id for _ in range(2)]  # same instant: id breaks ties
    expected = created + sorted(twins)

    def collect(ascending: bool) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            page, token = identity.list_certificates(
                ascending_order=ascending, max_results=2, next_token=token
            )
            ids.extend(record.certificate_id for record in page)
            if token is None:
                return ids

    assert collect(True) == expected
    assert collect(False) == expected[::-1]
    _, ascending_token = identity.list_certificates(ascending_order=True, max_results=2)
    with pytest.raises(InvalidRequestError):  # a token of the other order is refused
        identity.list_certificates(ascending_order=False, next_token=ascending_token)


def test_list_certificates_by_ca(identity: IdentityService, authority: CertificateAuthority,
                                 new_certificate: Callable[..., CertificateRecord]) -> None:
    record = new_certificate()
    page, _ = identity.list_certificates_by_ca(authority.certificate_id)
    assert [r.certificate_id for r in page] == [record.certificate_id]
    assert identity.list_certificates_by_ca("cd" * 32) == ([], None)


def test_csr_without_common_name_keeps_its_subject(
        identity: IdentityService, ec_key: ec.EllipticCurvePrivateKey) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]))
        .sign(ec_key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    record = identity.create_certificate_from_csr(pem)
    subject = load_pem_certificate(record.certificate_pem).subject
    assert subject.rfc4514_string() == "O=Acme"  # the whole subject, no CN added
