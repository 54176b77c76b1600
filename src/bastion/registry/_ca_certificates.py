"""CA certificates and the registration code: the CA half of
:class:`~bastion.registry.IdentityService`.

CA registration proves possession of the CA key the AWS way: the caller fetches the
registration code (GetRegistrationCode), has the CA sign a *verification certificate*
whose subject CN is that code, and submits both (RegisterCACertificate). ``SNI_ONLY``
mode needs no verification certificate.

Bastion's own CA is itself registered as a CA certificate (``ACTIVE``) the first time it
issues something, or at start-up through :meth:`CaOperations.ensure_authority_registered`,
so that "is the issuing CA active?" is one rule for every certificate. Deactivating it
stops every certificate it issued from connecting; it cannot be deleted.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

from cryptography import x509

from bastion.account import Account
from bastion.clock import Clock
from bastion.pki import cert_to_pem, certificate_id
from bastion.store import CaCertificateRow, ConflictError, Store, UnitOfWork

from ..events import EventSink
from ._authority import CertificateAuthority
from ._errors import (
    CertificateStateError,
    CertificateValidationError,
    InvalidRequestError,
    LimitExceededError,
    RegistrationCodeValidationError,
    RegistryError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from ._events import CaCertificateDeleted, CaCertificateRegistered, CaCertificateStatusChanged
from ._model import (
    AutoRegistrationStatus,
    CaCertificateRecord,
    CaCertificateStatus,
    CertificateMode,
    CertificateStatus,
    Page,
    RegistrationConfig,
)
from ._names import check_certificate_id, check_page_size
from ._service import ServiceBase
from ._x509 import (
    check_certificate,
    check_validity,
    common_name,
    is_ca,
    is_signed_by,
    load_certificate,
    name_hash,
)

MAX_CAS_PER_SUBJECT: Final = 10
REGISTRATION_CODE_KEY: Final = "registration_code"


class CaOperations(ServiceBase):
    """Registration code and CA certificates (the base of IdentityService).

    :param authority: Bastion's CA, needed to issue certificates; without it issuing
        fails with InternalFailureException.
    Other parameters: see :class:`~bastion.registry._service.ServiceBase`.
    :raises TypeError: ``authority`` is not a :class:`CertificateAuthority`.
    """

    __slots__ = ("_authority",)

    def __init__(
        self,
        store: Store,
        *,
        authority: CertificateAuthority | None = None,
        account: Account | None = None,
        publish: EventSink | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(store, account=account, publish=publish, clock=clock)
        if authority is not None and not isinstance(authority, CertificateAuthority):
            raise TypeError("authority must be a CertificateAuthority")
        self._authority = authority

    # -- registration code ----------------------------------------------------------

    def get_registration_code(self) -> str:
        """GetRegistrationCode: the 64-hex code to put in verification certificates;
        created on first use and stable until deleted."""
        now = self._now()
        with self._change() as (uow, _events):
            code = uow.settings.get(REGISTRATION_CODE_KEY)
            if code is None:
                code = secrets.token_hex(32)
                uow.settings.put(REGISTRATION_CODE_KEY, code, now)
        return code

    def delete_registration_code(self) -> None:
        """DeleteRegistrationCode: the next GetRegistrationCode makes a new one."""
        with self._change() as (uow, _events):
            uow.settings.delete(REGISTRATION_CODE_KEY)

    # -- CA certificates ------------------------------------------------------------

    def register_ca_certificate(
        self,
        ca_certificate: str,
        verification_certificate: str | None = None,
        *,
        set_as_active: bool = False,
        allow_auto_registration: bool = False,
        certificate_mode: CertificateMode | str = CertificateMode.DEFAULT,
        registration_config: RegistrationConfig | None = None,
    ) -> CaCertificateRecord:
        """RegisterCACertificate.

        In ``DEFAULT`` mode the verification certificate must have the registration code
        as its subject CN and be signed by the CA's key; ``SNI_ONLY`` needs none.

        :raises CertificateValidationError: a certificate is malformed, expired, weak, the
            CA certificate is not a CA, or the verification certificate is not signed by it.
        :raises RegistrationCodeValidationError: the verification certificate's CN is not
            the current registration code (or there is none).
        :raises InvalidRequestError: ``DEFAULT`` mode without a verification certificate,
            or a bad mode.
        :raises ResourceAlreadyExistsError: the CA is already registered.
        :raises LimitExceededError: 10 CAs with the same subject are already registered.
        """
        mode = parse_enum(CertificateMode, certificate_mode, "certificateMode")
        if registration_config is not None and not isinstance(
            registration_config, RegistrationConfig
        ):
            raise TypeError("registration_config must be a RegistrationConfig")
        now = self._now()
        ca = load_certificate(ca_certificate, "CA certificate", CertificateValidationError)
        if not is_ca(ca):
            raise CertificateValidationError(
                "The CA certificate is not a CA certificate (basicConstraints CA:TRUE missing)"
            )
        check_certificate(ca, now, "CA certificate", CertificateValidationError)
        verification = None
        if mode is CertificateMode.DEFAULT:
            if verification_certificate is None:
                raise InvalidRequestError(
                    "A verification certificate is required to register a CA in DEFAULT mode"
                )
            verification = load_certificate(
                verification_certificate, "verification certificate", CertificateValidationError
            )
        status = CaCertificateStatus.ACTIVE if set_as_active else CaCertificateStatus.INACTIVE
        row = CaCertificateRow(
            ca_certificate_id=certificate_id(ca),
            status=status,
            auto_registration_status=(
                AutoRegistrationStatus.ENABLE
                if allow_auto_registration
                else AutoRegistrationStatus.DISABLE
            ),
            certificate_mode=mode,
            certificate_pem=cert_to_pem(ca).decode("ascii"),
            subject_hash=name_hash(ca.subject),
            owned_by=self._account.account_id,
            customer_version=1,
            generation_id=str(uuid.uuid4()),
            not_before=ca.not_valid_before_utc,
            not_after=ca.not_valid_after_utc,
            registration_config=_registration_config(registration_config),
            creation_date=now,
            last_modified_date=now,
        )
        with self._change() as (uow, events):
            if verification is not None:
                self._check_verification(uow, ca, verification, now)
            existing = uow.ca_certificates.get(row.ca_certificate_id)
            if existing is not None:
                raise ResourceAlreadyExistsError(
                    "The CA certificate is already registered",
                    resource_id=row.ca_certificate_id,
                    resource_arn=self._ca_certificate(existing).certificate_arn,
                )
            if len(uow.ca_certificates.with_subject(row.subject_hash)) >= MAX_CAS_PER_SUBJECT:
                raise LimitExceededError(
                    f"At most {MAX_CAS_PER_SUBJECT} CA certificates with the same subject "
                    "can be registered"
                )
            self._insert_ca(uow, row)
            events.append(CaCertificateRegistered(row.ca_certificate_id, status))
        return self._ca_certificate(row)

    def ensure_authority_registered(self) -> CaCertificateRecord:
        """Register Bastion's own CA as an ``ACTIVE`` CA certificate unless it already is
        (in whatever status an operator has since given it).

        :raises RegistryError: no authority was configured.
        """
        now = self._now()
        with self._change() as (uow, events):
            row = self._authority_row(uow, now, events)
        return self._ca_certificate(row)

    def describe_ca_certificate(self, certificate_id: str) -> CaCertificateRecord:
        """DescribeCACertificate.

        :raises ResourceNotFoundError: no such CA certificate.
        """
        ident = check_certificate_id(certificate_id)
        with self._read() as uow:
            return self._ca_certificate(require_ca(uow, ident))

    def list_ca_certificates(
        self,
        *,
        ascending_order: bool = False,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[CaCertificateRecord]:
        """ListCACertificates, by creation date (newest first unless ``ascending_order``).

        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.ca_certificates.list_page(
                ascending=ascending_order, limit=limit, token=next_token
            )
        return [self._ca_certificate(row) for row in rows], token

    def update_ca_certificate(
        self,
        certificate_id: str,
        *,
        new_status: CaCertificateStatus | str | None = None,
        new_auto_registration_status: AutoRegistrationStatus | str | None = None,
        registration_config: RegistrationConfig | None = None,
        remove_auto_registration: bool = False,
    ) -> None:
        """UpdateCACertificate: status, auto-registration flag, registration config.

        :raises ResourceNotFoundError: no such CA certificate.
        :raises InvalidRequestError: an unknown status value.
        """
        ident = check_certificate_id(certificate_id)
        status = None if new_status is None else parse_enum(CaCertificateStatus, new_status, "newStatus")
        auto = (
            None
            if new_auto_registration_status is None
            else parse_enum(
                AutoRegistrationStatus,
                new_auto_registration_status,
                "newAutoRegistrationStatus",
            )
        )
        if registration_config is not None and not isinstance(
            registration_config, RegistrationConfig
        ):
            raise TypeError("registration_config must be a RegistrationConfig")
        now = self._now()
        with self._change() as (uow, events):
            current = require_ca(uow, ident, for_update=True)
            old_status = CaCertificateStatus(current.status)
            config: Mapping[str, Any] | None = current.registration_config
            if registration_config is not None:
                config = _registration_config(registration_config)
            if remove_auto_registration:
                config = None
            uow.ca_certificates.update(
                ident,
                status=status or old_status,
                auto_registration_status=auto or current.auto_registration_status,
                registration_config=config,
                now=now,
            )
            if status is not None and status is not old_status:
                events.append(CaCertificateStatusChanged(ident, old_status, status))

    def delete_ca_certificate(self, certificate_id: str) -> None:
        """DeleteCACertificate.

        :raises ResourceNotFoundError: no such CA certificate.
        :raises CertificateStateError: the CA is ``ACTIVE``.
        :raises InvalidRequestError: it is Bastion's own CA.
        """
        ident = check_certificate_id(certificate_id)
        with self._change() as (uow, events):
            current = require_ca(uow, ident, for_update=True)
            if current.status == CaCertificateStatus.ACTIVE:
                raise CertificateStateError(
                    "The CA certificate must be deactivated (INACTIVE) before it is deleted"
                )
            if self._authority is not None and ident == self._authority.certificate_id:
                raise InvalidRequestError("Bastion's own CA certificate cannot be deleted")
            uow.ca_certificates.delete(ident)
            events.append(CaCertificateDeleted(ident))

    # -- internals ------------------------------------------------------------------

    def _require_authority(self) -> CertificateAuthority:
        if self._authority is None:
            raise RegistryError("Bastion has no certificate authority configured")
        return self._authority

    def _authority_row(
        self, uow: UnitOfWork, now: datetime, events: list[object]
    ) -> CaCertificateRow:
        authority = self._require_authority()
        existing = uow.ca_certificates.get(authority.certificate_id)
        if existing is not None:
            return existing
        cert = authority.certificate
        row = CaCertificateRow(
            ca_certificate_id=authority.certificate_id,
            status=CaCertificateStatus.ACTIVE,
            auto_registration_status=AutoRegistrationStatus.DISABLE,
            certificate_mode=CertificateMode.DEFAULT,
            certificate_pem=cert_to_pem(cert).decode("ascii"),
            subject_hash=name_hash(cert.subject),
            owned_by=self._account.account_id,
            customer_version=1,
            generation_id=str(uuid.uuid4()),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            registration_config=None,
            creation_date=now,
            last_modified_date=now,
        )
        self._insert_ca(uow, row)
        events.append(CaCertificateRegistered(row.ca_certificate_id, CaCertificateStatus.ACTIVE))
        return row

    def _check_verification(
        self, uow: UnitOfWork, ca: x509.Certificate, verification: x509.Certificate, now: datetime
    ) -> None:
        code = uow.settings.get(REGISTRATION_CODE_KEY)
        if code is None:
            raise RegistrationCodeValidationError(
                "There is no registration code; call GetRegistrationCode first"
            )
        if common_name(verification.subject) != code:
            raise RegistrationCodeValidationError(
                "The verification certificate's common name is not the registration code"
            )
        if not is_signed_by(verification, ca):
            raise CertificateValidationError(
                "The verification certificate is not signed by the CA certificate's key"
            )
        check_validity(verification, now, "verification certificate", CertificateValidationError)

    def _insert_ca(self, uow: UnitOfWork, row: CaCertificateRow) -> None:
        try:
            uow.ca_certificates.insert(row)
        except ConflictError:
            raise ResourceAlreadyExistsError(
                "The CA certificate is already registered", resource_id=row.ca_certificate_id
            ) from None


def require_ca(uow: UnitOfWork, ident: str, *, for_update: bool = False) -> CaCertificateRow:
    row = uow.ca_certificates.get(ident, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"The CA certificate {ident} does not exist")
    return row


_E = TypeVar("_E", CertificateStatus, CaCertificateStatus, AutoRegistrationStatus, CertificateMode)


def parse_enum(kind: type[_E], value: object, what: str) -> _E:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a {kind.__name__} or str, not {type(value).__name__}")
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidRequestError(f"{what} {value!r} is not one of {allowed}") from None


def _registration_config(config: RegistrationConfig | None) -> dict[str, str] | None:
    if config is None:
        return None
    values = {
        "templateBody": config.template_body,
        "roleArn": config.role_arn,
        "templateName": config.template_name,
    }
    return {key: value for key, value in values.items() if value is not None}
