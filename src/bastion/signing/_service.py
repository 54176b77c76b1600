"""The code-signing service: AWS Signer's profiles and jobs over Bastion's files.

Theory of operation
-------------------
*Certificates.* A profile signs with one *signing certificate*: an EC P-256 key, sealed
in the store (:mod:`._keys`), and the certificate Bastion's **code-signing CA** issued for
it (extended key usage ``codeSigning``). A signing certificate is generated in Bastion
(PutSigningProfile without ``signingMaterial``, or :meth:`SigningService.create_certificate`)
or imported (:meth:`SigningService.import_certificate`, ``bastion signing import-key``);
either way its key never leaves Bastion. Its ARN is ACM-shaped
(``arn:aws:acm:<region>:<account>:certificate/<id>``), the shape ``signingMaterial``
takes in AWS.

*The code-signing CA* is not the device CA: its key is made on first use and kept sealed
in the store (secret :data:`CA_KEY_SECRET`), its certificate in the settings (and, for
the operator's convenience, in ``<data dir>/ca/code-signing-ca.cert.pem``), so every node
of a cluster signs under the same CA. Devices pin it (:meth:`ca_certificate_pem`).

*Sources.* A signing job signs a file uploaded to Bastion (``bastion files upload``).
StartSigningJob's ``source.s3`` names it as S3 would: ``bucketName`` is free (as in the
``s3://<any bucket>/<name>`` URLs of job documents), ``key`` is the file's name and
``version`` its SHA-256, as ``bastion files upload`` prints it — so what is signed is
exactly the bytes the operator meant, and a file replaced since is refused. The bytes
are hashed again as they are read.

*Signing* is synchronous: a job is ``Succeeded`` when StartSigningJob answers. With a
``destination.s3``, the signed object — JSON with ``rawPayloadSize``, ``signature``
(base64 DER), ``signatureAlgorithm`` and ``certificate`` (PEM) — is written as the
Bastion file ``<prefix><job id>`` (a ``/`` in the prefix becomes ``-``: Bastion files have
no directories); DescribeSigningJob's ``signedObject`` names it.

*Revocation.* RevokeSignature marks a job's signature revoked; CancelSigningProfile stops
a profile signing; RevokeSigningProfile revokes a profile and the signatures it made from
``effectiveTime``. An OTA update refuses a revoked signature and a profile that is not
``Active`` (:meth:`signature_for_ota`); the jobs of updates made before with a signature
revoked since are canceled (the API calls :meth:`bastion.ota.OtaService.withdraw_revoked`
after either revocation), and devices ask :meth:`revocation_status` themselves.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import logging
import re
import secrets
import string
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from cryptography import x509

from bastion.account import Account, parse_arn
from bastion.clock import Clock, SystemClock
from bastion.files import FilesError, FileService, is_file_name
from bastion.pki import Keystore, cert_to_pem, load_pem_certificate, write_file_atomically
from bastion.store import (
    ConflictError as StoreConflict,
)
from bastion.store import (
    InvalidPageTokenError,
    SigningCertificateRow,
    SigningJobRow,
    SigningProfileRow,
    Store,
)

from . import _keys
from ._errors import ConflictError, NotFoundError, ValidationError
from ._model import (
    CertificateOrigin,
    CodeSignature,
    JobStatus,
    ProfileStatus,
    SigningJob,
    SigningProfile,
)
from ._platforms import Platform, check_overrides, check_platform, get_platform

log = logging.getLogger("bastion.signing")

CA_KEY_SECRET: Final = "signing.code-signing-ca-key"
CA_CERTIFICATE_SETTING: Final = "signing.code-signing-ca-certificate"
CERTNAME_PARAMETER: Final = "certname"
"""The signing parameter naming where devices keep the certificate (AWS FreeRTOS's)."""

_PROFILE_NAME: Final = re.compile(r"[a-zA-Z0-9_]{2,64}")
_TOKEN: Final = re.compile(r"[\x21-\x7e]{1,64}")
MAX_PAYLOAD_BYTES: Final = 4096
_VERSION_ALPHABET: Final = string.ascii_letters + string.digits
_DEFAULT_VALIDITY: Final = (135, "MONTHS")
_MAX_RESULTS: Final = 25
_REASON_MAX: Final = 500


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _expiry(start: datetime, value: int, unit: str) -> datetime:
    if unit == "DAYS":
        return start + timedelta(days=value)
    return _add_months(start, value * (12 if unit == "YEARS" else 1))


def _page_size(max_results: object) -> int:
    if max_results is None:
        return _MAX_RESULTS
    if isinstance(max_results, bool) or not isinstance(max_results, int) \
            or not 1 <= max_results <= _MAX_RESULTS:
        raise ValidationError(f"maxResults must be an integer from 1 to {_MAX_RESULTS}")
    return max_results


def _text(value: object, name: str, *, required: bool = True,
          limit: int = _REASON_MAX) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValidationError(f"{name} must be a string of 1 to {limit} characters")
    return value


class SigningService:
    """Signing certificates, profiles and jobs (AWS Signer), over ``store`` and ``files``.

    :param store: the store.
    :param keystore: seals the signing keys and the CA key.
    :param files: where sources are read and signed objects written.
    :param account: names the ARNs.
    :param clock: the current time.
    :param ca_certificate_path: where to write the code-signing CA's certificate for the
        operator (``None``: nowhere).
    :raises TypeError: wrong argument types.
    """

    def __init__(self, store: Store, keystore: Keystore, files: FileService, *,
                 account: Account, clock: Clock | None = None,
                 ca_certificate_path: Path | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if not isinstance(keystore, Keystore):
            raise TypeError(f"keystore must be a Keystore, not {type(keystore).__name__}")
        self._store = store
        self._keystore = keystore
        self._files = files
        self._account = account
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ca_path = ca_certificate_path
        self._lock = threading.Lock()
        self._ca: tuple[x509.Certificate, bytes] | None = None

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

    @property
    def account(self) -> Account:
        return self._account

    # -- the code-signing CA -----------------------------------------------------------

    def _authority(self) -> tuple[x509.Certificate, bytes]:
        """The CA certificate and its sealed key, created on first use (once per
        installation: a concurrent creator's CA wins)."""
        with self._lock:
            if self._ca is None:
                self._ca = self._load_or_create_ca()
                self._write_ca_file(self._ca[0])
            return self._ca

    def _load_or_create_ca(self) -> tuple[x509.Certificate, bytes]:
        for attempt in range(2):
            try:
                with self._store.transaction() as uow:
                    sealed = uow.secrets.get(CA_KEY_SECRET)
                    pem = uow.settings.get(CA_CERTIFICATE_SETTING)
                    if sealed is not None and pem is not None:
                        return load_pem_certificate(pem), sealed
                    cert, sealed = _keys.new_ca(self._keystore)
                    now = self._now()
                    uow.secrets.put(CA_KEY_SECRET, sealed, now)
                    uow.settings.put(CA_CERTIFICATE_SETTING,
                                     cert_to_pem(cert).decode("ascii"), now)
                log.info("code signing: created the code-signing CA")
                return cert, sealed
            except (StoreConflict, sa.exc.IntegrityError):
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _write_ca_file(self, cert: x509.Certificate) -> None:
        path = self._ca_path
        if path is None:
            return
        pem = cert_to_pem(cert)
        try:
            if path.is_file() and path.read_bytes() == pem:
                return
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_file_atomically(path, pem, mode=0o644)
        except OSError as error:  # the store has it; the file is a convenience
            log.warning("code signing: cannot write %s: %s", path, error)

    def ca_certificate_pem(self) -> str:
        """The code-signing CA's certificate (PEM): what devices pin."""
        return cert_to_pem(self._authority()[0]).decode("ascii")

    # -- signing certificates ------------------------------------------------------------

    def certificate_arn(self, certificate_id: str) -> str:
        return self._account.arn(f"certificate/{certificate_id}", service="acm")

    def _certificate_id(self, arn: object) -> str:
        if not isinstance(arn, str):
            raise ValidationError("certificateArn must be a string")
        try:
            parsed = parse_arn(arn)
        except ValueError:
            raise ValidationError(f"{arn} is not a certificate ARN") from None
        if not parsed.resource.startswith("certificate/"):
            raise ValidationError(f"{arn} is not a certificate ARN")
        if not self._account.owns(parsed, service="acm"):
            raise NotFoundError(f"Certificate {arn} does not exist")
        return parsed.resource.removeprefix("certificate/")

    def _new_certificate(self, common_name: str, origin: CertificateOrigin,
                         key_pem: bytes | None = None) -> SigningCertificateRow:
        certificate_id = str(uuid.uuid4())
        if key_pem is None:
            sealed, public_key = _keys.seal_new_key(self._keystore, certificate_id)
        else:
            sealed, public_key = _keys.seal_imported_key(self._keystore, certificate_id,
                                                         key_pem)
        ca_cert, ca_sealed = self._authority()
        cert = _keys.issue_with_ca(self._keystore, ca_cert, ca_sealed,
                                   common_name=common_name[:64], public_key=public_key)
        return SigningCertificateRow(certificate_id, cert_to_pem(cert).decode("ascii"),
                                     sealed, origin.value, self._now())

    def create_certificate(self, common_name: str = "Bastion code signing") -> str:
        """Generate a signing key in Bastion and have the code-signing CA certify it.

        :returns: the certificate's ARN (for ``signingMaterial.certificateArn``).
        """
        row = self._new_certificate(common_name, CertificateOrigin.GENERATED)
        with self._store.transaction() as uow:
            uow.signing.insert_certificate(row)
        return self.certificate_arn(row.certificate_id)

    def import_certificate(self, key_pem: bytes,
                           common_name: str = "Bastion code signing (imported)") -> str:
        """Seal an operator's P-256 private key (PEM) and have the code-signing CA certify
        it; the key is not kept anywhere else by Bastion.

        :returns: the certificate's ARN.
        :raises ValidationError: not a PEM P-256 private key.
        """
        if not isinstance(key_pem, bytes):
            raise TypeError("key_pem must be bytes")
        row = self._new_certificate(common_name, CertificateOrigin.IMPORTED, key_pem)
        with self._store.transaction() as uow:
            uow.signing.insert_certificate(row)
        return self.certificate_arn(row.certificate_id)

    def certificate_pem(self, certificate_arn: str) -> str:
        """The signing certificate (public PEM) of ``certificate_arn``.

        :raises NotFoundError: no such certificate.
        """
        certificate_id = self._certificate_id(certificate_arn)
        with self._store.transaction(readonly=True) as uow:
            row = uow.signing.get_certificate(certificate_id)
        if row is None:
            raise NotFoundError(f"Certificate {certificate_arn} does not exist")
        return row.certificate_pem

    # -- profiles ------------------------------------------------------------------------

    def job_arn(self, job_id: str) -> str:
        """The ARN of signing job ``job_id`` (GetRevocationStatus's ``jobArn``)."""
        return self._account.arn(f"/signing-jobs/{job_id}", service="signer")

    def _profile_arn(self, name: str) -> str:
        return self._account.arn(f"/signing-profiles/{name}", service="signer")

    def _profile(self, row: SigningProfileRow) -> SigningProfile:
        document = row.document
        validity = document.get("signatureValidityPeriod") or {}
        arn = self._profile_arn(row.name)
        return SigningProfile(
            name=row.name, arn=arn, profile_version=row.profile_version,
            profile_version_arn=f"{arn}/{row.profile_version}",
            platform_id=row.platform_id,
            platform_display_name=get_platform(row.platform_id).display_name,
            certificate_arn=self.certificate_arn(row.certificate_id),
            validity_value=int(validity.get("value", _DEFAULT_VALIDITY[0])),
            validity_type=str(validity.get("type", _DEFAULT_VALIDITY[1])),
            signing_parameters=dict(document.get("signingParameters") or {}),
            overrides=dict(document.get("overrides") or {}),
            tags=dict(document.get("tags") or {}), status=ProfileStatus(row.status),
            status_reason=row.status_reason, revoked_at=row.revoked_at,
            revocation_effective_from=row.revocation_effective_from,
            revoked_by=row.revoked_by, created_at=row.created_at)

    @staticmethod
    def _check_name(name: object) -> str:
        if not isinstance(name, str) or not _PROFILE_NAME.fullmatch(name):
            raise ValidationError("profileName must be 2 to 64 characters of a-z A-Z 0-9 _")
        return name

    def put_profile(self, name: str, *, platform_id: str,
                    certificate_arn: str | None = None,
                    signature_validity: Mapping[str, Any] | None = None,
                    overrides: Mapping[str, Any] | None = None,
                    signing_parameters: Mapping[str, str] | None = None,
                    tags: Mapping[str, str] | None = None) -> SigningProfile:
        """PutSigningProfile. Without ``certificate_arn`` a signing key is generated for
        the profile (and certified by the code-signing CA).

        :raises ValidationError: a bad name, platform, override or validity period.
        :raises NotFoundError: ``certificate_arn`` names no signing certificate.
        :raises ConflictError: a profile of that name exists (canceled ones included:
            a name is never reused, so an old signature never names a new profile).
        """
        name = self._check_name(name)
        platform = check_platform(platform_id)
        checked_overrides = check_overrides(platform, overrides)
        document: dict[str, Any] = {
            "signatureValidityPeriod": self._validity(signature_validity),
            "signingParameters": dict(signing_parameters or {}),
            "overrides": checked_overrides, "tags": dict(tags or {})}
        new_certificate: SigningCertificateRow | None = None
        if certificate_arn is None:
            new_certificate = self._new_certificate(name, CertificateOrigin.GENERATED)
            certificate_id = new_certificate.certificate_id
        else:
            certificate_id = self._certificate_id(certificate_arn)
        row = SigningProfileRow(
            name=name, profile_version="".join(
                secrets.choice(_VERSION_ALPHABET) for _ in range(10)),
            platform_id=platform.platform_id, certificate_id=certificate_id,
            document=document, status=ProfileStatus.ACTIVE.value, status_reason=None,
            revoked_at=None, revocation_effective_from=None, revoked_by=None,
            created_at=self._now())
        with self._store.transaction() as uow:
            if uow.signing.get_profile(name) is not None:
                raise ConflictError(f"Signing profile {name} already exists")
            if new_certificate is not None:
                uow.signing.insert_certificate(new_certificate)
            elif uow.signing.get_certificate(certificate_id) is None:
                raise NotFoundError(f"Certificate {certificate_arn} does not exist")
            try:
                uow.signing.insert_profile(row)
            except StoreConflict:
                raise ConflictError(f"Signing profile {name} already exists") from None
        return self._profile(row)

    @staticmethod
    def _validity(value: Mapping[str, Any] | None) -> dict[str, Any]:
        if value is None:
            return {"value": _DEFAULT_VALIDITY[0], "type": _DEFAULT_VALIDITY[1]}
        number = value.get("value", _DEFAULT_VALIDITY[0])
        unit = value.get("type", _DEFAULT_VALIDITY[1])
        if unit not in ("DAYS", "MONTHS", "YEARS"):
            raise ValidationError("signatureValidityPeriod.type must be DAYS, MONTHS or YEARS")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1 \
                or (unit == "DAYS" and number > 365 * 20) or (unit == "MONTHS" and number > 240) \
                or (unit == "YEARS" and number > 20):
            raise ValidationError("signatureValidityPeriod.value must be a positive integer "
                                  "of at most 20 years")
        return {"value": number, "type": unit}

    def get_profile(self, name: str) -> SigningProfile:
        """:raises NotFoundError: no such profile."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.signing.get_profile(name) if isinstance(name, str) else None
        if row is None:
            raise NotFoundError(f"Signing profile {name} does not exist")
        return self._profile(row)

    def list_profiles(self, *, include_canceled: bool = False,
                      statuses: list[str] | None = None, platform_id: str | None = None,
                      max_results: int | None = None, next_token: str | None = None
                      ) -> tuple[list[SigningProfile], str | None]:
        """ListSigningProfiles.

        :raises ValidationError: a bad status, page size or token.
        """
        wanted: frozenset[str] | None = None
        if statuses:
            try:
                wanted = frozenset(ProfileStatus(status).value for status in statuses)
            except ValueError:
                raise ValidationError("statuses must be Active, Canceled or Revoked") from None
        elif not include_canceled:
            wanted = frozenset({ProfileStatus.ACTIVE.value, ProfileStatus.REVOKED.value})
        try:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.signing.list_profiles(
                    limit=_page_size(max_results), token=next_token, statuses=wanted,
                    platform_id=platform_id)
        except InvalidPageTokenError:
            raise ValidationError("nextToken is not valid") from None
        return [self._profile(row) for row in rows], token

    def cancel_profile(self, name: str) -> None:
        """CancelSigningProfile: the profile signs no more (its signatures stay valid).

        :raises NotFoundError: no such profile.
        """
        with self._store.transaction() as uow:
            row = uow.signing.get_profile(name) if isinstance(name, str) else None
            if row is None:
                raise NotFoundError(f"Signing profile {name} does not exist")
            if row.status == ProfileStatus.ACTIVE.value:
                uow.signing.set_profile_status(name, status=ProfileStatus.CANCELED.value,
                                               status_reason="Canceled by the owner")

    def revoke_profile(self, name: str, *, profile_version: str, reason: str,
                       effective_time: datetime, revoked_by: str) -> None:
        """RevokeSigningProfile: the profile signs no more, and its signatures made from
        ``effective_time`` on are revoked.

        :raises NotFoundError: no such profile or version.
        :raises ValidationError: a bad reason, or a profile revoked already.
        """
        reason = str(_text(reason, "reason"))
        with self._store.transaction() as uow:
            row = uow.signing.get_profile(name) if isinstance(name, str) else None
            if row is None or row.profile_version != profile_version:
                raise NotFoundError(
                    f"Signing profile {name} version {profile_version} does not exist")
            if row.status == ProfileStatus.REVOKED.value:
                raise ValidationError(f"Signing profile {name} is revoked already")
            uow.signing.set_profile_status(
                name, status=ProfileStatus.REVOKED.value, status_reason=reason,
                revoked_at=self._now(), effective_from=effective_time.astimezone(UTC),
                revoked_by=revoked_by)

    # -- jobs ----------------------------------------------------------------------------

    def _job(self, row: SigningJobRow) -> SigningJob:
        return SigningJob(
            job_id=row.job_id, job_owner=self._account.account_id,
            profile_name=row.profile_name, profile_version=row.profile_version,
            platform_id=row.platform_id,
            platform_display_name=get_platform(row.platform_id).display_name,
            certificate_arn=self.certificate_arn(row.certificate_id),
            source_bucket=row.source_bucket, source_key=row.source_key,
            source_version=row.source_version, file_size=row.file_size,
            file_sha256=row.file_sha256, signed_bucket=row.signed_bucket,
            signed_key=row.signed_key, status=JobStatus(row.status),
            status_reason=row.status_reason, requested_by=row.requested_by,
            created_at=row.created_at, completed_at=row.completed_at,
            signature_expires_at=row.signature_expires_at, revoked_at=row.revoked_at,
            revoked_by=row.revoked_by, revocation_reason=row.revocation_reason)

    def _read_source(self, source: Mapping[str, Any], platform: Platform
                     ) -> tuple[str, str, str, bytes]:
        s3 = source.get("s3") if isinstance(source, Mapping) else None
        if not isinstance(s3, Mapping):
            raise ValidationError("source.s3 must name a file uploaded to Bastion")
        bucket, key, version = s3.get("bucketName"), s3.get("key"), s3.get("version")
        if not isinstance(bucket, str) or not bucket:
            raise ValidationError("source.s3.bucketName must be given")
        if not is_file_name(key):
            raise ValidationError(f"source.s3.key {key!r} is not a Bastion file name")
        assert isinstance(key, str)
        try:
            described = self._files.describe(key)
            if described.size > platform.max_size_in_mb * 1024 * 1024:
                raise ValidationError(f"File {key} exceeds {platform.max_size_in_mb} MB, "
                                      f"the most {platform.platform_id} signs")
            data = self._files.read(key)
        except FilesError as error:
            raise NotFoundError(f"Source file {key}: {error.message}") from None
        digest = hashlib.sha256(data).hexdigest()
        if version != digest:
            raise ValidationError(
                f"source.s3.version must be the SHA-256 of file {key} as uploaded "
                f"({digest}): the file signed must be the one meant")
        return bucket, key, digest, data

    def _write_signed_object(self, destination: Mapping[str, Any], job_id: str,
                             size: int, signature: bytes, certificate_pem: str
                             ) -> tuple[str | None, str | None]:
        s3 = destination.get("s3") if isinstance(destination, Mapping) else None
        if s3 is None:
            return None, None
        if not isinstance(s3, Mapping):
            raise ValidationError("destination.s3 must be an object")
        bucket = s3.get("bucketName") or "bastion"
        prefix = s3.get("prefix") or ""
        name = f"{str(prefix).replace('/', '-')}{job_id}"
        if not is_file_name(name):
            raise ValidationError(f"destination.s3.prefix {prefix!r} makes no Bastion "
                                  "file name (letters, digits, . _ -)")
        signed = {"rawPayloadSize": size,
                  "signature": base64.b64encode(signature).decode("ascii"),
                  "signatureAlgorithm": "SHA256withECDSA", "certificate": certificate_pem}
        try:
            self._files.upload(name, json.dumps(signed, indent=2).encode("utf-8"))
        except FilesError as error:
            raise ValidationError(f"Cannot write the signed object {name}: "
                                  f"{error.message}") from None
        return str(bucket), name

    def start_job(self, *, source: Mapping[str, Any], destination: Mapping[str, Any],
                  profile_name: str, client_request_token: str,
                  requested_by: str) -> SigningJob:
        """StartSigningJob: sign a Bastion file with a profile's key (at once).

        A request repeating a ``client_request_token`` answers the job it started.

        :raises ValidationError: a bad source, destination or token, a profile that is
            not Active, a file too large, a ``version`` that is not the file's SHA-256.
        :raises NotFoundError: no such profile or file.
        """
        if not isinstance(client_request_token, str) or not _TOKEN.fullmatch(
                client_request_token):
            raise ValidationError("clientRequestToken must be 1 to 64 printable characters")
        with self._store.transaction(readonly=True) as uow:
            earlier = uow.signing.get_job_by_token(client_request_token)
            profile_row = uow.signing.get_profile(profile_name) \
                if isinstance(profile_name, str) else None
            certificate = None if profile_row is None else \
                uow.signing.get_certificate(profile_row.certificate_id)
        if earlier is not None:
            return self._job(earlier)
        if profile_row is None or certificate is None:
            raise NotFoundError(f"Signing profile {profile_name} does not exist")
        if profile_row.status != ProfileStatus.ACTIVE.value:
            raise ValidationError(f"Signing profile {profile_name} is "
                                  f"{profile_row.status}: it signs no more")
        platform = get_platform(profile_row.platform_id)
        bucket, key, digest, data = self._read_source(source, platform)
        signature = _keys.sign_with(self._keystore, certificate.certificate_id,
                                    certificate.sealed_key, data)
        job_id = str(uuid.uuid4())
        signed_bucket, signed_key = self._write_signed_object(
            destination, job_id, len(data), signature, certificate.certificate_pem)
        now = self._now()
        profile = self._profile(profile_row)
        row = SigningJobRow(
            job_id=job_id, client_request_token=client_request_token,
            profile_name=profile_row.name, profile_version=profile_row.profile_version,
            platform_id=platform.platform_id, certificate_id=certificate.certificate_id,
            source_bucket=bucket, source_key=key, source_version=digest,
            file_size=len(data), file_sha256=digest, signature=signature,
            signed_bucket=signed_bucket, signed_key=signed_key,
            status=JobStatus.SUCCEEDED.value, status_reason="Signing Succeeded",
            requested_by=requested_by, created_at=now, completed_at=now,
            signature_expires_at=_expiry(now, profile.validity_value, profile.validity_type))
        try:
            with self._store.transaction() as uow:
                uow.signing.insert_job(row)
        except StoreConflict:  # the same token, concurrently: answer the winner's job
            with self._store.transaction(readonly=True) as uow:
                winner = uow.signing.get_job_by_token(client_request_token)
            if winner is None:
                raise
            return self._job(winner)
        log.info("code signing: job %s signed %s (sha256 %s) with profile %s", job_id, key,
                 digest, profile_row.name)
        return self._job(row)

    def describe_job(self, job_id: str) -> SigningJob:
        """:raises NotFoundError: no such job."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.signing.get_job(job_id) if isinstance(job_id, str) else None
        if row is None:
            raise NotFoundError(f"Signing job {job_id} does not exist")
        return self._job(row)

    def list_jobs(self, *, status: str | None = None, platform_id: str | None = None,
                  requested_by: str | None = None, is_revoked: bool | None = None,
                  expires_before: datetime | None = None,
                  expires_after: datetime | None = None, max_results: int | None = None,
                  next_token: str | None = None) -> tuple[list[SigningJob], str | None]:
        """ListSigningJobs.

        :raises ValidationError: a bad status, page size or token.
        """
        if status is not None and status not in {s.value for s in JobStatus}:
            raise ValidationError("status must be InProgress, Failed or Succeeded")
        try:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.signing.list_jobs(
                    limit=_page_size(max_results), token=next_token, status=status,
                    platform_id=platform_id, requested_by=requested_by,
                    is_revoked=is_revoked, expires_before=expires_before,
                    expires_after=expires_after)
        except InvalidPageTokenError:
            raise ValidationError("nextToken is not valid") from None
        return [self._job(row) for row in rows], token

    def revoke_signature(self, job_id: str, *, reason: str, revoked_by: str) -> None:
        """RevokeSignature: the job's signature is revoked (no OTA update may use it).

        :raises NotFoundError: no such job.
        :raises ValidationError: a bad reason, or revoked already.
        """
        reason = str(_text(reason, "reason"))
        with self._store.transaction() as uow:
            row = uow.signing.get_job(job_id) if isinstance(job_id, str) else None
            if row is None:
                raise NotFoundError(f"Signing job {job_id} does not exist")
            if row.revoked_at is not None:
                raise ValidationError(f"The signature of job {job_id} is revoked already")
            uow.signing.revoke_job(job_id, at=self._now(), by=revoked_by, reason=reason)
        log.info("code signing: the signature of job %s is revoked", job_id)

    # -- SignPayload, GetRevocationStatus ----------------------------------------------

    def sign_payload(self, profile_name: str, payload: bytes, payload_format: str, *,
                     requested_by: str) -> tuple[SigningJob, bytes, dict[str, str]]:
        """SignPayload: the DER ECDSA P-256 / SHA-256 signature of ``payload`` (1 to 4096
        bytes) with the profile's key, recorded as a signing job (so it can be revoked);
        the metadata names the algorithm and carries the signing certificate (public).

        :raises ValidationError: a bad payload or format, a profile that is not Active.
        :raises NotFoundError: no such profile.
        """
        if not isinstance(payload, bytes) or not 1 <= len(payload) <= MAX_PAYLOAD_BYTES:
            raise ValidationError(f"payload must be 1 to {MAX_PAYLOAD_BYTES} bytes")
        payload_format = str(_text(payload_format, "payloadFormat"))
        with self._store.transaction(readonly=True) as uow:
            profile_row = uow.signing.get_profile(profile_name) \
                if isinstance(profile_name, str) else None
            certificate = None if profile_row is None else \
                uow.signing.get_certificate(profile_row.certificate_id)
        if profile_row is None or certificate is None:
            raise NotFoundError(f"Signing profile {profile_name} does not exist")
        if profile_row.status != ProfileStatus.ACTIVE.value:
            raise ValidationError(f"Signing profile {profile_name} is "
                                  f"{profile_row.status}: it signs no more")
        signature = _keys.sign_with(self._keystore, certificate.certificate_id,
                                    certificate.sealed_key, payload)
        profile = self._profile(profile_row)
        digest = hashlib.sha256(payload).hexdigest()
        now = self._now()
        row = SigningJobRow(
            job_id=str(uuid.uuid4()), client_request_token=str(uuid.uuid4()),
            profile_name=profile_row.name, profile_version=profile_row.profile_version,
            platform_id=profile_row.platform_id, certificate_id=certificate.certificate_id,
            source_bucket="", source_key="", source_version=digest, file_size=len(payload),
            file_sha256=digest, signature=signature, signed_bucket=None, signed_key=None,
            status=JobStatus.SUCCEEDED.value, status_reason="Signing Succeeded",
            requested_by=requested_by, created_at=now, completed_at=now,
            signature_expires_at=_expiry(now, profile.validity_value, profile.validity_type))
        with self._store.transaction() as uow:
            uow.signing.insert_job(row)
        log.info("code signing: job %s signed a %s payload (sha256 %s) with profile %s",
                 row.job_id, payload_format, digest, profile_row.name)
        return self._job(row), signature, {
            "signatureAlgorithm": "SHA256withECDSA", "payloadFormat": payload_format,
            "signingProfileVersionArn": profile.profile_version_arn,
            "certificate": certificate.certificate_pem}

    def _resource(self, arn: object, kind: str, name: str) -> list[str]:
        """The parts after ``/<kind>/`` of a ``signer`` ARN of this account.

        :raises ValidationError: not such an ARN.
        """
        try:
            parsed = parse_arn(arn) if isinstance(arn, str) else None
        except ValueError:
            parsed = None
        resource = "" if parsed is None else parsed.resource.lstrip("/")
        if parsed is None or parsed.service != "signer" \
                or parsed.account_id not in ("", self._account.account_id) \
                or not resource.startswith(f"{kind}/"):
            raise ValidationError(f"{name} must be a signer ARN of /{kind}/… in this account")
        return resource[len(kind) + 1:].split("/")

    def revocation_status(self, *, signature_timestamp: datetime, platform_id: str,
                          profile_version_arn: str, job_arn: str,
                          certificate_hashes: Sequence[str]) -> list[str]:
        """GetRevocationStatus: which of the signing job, the profile version and the
        certificates are revoked for a signature made at ``signature_timestamp`` — the
        job when its signature was revoked (RevokeSignature), the profile version when it
        was revoked effective at or before that time (RevokeSigningProfile). Bastion
        revokes no signing certificate on its own, so no certificate hash is listed.

        :raises ValidationError: an unknown platform, a bad ARN or timestamp.
        """
        check_platform(platform_id)
        if not isinstance(signature_timestamp, datetime) \
                or signature_timestamp.utcoffset() is None:
            raise ValidationError("signatureTimestamp must be a time")
        if isinstance(certificate_hashes, str) or not isinstance(certificate_hashes, Sequence):
            raise ValidationError("certificateHashes must be a list")
        profile_parts = self._resource(profile_version_arn, "signing-profiles",
                                       "profileVersionArn")
        job_parts = self._resource(job_arn, "signing-jobs", "jobArn")
        if len(profile_parts) != 2 or len(job_parts) != 1:
            raise ValidationError("profileVersionArn names /signing-profiles/<name>/<version>"
                                  " and jobArn /signing-jobs/<jobId>")
        with self._store.transaction(readonly=True) as uow:
            profile = uow.signing.get_profile(profile_parts[0])
            job = uow.signing.get_job(job_parts[0])
        revoked: list[str] = []
        if job is not None and job.revoked_at is not None:
            revoked.append(job_arn)
        if profile is not None and profile.profile_version == profile_parts[1] \
                and profile.status == ProfileStatus.REVOKED.value \
                and profile.revocation_effective_from is not None \
                and profile.revocation_effective_from <= signature_timestamp:
            revoked.append(profile_version_arn)
        return revoked

    # -- for OTA updates ----------------------------------------------------------------

    def signature_for_ota(self, job_id: str) -> CodeSignature:
        """The signature of job ``job_id`` for an OTA update's job document.

        :raises NotFoundError: no such job.
        :raises ValidationError: the job did not succeed, its signature is revoked or
            expired, or its profile is not Active (canceled or revoked).
        """
        with self._store.transaction(readonly=True) as uow:
            row = uow.signing.get_job(job_id) if isinstance(job_id, str) else None
            profile = None if row is None else uow.signing.get_profile(row.profile_name)
            certificate = None if row is None else \
                uow.signing.get_certificate(row.certificate_id)
        if row is None or profile is None or certificate is None:
            raise NotFoundError(f"Signing job {job_id} does not exist")
        if row.status != JobStatus.SUCCEEDED.value:
            raise ValidationError(f"Signing job {job_id} did not succeed")
        if row.revoked_at is not None:
            raise ValidationError(f"The signature of signing job {job_id} is revoked")
        if profile.status != ProfileStatus.ACTIVE.value \
                or profile.profile_version != row.profile_version:
            raise ValidationError(f"Signing profile {profile.name} of signing job {job_id} "
                                  f"is {profile.status}: its signatures are not used for "
                                  "new OTA updates")
        if row.signature_expires_at is not None and row.signature_expires_at <= self._now():
            raise ValidationError(f"The signature of signing job {job_id} has expired")
        profile_model = self._profile(profile)
        return CodeSignature(
            signature=row.signature, certificate_pem=certificate.certificate_pem,
            certificate_path=str(profile_model.signing_parameters.get(CERTNAME_PARAMETER, "")),
            file_name=row.source_key, file_size=row.file_size, file_sha256=row.file_sha256,
            job_arn=self.job_arn(row.job_id),
            profile_version_arn=f"{profile_model.arn}/{row.profile_version}",
            signed_at=row.created_at)
