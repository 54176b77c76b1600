"""IdentityService: device certificates, CA certificates, the registration code, and
principal resolution for the broker.

Theory of operation
-------------------
Certificates enter the registry four ways, each ending in a row keyed by the AWS
certificate id (lowercase hex SHA-256 of the DER):

* CreateKeysAndCertificate — Bastion generates an RSA-2048 key pair, its CA signs the
  certificate, and the private key is returned once and never stored;
* CreateCertificateFromCsr — the caller keeps its key; the CSR must carry a valid
  self-signature (SHA-256/384/512) and an RSA ≥ 2048 or EC P-256/384/521 key; the
  certificate carries the CSR's whole subject and its DNS/IP/URI/e-mail alternative names
  (the MQTT ``$aws/certificates/create-from-csr`` topic goes through the same code);
* RegisterCertificate — a certificate signed by a *registered* CA (``DEFAULT`` mode),
  which must be ``ACTIVE``;
* RegisterCertificateWithoutCA — ``SNI_ONLY`` mode, no CA involved.

CA certificates and the registration code are handled by the base class,
:class:`._ca_certificates.CaOperations`.

:meth:`IdentityService.resolve_principal` is what the broker calls on CONNECT; see
:class:`~bastion.registry.PrincipalRecord`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bastion.pki import (
    PublicKey,
    cert_to_pem,
    certificate_id,
    issue_device_certificate,
    issue_requested_certificate,
)
from bastion.store import CaCertificateRow, CertificateRow, ConflictError, PolicyTarget, UnitOfWork

from ._arns import ACCESS_KEY, CERT, ROLE_ALIAS_TARGET
from ._authority import CertificateAuthority
from ._ca_certificates import CaOperations, parse_enum
from ._certificate_states import (
    DELETABLE_STATUSES,
    REGISTRATION_STATUSES,
    SETTABLE_STATUSES,
    may_transition,
)
from ._errors import (
    CertificateStateError,
    CertificateValidationError,
    DeleteConflictError,
    InvalidRequestError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from ._events import (
    CertificateDeleted,
    CertificateRegistered,
    CertificateStatusChanged,
    PolicyAttachmentChanged,
)
from ._model import (
    AutoRegistrationStatus,
    CaCertificateRecord,
    CaCertificateStatus,
    CertificateMode,
    CertificateRecord,
    CertificateStatus,
    EffectivePolicy,
    KeyPair,
    KeysAndCertificate,
    Page,
    PrincipalRecord,
    Validity,
)
from ._names import check_certificate_id, check_page_size
from ._x509 import (
    check_certificate,
    check_public_key,
    is_signed_by,
    load_certificate,
    load_csr,
    name_hash,
    requested_alternative_names,
)

ISSUED_COMMON_NAME: Final = "AWS IoT Certificate"
"""Subject CN of certificates issued by CreateKeysAndCertificate (as AWS IoT does)."""

ISSUED_NOT_AFTER: Final = datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
"""notAfter of issued certificates (as AWS IoT does)."""

GENERATED_RSA_BITS: Final = 2048


class IdentityService(CaOperations):
    """Device certificates, CA certificates, the registration code, and principal
    resolution.

    ``IdentityService(store, authority=..., account=..., publish=..., clock=...)``:
    ``authority`` (Bastion's CA, e.g. :meth:`CertificateAuthority.from_datadir`) is needed
    to issue certificates; the other parameters are those of every registry service.
    """

    __slots__ = ()

    # -- device certificates: creation ----------------------------------------------

    def create_keys_and_certificate(self, *, set_as_active: bool = False) -> KeysAndCertificate:
        """CreateKeysAndCertificate: a fresh RSA-2048 key pair and a certificate for it
        from Bastion's CA (subject ``CN=AWS IoT Certificate``, valid until 2049).

        :raises RegistryError: no authority is configured (InternalFailureException).
        """
        authority = self._require_authority()
        key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_RSA_BITS)
        cert = self._issue(authority, ISSUED_COMMON_NAME, key.public_key())
        record = self._store_issued(cert, set_as_active)
        return KeysAndCertificate(
            certificate_arn=record.certificate_arn,
            certificate_id=record.certificate_id,
            certificate_pem=record.certificate_pem,
            key_pair=KeyPair(
                public_key=key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode("ascii"),
                private_key=key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                ).decode("ascii"),
            ),
        )

    def create_certificate_from_csr(
        self, certificate_signing_request: str, *, set_as_active: bool = False
    ) -> CertificateRecord:
        """CreateCertificateFromCsr: Bastion's CA certifies the CSR's key. The certificate's
        subject is the CSR's whole subject, every RDN in order (``CN=AWS IoT Certificate``
        when the CSR's subject is empty); its subject alternative names are the CSR's DNS,
        IP, URI and e-mail names (other kinds are dropped). The same CSR twice gives two
        distinct certificates.

        :raises InvalidRequestError: the CSR is malformed, its signature is invalid, or its
            key or signature hash is not accepted.
        :raises RegistryError: no authority is configured (InternalFailureException).
        """
        csr = load_csr(certificate_signing_request, InvalidRequestError)
        cert = self._issue_for_csr(self._require_authority(), csr)
        return self._store_issued(cert, set_as_active)

    def register_certificate(
        self,
        certificate_pem: str,
        ca_certificate_pem: str | None = None,
        *,
        status: CertificateStatus | str | None = None,
    ) -> CertificateRecord:
        """RegisterCertificate: a device certificate signed by a registered CA. Without
        ``ca_certificate_pem`` the CA is found among the registered ones by the
        certificate's issuer name and signature.

        :param status: ``ACTIVE`` or ``INACTIVE`` (default).
        :raises CertificateValidationError: the certificate is malformed, expired or not
            yet valid, weak, not signed by the CA, or the CA is not registered.
        :raises CertificateStateError: the CA is not ``ACTIVE``.
        :raises InvalidRequestError: a bad ``status``.
        :raises ResourceAlreadyExistsError: the certificate is already registered.
        """
        new_status = _registration_status(status)
        now = self._now()
        cert = load_certificate(certificate_pem, "certificate", CertificateValidationError)
        check_certificate(cert, now, "certificate", CertificateValidationError)
        given_ca = (
            None
            if ca_certificate_pem is None
            else load_certificate(ca_certificate_pem, "CA certificate", CertificateValidationError)
        )
        with self._change() as (uow, events):
            ca_row = self._issuing_ca(uow, cert, given_ca)
            row = self._certificate_row(
                cert, new_status, ca_row.ca_certificate_id, CertificateMode(ca_row.certificate_mode), now
            )
            self._insert_certificate(uow, row)
            events.append(CertificateRegistered(row.certificate_id, new_status))
        return self._certificate(row)

    def register_certificate_without_ca(
        self, certificate_pem: str, *, status: CertificateStatus | str | None = None
    ) -> CertificateRecord:
        """RegisterCertificateWithoutCA (``SNI_ONLY`` mode).

        :param status: ``ACTIVE`` or ``INACTIVE`` (default).
        :raises CertificateValidationError: malformed, expired or not yet valid, or weak.
        :raises InvalidRequestError: a bad ``status``.
        :raises ResourceAlreadyExistsError: the certificate is already registered.
        """
        new_status = _registration_status(status)
        now = self._now()
        cert = load_certificate(certificate_pem, "certificate", CertificateValidationError)
        check_certificate(cert, now, "certificate", CertificateValidationError)
        row = self._certificate_row(cert, new_status, None, CertificateMode.SNI_ONLY, now)
        with self._change() as (uow, events):
            self._insert_certificate(uow, row)
            events.append(CertificateRegistered(row.certificate_id, new_status))
        return self._certificate(row)

    # -- device certificates: reading and changing ----------------------------------

    def describe_certificate(self, certificate_id: str) -> CertificateRecord:
        """DescribeCertificate.

        :raises ResourceNotFoundError: no such certificate.
        """
        ident = check_certificate_id(certificate_id)
        with self._read() as uow:
            return self._certificate(_require_certificate(uow, ident))

    def list_certificates(
        self,
        *,
        ascending_order: bool = False,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[CertificateRecord]:
        """ListCertificates, by creation date (newest first unless ``ascending_order``).

        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.certificates.list_page(
                ascending=ascending_order, limit=limit, token=next_token
            )
        return [self._certificate(row) for row in rows], token

    def list_certificates_by_ca(
        self,
        ca_certificate_id: str,
        *,
        ascending_order: bool = False,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[CertificateRecord]:
        """ListCertificatesByCA.

        :raises InvalidRequestError: bad id, ``max_results`` or ``next_token``.
        """
        ident = check_certificate_id(ca_certificate_id)
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.certificates.list_page(
                ca_certificate_id=ident, ascending=ascending_order, limit=limit, token=next_token
            )
        return [self._certificate(row) for row in rows], token

    def update_certificate(self, certificate_id: str, new_status: CertificateStatus | str) -> None:
        """UpdateCertificate: change the status (see :mod:`._certificate_states`).

        :raises ResourceNotFoundError: no such certificate.
        :raises InvalidRequestError: ``new_status`` is unknown or not settable.
        :raises CertificateStateError: the transition is not allowed (e.g. from REVOKED).
        """
        ident = check_certificate_id(certificate_id)
        status = parse_enum(CertificateStatus, new_status, "newStatus")
        if status not in SETTABLE_STATUSES:
            raise InvalidRequestError(
                f"newStatus {status} cannot be set; use ACTIVE, INACTIVE or REVOKED"
            )
        now = self._now()
        with self._change() as (uow, events):
            current = _require_certificate(uow, ident, for_update=True)
            old = CertificateStatus(current.status)
            if not may_transition(old, status):
                raise CertificateStateError(
                    f"The certificate status cannot change from {old} to {status}"
                )
            if old is status:
                return
            uow.certificates.set_status(ident, status, now)
            events.append(CertificateStatusChanged(ident, old, status))

    def delete_certificate(self, certificate_id: str, *, force_delete: bool = False) -> None:
        """DeleteCertificate. ``force_delete`` also detaches the policies still attached;
        a certificate attached to a thing is never deleted.

        :raises ResourceNotFoundError: no such certificate.
        :raises CertificateStateError: the certificate is ACTIVE (or in transfer).
        :raises DeleteConflictError: things, or (without ``force_delete``) policies, are
            attached to it.
        """
        ident = check_certificate_id(certificate_id)
        with self._change() as (uow, events):
            current = _require_certificate(uow, ident, for_update=True)
            if CertificateStatus(current.status) not in DELETABLE_STATUSES:
                # AWS's words (CertificateStateException).
                raise CertificateStateError(
                    f"Certificate must be deactivated (not ACTIVE) before deletion. Id: {ident}"
                )
            arn = self._account.arn(f"{CERT}/{ident}")
            if uow.thing_principals.things_of(CERT, ident):
                raise DeleteConflictError(f"Things must be detached before deletion (arn: {arn})")
            target = PolicyTarget(CERT, ident)
            if uow.policies.names_attached_to(target):
                if not force_delete:
                    raise DeleteConflictError(
                        f"Certificate policies must be detached before deletion (arn: {arn})")
                arn = self._target_arn(target)
                for name in uow.policies.detach_all_from(target):
                    events.append(PolicyAttachmentChanged(name, arn, False))
            uow.certificates.delete(ident)
            events.append(CertificateDeleted(ident))

    # -- the broker's view ----------------------------------------------------------

    def resolve_principal(
        self, certificate_id: str, *, client_id: str | None = None
    ) -> PrincipalRecord | None:
        """Everything the broker needs to authorize a connection presenting this
        certificate, read in one transaction; ``None`` for an unknown certificate.

        :param client_id: the MQTT client id; when it names a thing attached to the
            certificate, that thing and the policies of its groups are included.
        """
        ident = check_certificate_id(certificate_id)
        with self._read() as uow:
            row = uow.certificates.get(ident)
            if row is None:
                return None
            ca_row = (
                None
                if row.ca_certificate_id is None
                else uow.ca_certificates.get(row.ca_certificate_id)
            )
            thing_names = tuple(uow.thing_principals.things_of(CERT, ident))
            thing = None
            if client_id is not None and client_id in thing_names:
                found = uow.things.get(client_id)
                thing = None if found is None else self._thing(found)
            policies = self._effective_policies(
                uow, ident, None if thing is None else thing.thing_name
            )
        return PrincipalRecord(
            certificate_id=ident,
            certificate_arn=self._account.arn(f"{CERT}/{ident}"),
            status=CertificateStatus(row.status),
            certificate_mode=CertificateMode(row.certificate_mode),
            ca_certificate_id=row.ca_certificate_id,
            ca_status=None if ca_row is None else CaCertificateStatus(ca_row.status),
            validity=Validity(row.not_before, row.not_after),
            thing_names=thing_names,
            thing=thing,
            policies=policies,
        )

    def resolve_key_policies(self, access_key_id: str, role_alias: str = ""
                             ) -> tuple[EffectivePolicy, ...]:
        """The policies in force for a connection signed with an access key (MQTT over
        WebSocket): those attached to the key (``accesskey/<id>``) or, for temporary
        credentials, to the role alias they were issued for; each once, by name."""
        target = (PolicyTarget(ROLE_ALIAS_TARGET, role_alias) if role_alias
                  else PolicyTarget(ACCESS_KEY, access_key_id))
        with self._read() as uow:
            return self._dedupe(uow.policies.attached_to([target]))

    # -- Entry points of fleet provisioning, claims, JITP and JITR ---------------------
    # (bastion.provisioning). They differ from the public operations above only in the
    # status a certificate starts in, and in the lifetime of issued claim certificates.

    def issue_keys_and_certificate(
        self,
        *,
        status: CertificateStatus,
        not_after: datetime | None = None,
        common_name: str = ISSUED_COMMON_NAME,
    ) -> KeysAndCertificate:
        """CreateKeysAndCertificate with a given initial status (fleet provisioning issues
        ``PENDING_ACTIVATION`` certificates) and, for claim certificates, an early
        ``not_after``.

        :raises InvalidRequestError: ``status`` is not ACTIVE, INACTIVE or
            PENDING_ACTIVATION.
        :raises RegistryError: no authority is configured (InternalFailureException).
        """
        _check_issued_status(status)
        authority = self._require_authority()
        key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_RSA_BITS)
        cert = self._issue(authority, common_name, key.public_key(),
                           not_after or ISSUED_NOT_AFTER)
        record = self._store_issued(cert, status)
        return KeysAndCertificate(
            certificate_arn=record.certificate_arn,
            certificate_id=record.certificate_id,
            certificate_pem=record.certificate_pem,
            key_pair=KeyPair(
                public_key=key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode("ascii"),
                private_key=key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                ).decode("ascii"),
            ),
        )

    def issue_certificate_from_csr(
        self, certificate_signing_request: str, *, status: CertificateStatus
    ) -> CertificateRecord:
        """CreateCertificateFromCsr with a given initial status (fleet provisioning issues
        ``PENDING_ACTIVATION`` certificates).

        :raises InvalidRequestError: the CSR is refused (see
            :meth:`create_certificate_from_csr`), or a bad ``status``.
        :raises RegistryError: no authority is configured (InternalFailureException).
        """
        _check_issued_status(status)
        csr = load_csr(certificate_signing_request, InvalidRequestError)
        cert = self._issue_for_csr(self._require_authority(), csr)
        return self._store_issued(cert, status)

    def auto_register_certificate(
        self, certificate_pem: str
    ) -> tuple[CertificateRecord, CaCertificateRecord]:
        """Register, ``PENDING_ACTIVATION``, a certificate presented on a first connection
        (JITR and JITP): it must be signed by a registered ``ACTIVE`` CA whose
        auto-registration is enabled. Returns the certificate and that CA.

        :raises CertificateValidationError: malformed, expired, weak, or not signed by a
            registered CA.
        :raises CertificateStateError: the CA is not ACTIVE, or its auto-registration is
            disabled.
        :raises ResourceAlreadyExistsError: the certificate is already registered.
        """
        now = self._now()
        cert = load_certificate(certificate_pem, "certificate", CertificateValidationError)
        check_certificate(cert, now, "certificate", CertificateValidationError)
        status = CertificateStatus.PENDING_ACTIVATION
        with self._change() as (uow, events):
            ca_row = self._issuing_ca(uow, cert, None)
            if ca_row.auto_registration_status != AutoRegistrationStatus.ENABLE:
                raise CertificateStateError(
                    f"Auto-registration is disabled for CA {ca_row.ca_certificate_id}"
                )
            row = self._certificate_row(
                cert, status, ca_row.ca_certificate_id, CertificateMode(ca_row.certificate_mode), now
            )
            self._insert_certificate(uow, row)
            events.append(CertificateRegistered(row.certificate_id, status))
        return self._certificate(row), self._ca_certificate(ca_row)


    # -- internals ------------------------------------------------------------------

    # -- internals ------------------------------------------------------------------

    def _issue(
        self,
        authority: CertificateAuthority,
        name: str,
        public_key: PublicKey,
        not_after: datetime = ISSUED_NOT_AFTER,
    ) -> x509.Certificate:
        cert, _ = issue_device_certificate(
            authority.certificate,
            authority.private_key,
            common_name=name,
            public_key=public_key,
            not_after=not_after,
        )
        return cert

    def _issue_for_csr(
        self, authority: CertificateAuthority, csr: x509.CertificateSigningRequest
    ) -> x509.Certificate:
        """The certificate CreateCertificateFromCsr issues: the CSR's whole subject (``CN=AWS
        IoT Certificate`` when it is empty) and its DNS, IP, URI and e-mail alternative names.

        :raises InvalidRequestError: the CSR's key is not accepted.
        """
        public_key = check_public_key(
            csr.public_key(), "certificate signing request", InvalidRequestError
        )
        subject = csr.subject if csr.subject.rdns else x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, ISSUED_COMMON_NAME)])
        return issue_requested_certificate(
            authority.certificate,
            authority.private_key,
            subject=subject,
            public_key=public_key,
            alternative_names=requested_alternative_names(csr),
            not_after=ISSUED_NOT_AFTER,
        )

    def _store_issued(
        self, cert: x509.Certificate, set_as_active: bool | CertificateStatus
    ) -> CertificateRecord:
        if isinstance(set_as_active, CertificateStatus):
            status = set_as_active
        else:
            status = CertificateStatus.ACTIVE if set_as_active else CertificateStatus.INACTIVE
        now = self._now()
        with self._change() as (uow, events):
            ca_row = self._authority_row(uow, now, events)
            row = self._certificate_row(
                cert, status, ca_row.ca_certificate_id, CertificateMode.DEFAULT, now
            )
            self._insert_certificate(uow, row)
            events.append(CertificateRegistered(row.certificate_id, status))
        return self._certificate(row)

    def _issuing_ca(
        self, uow: UnitOfWork, cert: x509.Certificate, given: x509.Certificate | None
    ) -> CaCertificateRow:
        """The registered, active CA that signed ``cert``."""
        if given is not None:
            row = uow.ca_certificates.get(certificate_id(given))
            if row is None:
                raise CertificateValidationError("The CA certificate is not registered")
            candidates = [row]
        else:
            candidates = uow.ca_certificates.with_subject(name_hash(cert.issuer))
        signers = [
            row for row in candidates if is_signed_by(cert, _load_pem(row.certificate_pem))
        ]
        if not signers:
            raise CertificateValidationError(
                "The certificate is not signed by the CA certificate"
                if given is not None
                else "The certificate is not signed by a registered CA certificate"
            )
        for row in signers:
            if row.status == CaCertificateStatus.ACTIVE:
                return row
        raise CertificateStateError(
            f"The CA certificate {signers[0].ca_certificate_id} is not ACTIVE"
        )

    def _certificate_row(
        self,
        cert: x509.Certificate,
        status: CertificateStatus,
        ca_certificate_id: str | None,
        mode: CertificateMode,
        now: datetime,
    ) -> CertificateRow:
        return CertificateRow(
            certificate_id=certificate_id(cert),
            ca_certificate_id=ca_certificate_id,
            status=status,
            certificate_mode=mode,
            certificate_pem=cert_to_pem(cert).decode("ascii"),
            owned_by=self._account.account_id,
            previous_owned_by=None,
            customer_version=1,
            generation_id=str(uuid.uuid4()),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            creation_date=now,
            last_modified_date=now,
        )

    def _insert_certificate(self, uow: UnitOfWork, row: CertificateRow) -> None:
        arn = self._account.arn(f"{CERT}/{row.certificate_id}")
        if uow.certificates.get(row.certificate_id) is not None:
            raise ResourceAlreadyExistsError(
                "The certificate is already registered",
                resource_id=row.certificate_id,
                resource_arn=arn,
            )
        try:
            uow.certificates.insert(row)
        except ConflictError:
            raise ResourceAlreadyExistsError(
                "The certificate is already registered",
                resource_id=row.certificate_id,
                resource_arn=arn,
            ) from None


def _require_certificate(
    uow: UnitOfWork, ident: str, *, for_update: bool = False
) -> CertificateRow:
    row = uow.certificates.get(ident, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"The certificate {ident} does not exist")
    return row


def _load_pem(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def _registration_status(status: CertificateStatus | str | None) -> CertificateStatus:
    if status is None:
        return CertificateStatus.INACTIVE
    value = parse_enum(CertificateStatus, status, "status")
    if value not in REGISTRATION_STATUSES:
        raise InvalidRequestError(f"A certificate cannot be registered with status {value}")
    return value


_ISSUED_STATUSES: Final = frozenset(
    {CertificateStatus.ACTIVE, CertificateStatus.INACTIVE, CertificateStatus.PENDING_ACTIVATION}
)


def _check_issued_status(status: CertificateStatus) -> None:
    if not isinstance(status, CertificateStatus) or status not in _ISSUED_STATUSES:
        raise InvalidRequestError(f"A certificate cannot be issued with status {status}")
