"""The ACM analog (imported server certificates) and domain configurations.

Theory of operation
-------------------
ImportCertificate checks the certificate, key and chain (:mod:`._x509`), seals the key
with the master key (associated data: the certificate's id, so a sealed key cannot be
moved to another row) and stores the three under an ACM-shaped ARN
(``arn:aws:acm:<region>:<account>:certificate/<uuid>``). Importing again with that ARN
replaces the certificate (ACM's re-import: how a served certificate is renewed in place).

A domain configuration names a server name, one imported certificate that covers it, a
TLS security policy (:mod:`._policies`) and a status. The MQTT listeners pick the domain
by the server name a client sends (SNI); :meth:`DomainService.served_domains` is what
they read, and :class:`~._events.ServedDomainsChanged` (published after each commit that
changes it) is when they read it again. The default domain, ``iot:Data-ATS``, is the
listeners' own certificate; it has a row only once its security policy was set.

Rules kept here: a certificate a domain configuration uses cannot be deleted
(``ResourceInUseException``); the certificate must cover the domain name and must not
have expired when the domain is created (``CertificateValidationException``); a domain
name is served by one configuration; the default domain cannot be disabled or deleted;
only ``DATA`` domains with a certificate are served (Bastion issues no certificates of
its own for other names, and its credentials provider and jobs endpoints are not behind
the MQTT listeners).
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives import serialization

from bastion.account import Account, parse_arn
from bastion.clock import Clock
from bastion.events import EventSink
from bastion.pki import Keystore, PrivateKey, cert_to_pem, load_pem_certificate
from bastion.store import (
    ConflictError,
    DomainConfigurationRow,
    ServerCertificateRow,
    Store,
)

from ._errors import (
    CertificateInUseError,
    CertificateNotFoundError,
    CertificateValidationError,
    DomainExistsError,
    DomainNotFoundError,
    InvalidArnError,
    InvalidDomainRequestError,
)
from ._events import ServedDomainsChanged
from ._model import (
    DEFAULT_DOMAIN,
    DomainConfiguration,
    DomainConfigurationStatus,
    DomainType,
    ServedDomain,
    ServerCertificate,
    ServiceType,
)
from ._policies import DEFAULT_SECURITY_POLICY, SECURITY_POLICIES, security_policy
from ._x509 import check_import, covers, key_algorithm, server_names

_DNS_NAME: Final = re.compile(
    r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_SETTINGS: Final = ("authorizerConfig", "authenticationType", "applicationProtocol",
                    "clientCertificateConfig", "serverCertificateConfig")
_ARN_SUFFIX: Final = string.ascii_lowercase + string.digits


class DomainService:
    """Imported certificates and domain configurations (see the module docstring).

    :param keystore: seals the imported private keys.
    :param publish: where :class:`ServedDomainsChanged` goes, after the commit.
    :param default_domain_name: the default domain's name (the API's public host), if
        one is configured.
    """

    def __init__(self, store: Store, keystore: Keystore, *, account: Account,
                 publish: EventSink, clock: Clock,
                 default_domain_name: str | None = None) -> None:
        self._store = store
        self._keystore = keystore
        self._account = account
        self._publish = publish
        self._clock = clock
        self._default_domain_name = default_domain_name or None

    # -- ACM: imported certificates -------------------------------------------------------

    def import_certificate(self, certificate: bytes, private_key: bytes,
                           chain: bytes | None = None, *,
                           certificate_arn: str | None = None) -> str:
        """Import (or, with ``certificate_arn``, re-import) a server certificate.

        :returns: its ARN.
        :raises CertificateInvalidError: see :func:`._x509.check_import`.
        :raises InvalidArnError: ``certificate_arn`` is not an ACM ARN of this account.
        :raises CertificateNotFoundError: ``certificate_arn`` names no certificate.
        :raises CertificateValidationError: a re-imported certificate no longer covers a
            domain that serves it.
        """
        now = self._clock.now()
        imported = check_import(certificate, private_key, chain, now)
        certificate_id = (self._certificate_id(certificate_arn) if certificate_arn
                          else str(uuid.uuid4()))
        der = imported.key.private_bytes(serialization.Encoding.DER,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        names = server_names(imported.certificate)
        row = ServerCertificateRow(
            certificate_id, cert_to_pem(imported.certificate).decode("ascii"),
            "".join(cert_to_pem(c).decode("ascii") for c in imported.chain) or None,
            self._keystore.seal(der, associated_data=_key_aad(certificate_id)),
            names[0] if names else None, now)
        with self._store.transaction() as uow:
            in_use: list[str] = []
            if certificate_arn:
                if uow.domains.certificate(certificate_id) is None:
                    raise CertificateNotFoundError(f"Could not find certificate "
                                                   f"{certificate_arn}.")
                for name in uow.domains.domains_using(certificate_id):
                    domain = uow.domains.domain(name)
                    if domain is not None and domain.domain_name and not covers(
                            imported.certificate, domain.domain_name):
                        raise CertificateValidationError(
                            f"The certificate does not cover {domain.domain_name}, which "
                            f"domain configuration {name} serves with it.")
                    in_use.append(name)
            uow.domains.save_certificate(row)
        if in_use:
            self._publish(ServedDomainsChanged(f"certificate {certificate_id} re-imported"))
        return self._certificate_arn(certificate_id)

    def describe_certificate(self, certificate_arn: str) -> ServerCertificate:
        """:raises InvalidArnError, CertificateNotFoundError: see :meth:`import_certificate`."""
        certificate_id = self._certificate_id(certificate_arn)
        with self._store.transaction(readonly=True) as uow:
            row = uow.domains.certificate(certificate_id)
            users = uow.domains.domains_using(certificate_id)
            domains = {name: uow.domains.domain(name) for name in users}
        if row is None:
            raise CertificateNotFoundError(f"Could not find certificate {certificate_arn}.")
        return self._certificate(row, [self._domain_arn(d) for d in domains.values()
                                       if d is not None])

    def list_certificates(self) -> list[ServerCertificate]:
        """Every imported certificate, oldest import first."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.domains.certificates()
            domains = uow.domains.domains()
        users: dict[str, list[str]] = {}
        for domain in domains:
            if domain.certificate_id:
                users.setdefault(domain.certificate_id, []).append(self._domain_arn(domain))
        return [self._certificate(row, users.get(row.certificate_id, [])) for row in rows]

    def delete_certificate(self, certificate_arn: str) -> None:
        """:raises CertificateInUseError: a domain configuration serves it.
        :raises InvalidArnError, CertificateNotFoundError: see :meth:`import_certificate`.
        """
        certificate_id = self._certificate_id(certificate_arn)
        with self._store.transaction() as uow:
            users = uow.domains.domains_using(certificate_id)
            if users:
                raise CertificateInUseError(
                    f"Certificate {certificate_arn} is in use by domain configuration(s) "
                    + ", ".join(users) + ".")
            try:
                deleted = uow.domains.delete_certificate(certificate_id)
            except ConflictError:  # a domain took it meanwhile
                raise CertificateInUseError(
                    f"Certificate {certificate_arn} is in use.") from None
        if not deleted:
            raise CertificateNotFoundError(f"Could not find certificate {certificate_arn}.")

    # -- domain configurations -----------------------------------------------------------

    def create_domain_configuration(
            self, name: str, *, domain_name: str | None,
            server_certificate_arns: list[str] | None,
            service_type: str | None = None, security_policy_name: str | None = None,
            settings: Mapping[str, Any] | None = None) -> DomainConfiguration:
        """Create a domain configuration, ENABLED.

        :raises InvalidDomainRequestError: a reserved name, no certificate, another
            service type than DATA, a malformed domain name or an unknown policy.
        :raises CertificateValidationError: the certificate is unknown, expired, or does
            not cover ``domain_name``.
        :raises DomainExistsError: the name or the domain name is taken.
        """
        if name.startswith("iot:"):
            raise InvalidDomainRequestError(f"{name} is a reserved domain configuration "
                                            "name.")
        if (service_type or ServiceType.DATA.value) != ServiceType.DATA.value:
            raise InvalidDomainRequestError("Bastion serves domain configurations of "
                                            "serviceType DATA only.")
        if not server_certificate_arns or not domain_name:
            raise InvalidDomainRequestError(
                "Bastion serves customer-managed domains only: give domainName and "
                "serverCertificateArns (a certificate imported with ACM's ImportCertificate).")
        wanted = domain_name.lower().rstrip(".")
        if not _DNS_NAME.fullmatch(wanted):
            raise InvalidDomainRequestError(f"{domain_name} is not a valid domain name.")
        policy = _policy(security_policy_name)
        certificate_arn = server_certificate_arns[0]
        try:
            certificate_id = self._certificate_id(certificate_arn)
        except InvalidArnError as error:
            raise CertificateValidationError(error.message) from None
        now = self._clock.now()
        row = DomainConfigurationRow(
            name, "".join(secrets.choice(_ARN_SUFFIX) for _ in range(5)), wanted,
            certificate_id, ServiceType.DATA.value, DomainConfigurationStatus.ENABLED.value,
            policy, _settings(settings), now, now)
        with self._store.transaction() as uow:
            if uow.domains.domain(name) is not None:
                raise DomainExistsError(f"Domain configuration {name} already exists.")
            found = uow.domains.certificate(certificate_id)
            if found is None:
                raise CertificateValidationError(
                    f"Server certificate {certificate_arn} was not found.")
            certificate = load_pem_certificate(found.certificate_pem)
            if certificate.not_valid_after_utc <= now:
                raise CertificateValidationError(
                    f"Server certificate {certificate_arn} has expired.")
            if not covers(certificate, wanted):
                raise CertificateValidationError(
                    f"Server certificate {certificate_arn} does not cover {wanted} (it is "
                    "for " + ", ".join(server_names(certificate)) + ").")
            try:
                uow.domains.insert_domain(row)
            except ConflictError:
                raise DomainExistsError(
                    f"Domain configuration {name} or a configuration of domain {wanted} "
                    "already exists.") from None
        self._publish(ServedDomainsChanged(f"created {name}"))
        return self._configuration(row, certificate_valid=True)

    def update_domain_configuration(
            self, name: str, *, status: str | None = None,
            security_policy_name: str | None = None,
            settings: Mapping[str, Any] | None = None,
            remove_authorizer_config: bool = False) -> DomainConfiguration:
        """Change a domain's status, security policy or kept settings; what is not given
        stays. The default domain takes a security policy only.

        :raises DomainNotFoundError: no such configuration.
        :raises InvalidDomainRequestError: an unknown policy or status, or a status for
            the default domain.
        """
        policy = None if security_policy_name is None else _policy(security_policy_name)
        if status is not None and status not in DomainConfigurationStatus.__members__:
            raise InvalidDomainRequestError(f"{status} is not a domain configuration status.")
        now = self._clock.now()
        with self._store.transaction() as uow:
            row = uow.domains.domain(name)
            if row is None:
                if name != DEFAULT_DOMAIN:
                    raise DomainNotFoundError(f"Domain configuration {name} not found.")
                row = self._default_row(now)
                uow.domains.insert_domain(row)
            if name == DEFAULT_DOMAIN and status not in (None, row.status):
                raise InvalidDomainRequestError("The default domain cannot be disabled.")
            kept = dict(row.settings)
            kept.update(_settings(settings))
            if remove_authorizer_config:
                kept.pop("authorizerConfig", None)
            changed = DomainConfigurationRow(
                row.name, row.arn_suffix, row.domain_name, row.certificate_id,
                row.service_type, status or row.status, policy or row.security_policy,
                kept, now if status not in (None, row.status) else row.last_status_change,
                row.created_at)
            uow.domains.update_domain(changed)
            valid = self._certificate_valid(uow.domains.certificate(row.certificate_id)
                                            if row.certificate_id else None, now)
        if (changed.status, changed.security_policy) != (row.status, row.security_policy):
            self._publish(ServedDomainsChanged(f"updated {name}"))
        return self._configuration(changed, certificate_valid=valid)

    def describe_domain_configuration(self, name: str) -> DomainConfiguration:
        """:raises DomainNotFoundError: no such configuration."""
        now = self._clock.now()
        with self._store.transaction(readonly=True) as uow:
            row = uow.domains.domain(name)
            certificate = (uow.domains.certificate(row.certificate_id)
                           if row is not None and row.certificate_id else None)
        if row is None:
            if name != DEFAULT_DOMAIN:
                raise DomainNotFoundError(f"Domain configuration {name} not found.")
            row = self._default_row(now)
        return self._configuration(row, certificate_valid=self._certificate_valid(
            certificate, now))

    def list_domain_configurations(self, service_type: str | None = None
                                   ) -> list[DomainConfiguration]:
        """Every configuration, the default domain's included, by name."""
        now = self._clock.now()
        with self._store.transaction(readonly=True) as uow:
            rows = uow.domains.domains()
        if not any(row.name == DEFAULT_DOMAIN for row in rows):
            rows.append(self._default_row(now))
        rows.sort(key=lambda row: row.name)
        return [self._configuration(row, certificate_valid=True) for row in rows
                if service_type in (None, row.service_type)]

    def delete_domain_configuration(self, name: str) -> None:
        """:raises DomainNotFoundError: no such configuration.
        :raises InvalidDomainRequestError: the default domain."""
        if name == DEFAULT_DOMAIN:
            raise InvalidDomainRequestError("The default domain cannot be deleted.")
        with self._store.transaction() as uow:
            if not uow.domains.delete_domain(name):
                raise DomainNotFoundError(f"Domain configuration {name} not found.")
        self._publish(ServedDomainsChanged(f"deleted {name}"))

    # -- what the listeners serve ---------------------------------------------------------

    def served_domains(self) -> list[ServedDomain]:
        """Every domain the MQTT listeners serve, with unsealed keys; the default domain
        (``domain_name`` ``None``) only when its security policy was set."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.domains.domains()
            certificates = {row.certificate_id: uow.domains.certificate(row.certificate_id)
                            for row in rows if row.certificate_id}
        served: list[ServedDomain] = []
        for row in rows:
            policy = security_policy(row.security_policy)
            assert policy is not None, "policies are checked when set"
            enabled = row.status == DomainConfigurationStatus.ENABLED.value
            if row.name == DEFAULT_DOMAIN:
                served.append(ServedDomain(None, True, policy, None))
                continue
            found = certificates.get(row.certificate_id or "")
            if found is None or row.domain_name is None:
                continue
            served.append(ServedDomain(
                row.domain_name, enabled, policy,
                (found.certificate_pem + (found.chain_pem or "")).encode("ascii"),
                self._unseal(found)))
        return served

    # -- helpers ------------------------------------------------------------------------

    def _unseal(self, row: ServerCertificateRow) -> PrivateKey:
        der = self._keystore.unseal(row.sealed_key,
                                    associated_data=_key_aad(row.certificate_id))
        key = serialization.load_der_private_key(der, password=None)
        assert not isinstance(key, bytes)
        return key  # type: ignore[return-value]  # checked at import: EC or RSA

    def _certificate_arn(self, certificate_id: str) -> str:
        return self._account.arn(f"certificate/{certificate_id}", service="acm")

    def _certificate_id(self, arn: str) -> str:
        try:
            parsed = parse_arn(arn)
        except ValueError:
            raise InvalidArnError(f"{arn} is not a valid ARN.") from None
        kind, _, certificate_id = parsed.resource.partition("/")
        if not self._account.owns(parsed, service="acm") or kind != "certificate" or \
                not certificate_id:
            raise InvalidArnError(f"{arn} is not an ACM certificate ARN of account "
                                  f"{self._account.account_id} in {self._account.region}.")
        return certificate_id

    def _domain_arn(self, row: DomainConfigurationRow) -> str:
        return self._account.arn(f"domainconfiguration/{row.name}/{row.arn_suffix}")

    def _default_row(self, now: datetime) -> DomainConfigurationRow:
        return DomainConfigurationRow(
            DEFAULT_DOMAIN, "ats", None, None, ServiceType.DATA.value,
            DomainConfigurationStatus.ENABLED.value, None, {}, now, now)

    def _certificate_valid(self, row: ServerCertificateRow | None, now: datetime) -> bool:
        if row is None:
            return True
        return load_pem_certificate(row.certificate_pem).not_valid_after_utc > now

    def _configuration(self, row: DomainConfigurationRow, *, certificate_valid: bool
                       ) -> DomainConfiguration:
        default = row.name == DEFAULT_DOMAIN
        return DomainConfiguration(
            name=row.name, arn=self._domain_arn(row),
            domain_name=self._default_domain_name if default else row.domain_name,
            server_certificate_arn=(self._certificate_arn(row.certificate_id)
                                    if row.certificate_id else None),
            server_certificate_valid=certificate_valid,
            status=DomainConfigurationStatus(row.status),
            service_type=ServiceType(row.service_type),
            domain_type=DomainType.ENDPOINT if default else DomainType.CUSTOMER_MANAGED,
            security_policy=row.security_policy or DEFAULT_SECURITY_POLICY,
            last_status_change=row.last_status_change, settings=dict(row.settings))

    def _certificate(self, row: ServerCertificateRow, in_use_by: list[str]
                     ) -> ServerCertificate:
        certificate = load_pem_certificate(row.certificate_pem)
        names = server_names(certificate)
        not_after = certificate.not_valid_after_utc
        algorithm = certificate.signature_hash_algorithm
        algorithm_name = key_algorithm(certificate)
        return ServerCertificate(
            arn=self._certificate_arn(row.certificate_id), certificate_id=row.certificate_id,
            domain_name=row.domain_name, subject_alternative_names=tuple(names),
            serial=":".join(f"{b:02x}" for b in certificate.serial_number.to_bytes(
                (certificate.serial_number.bit_length() + 7) // 8 or 1, "big")),
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(), imported_at=row.imported_at,
            not_before=certificate.not_valid_before_utc, not_after=not_after,
            key_algorithm=algorithm_name,
            signature_algorithm=(f"{algorithm.name.upper()}WITH"
                                 f"{'RSA' if algorithm_name.startswith('RSA') else 'ECDSA'}"
                                 if algorithm is not None else "UNKNOWN"),
            status="EXPIRED" if not_after <= self._clock.now() else "ISSUED",
            in_use_by=tuple(in_use_by), certificate_pem=row.certificate_pem,
            chain_pem=row.chain_pem)


def _key_aad(certificate_id: str) -> bytes:
    return b"bastion acm certificate key: " + certificate_id.encode("ascii")


def _policy(name: str | None) -> str:
    if name is not None and security_policy(name) is None:
        raise InvalidDomainRequestError(
            f"Security policy {name} is not supported; use one of "
            + ", ".join(SECURITY_POLICIES) + ".")
    return name or DEFAULT_SECURITY_POLICY


def _settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (settings or {}).items()
            if key in _SETTINGS and value is not None}
