"""OTA updates (``iot`` CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates, DeleteOTAUpdate):
a signed file, delivered to devices by a job, over MQTT streams or presigned HTTPS.

Theory of operation
-------------------
CreateOTAUpdate resolves every file first, then creates the job, then records the
update — so that a refused request leaves no job and no update behind:

1. *Location.* ``fileLocation.s3Location`` names a file uploaded to Bastion (``key``;
   ``bucket`` is free, as in ``s3://`` URLs; ``version``, when given, must be the file's
   SHA-256). ``fileLocation.stream`` is refused: with ``MQTT`` in ``protocols`` Bastion
   makes the stream itself. ``protocols`` is ``["MQTT"]``, ``["HTTP"]`` or both; the
   default here is ``["HTTP"]`` (AWS's is MQTT).
2. *Signature.* Every file is signed — an unsigned file is refused — in one of AWS's three
   ways: ``awsSignerJobId`` (a succeeded signing job of this file, not revoked, whose
   profile is still Active: :meth:`bastion.signing.SigningService.signature_for_ota`);
   ``startSigningJobParameter`` (a signing job started now with that profile, made first
   when ``signingProfileParameter`` is given and the profile does not exist); or
   ``customCodeSigning`` (the caller's ECDSA P-256 / SHA-256 signature and certificate;
   Bastion checks that the signature verifies the file with the certificate's key — the
   *trust* in that certificate is the device's decision, against the CA it pins). A
   file replaced since it was signed is refused.
3. *Stream.* With MQTT, a stream ``AFR_OTA-<uuid>`` (AWS's form) holds the signed files,
   file id = index, each pinned to the SHA-256 that was signed; its id is the document's
   ``streamname``.
4. *Job.* The job ``AFR_OTA-<otaUpdateId>`` (AWS's name) gets the ``afr_ota`` document
   (:mod:`._document`), the targets, target selection, rollout, abort and timeout
   configurations, and ``awsJobPresignedUrlConfig`` as its presigned-URL configuration;
   devices fetch it over the jobs topics or ``iot-jobs-data`` and read the file from the
   stream, or download it through the presigned URL the document's placeholder becomes.
5. *Record.* The update is stored ``CREATE_COMPLETE`` with the request as given (and the
   job and stream ids). Were the id taken meanwhile, the job and the stream just made are
   deleted again; so is the stream when the job is refused.

DeleteOTAUpdate removes the update; with ``forceDeleteAWSJob`` its job too (in progress
or not), with ``deleteStream`` its stream; otherwise they stay.

*A signature revoked later* (RevokeSignature, RevokeSigningProfile: the API calls
:meth:`OtaService.withdraw_revoked` after either) cancels the job of every update one of
whose files carries it — as CancelJob without ``force``, reason code
``SIGNATURE_REVOKED``: no device that has not started the update gets it any more. A
device already in the middle of it (its execution IN_PROGRESS) keeps its execution, as
AWS's CancelJob leaves it, and its stream and presigned URL still serve the (unchanged)
bytes: that device is protected by its own revocation check (Signer's
GetRevocationStatus, with the job document's ``x-bastion-signing-job-arn`` …; see
``examples/ota_verify.py``). Which signatures are revoked is Signer's answer
(:meth:`bastion.signing.SigningService.revocation_status`), asked with the ARNs the job
document carries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.files import FilesError, FileService, is_file_name
from bastion.jobs import JobsError, JobService, JobStatus
from bastion.signing import (
    CERTNAME_PARAMETER,
    FREERTOS_ECDSA,
    CodeSignature,
    SigningError,
    SigningService,
    verify_file_signature,
)
from bastion.signing import NotFoundError as SigningNotFound
from bastion.store import ConflictError as StoreConflict
from bastion.store import InvalidPageTokenError, OtaUpdateRow, Store

from ._document import (
    HTTP,
    MQTT,
    PROFILE_VERSION_KEY,
    SIGNED_AT_KEY,
    SIGNING_JOB_KEY,
    OtaFile,
    ota_job_document,
)
from ._errors import (
    InvalidRequestError,
    OtaError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from ._streams import StreamService, page_size

log = logging.getLogger("bastion.ota")

JOB_PREFIX: Final = "AFR_OTA-"
REVOKED_REASON_CODE: Final = "SIGNATURE_REVOKED"
STREAM_PREFIX: Final = "AFR_OTA-"
STREAM_ID_KEY: Final = "streamId"
CREATE_COMPLETE: Final = "CREATE_COMPLETE"
_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,56}")
_BUCKET: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,254}")
_DEFAULT_BUCKET: Final = "bastion"
_MAX_RESULTS: Final = 250


@dataclass(frozen=True, slots=True)
class OtaUpdate:
    """An OTA update as GetOTAUpdate describes it (``request``: the members as given)."""

    ota_update_id: str
    arn: str
    job_id: str | None
    job_arn: str | None
    status: str
    request: Mapping[str, Any]
    error: Mapping[str, Any] | None
    creation_date: datetime
    last_modified_date: datetime


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{name} must be an object")
    return value


class OtaService:
    """OTA updates over the jobs, code-signing and file services.

    :raises TypeError: ``store`` is not a :class:`~bastion.store.Store`.
    """

    def __init__(self, store: Store, *, jobs: JobService, signing: SigningService,
                 files: FileService, streams: StreamService, account: Account,
                 clock: Clock | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        self._store = store
        self._jobs = jobs
        self._signing = signing
        self._files = files
        self._streams = streams
        self._account = account
        self._clock: Clock = clock if clock is not None else SystemClock()

    def _arn(self, ota_update_id: str) -> str:
        return self._account.arn(f"otaupdate/{ota_update_id}")

    def _update(self, row: OtaUpdateRow) -> OtaUpdate:
        request = dict(row.document)
        files = []
        for item in request.get("files", []):  # the custom signature went in as base64
            item = dict(item)
            custom = (item.get("codeSigning") or {}).get("customCodeSigning")
            if custom and isinstance((custom.get("signature") or {}).get("inlineDocument"),
                                     str):
                custom = dict(custom)
                custom["signature"] = {"inlineDocument": base64.b64decode(
                    custom["signature"]["inlineDocument"])}
                item["codeSigning"] = {**item["codeSigning"], "customCodeSigning": custom}
            files.append(item)
        request["files"] = files
        return OtaUpdate(
            ota_update_id=row.ota_update_id, arn=self._arn(row.ota_update_id),
            job_id=row.job_id,
            job_arn=None if row.job_id is None else self._account.arn(f"job/{row.job_id}"),
            status=row.status, request=request, error=row.error,
            creation_date=row.creation_date, last_modified_date=row.last_modified_date)

    @staticmethod
    def _check_id(ota_update_id: object) -> str:
        if not isinstance(ota_update_id, str) or not _ID.fullmatch(ota_update_id):
            raise InvalidRequestError(
                "otaUpdateId must be 1 to 56 characters of a-z A-Z 0-9 _ - (Bastion names "
                f"its job {JOB_PREFIX}<otaUpdateId>, at most 64 characters)")
        return ota_update_id

    # -- CreateOTAUpdate -------------------------------------------------------------------

    def create_ota_update(
        self, ota_update_id: str, *, targets: Sequence[str], files: Sequence[Mapping[str, Any]],
        role_arn: str, description: str | None = None,
        protocols: Sequence[str] | None = None, target_selection: str | None = None,
        rollout_config: Mapping[str, Any] | None = None,
        presigned_url_config: Mapping[str, Any] | None = None,
        abort_config: Mapping[str, Any] | None = None,
        timeout_config: Mapping[str, Any] | None = None,
        additional_parameters: Mapping[str, str] | None = None,
        requested_by: str = "",
    ) -> OtaUpdate:
        """CreateOTAUpdate (see the module docstring).

        :raises InvalidRequestError: a bad id, protocol, location or signature choice.
        :raises ResourceNotFoundError: a file does not exist.
        :raises ResourceAlreadyExistsError: the id is taken.
        :raises bastion.signing.SigningError: a revoked or unusable signature, a profile
            that is not Active.
        :raises bastion.jobs.JobsError: the job refused (targets, configurations).
        """
        ota_update_id = self._check_id(ota_update_id)
        wanted = list(protocols) if protocols else [HTTP]
        if not set(wanted) <= {HTTP, MQTT} or len(set(wanted)) != len(wanted):
            raise InvalidRequestError("protocols must be [\"MQTT\"], [\"HTTP\"] or both")
        if isinstance(files, str | bytes) or not isinstance(files, Sequence) or not files:
            raise InvalidRequestError("files must list at least one file")
        with self._store.transaction(readonly=True) as uow:
            if uow.ota_updates.get(ota_update_id) is not None:
                raise ResourceAlreadyExistsError(f"OTA update {ota_update_id} already exists")
        resolved = [self._resolve_file(index, _mapping(item, "files[]"), requested_by)
                    for index, item in enumerate(files)]
        request: dict[str, Any] = {
            "description": description, "targets": list(targets), "protocols": wanted,
            "targetSelection": target_selection or "SNAPSHOT",
            "awsJobExecutionsRolloutConfig": rollout_config,
            "awsJobPresignedUrlConfig": presigned_url_config,
            "awsJobAbortConfig": abort_config, "awsJobTimeoutConfig": timeout_config,
            "files": [self._stored_file(item) for item in files], "roleArn": role_arn,
            "additionalParameters": dict(additional_parameters or {})}
        stream_id = None
        if MQTT in wanted:
            stream_id = self._make_stream(ota_update_id, resolved, role_arn)
            request[STREAM_ID_KEY] = stream_id
        try:
            return self._create(ota_update_id, [item for item, _ in resolved], stream_id,
                                request)
        except BaseException:
            if stream_id is not None:
                try:
                    self._streams.delete_stream(stream_id)
                except Exception:  # the refusal matters more; the stream is reported
                    log.exception("OTA update %s: its stream %s could not be deleted",
                                  ota_update_id, stream_id)
            raise

    def _make_stream(self, ota_update_id: str, resolved: Sequence[tuple[OtaFile, str]],
                     role_arn: str) -> str:
        """The stream of an update's files (file id = index), each pinned to the SHA-256
        that was signed."""
        stream_id = STREAM_PREFIX + str(uuid.uuid4())
        self._streams.create_stream(
            stream_id, role_arn=role_arn, description=f"OTA update {ota_update_id}",
            files=[{"fileId": index, "s3Location": {"bucket": item.bucket, "key": item.key,
                                                    "version": digest}}
                   for index, (item, digest) in enumerate(resolved)])
        return stream_id

    def _create(self, ota_update_id: str, resolved: Sequence[OtaFile], stream_id: str | None,
                request: dict[str, Any]) -> OtaUpdate:
        """The job of an update whose files are resolved (and stream made), then its
        record; ``request`` is what is stored."""
        document = ota_job_document(resolved, protocols=request["protocols"],
                                    stream_id=stream_id)
        job_id = JOB_PREFIX + ota_update_id
        presigned: dict[str, Any] = {"roleArn": request["roleArn"]}
        presigned.update(_mapping(request["awsJobPresignedUrlConfig"],
                                  "awsJobPresignedUrlConfig"))
        abort = None
        if request["awsJobAbortConfig"] is not None:
            criteria = _mapping(request["awsJobAbortConfig"],
                                "awsJobAbortConfig").get("abortCriteriaList")
            abort = {"criteriaList": criteria}
        try:
            self._jobs.create_job(
                job_id, targets=request["targets"], document=document,
                description=request["description"] or f"OTA update {ota_update_id}",
                target_selection=request["targetSelection"], presigned_url_config=presigned,
                rollout_config=request["awsJobExecutionsRolloutConfig"], abort_config=abort,
                timeout_config=request["awsJobTimeoutConfig"])
        except JobsError as error:
            if error.aws_error_type == "ResourceAlreadyExistsException":
                raise ResourceAlreadyExistsError(
                    f"OTA update {ota_update_id}: job {job_id} already exists") from None
            raise
        now = self._clock.now().astimezone(UTC)
        row = OtaUpdateRow(ota_update_id=ota_update_id, job_id=job_id,
                           status=CREATE_COMPLETE, document=request, error=None,
                           creation_date=now, last_modified_date=now)
        try:
            with self._store.transaction() as uow:
                uow.ota_updates.insert(row)
        except StoreConflict:
            self._jobs.delete_job(job_id, force=True)
            raise ResourceAlreadyExistsError(
                f"OTA update {ota_update_id} already exists") from None
        log.info("OTA update %s: job %s delivers %s over %s", ota_update_id, job_id,
                 ", ".join(item.key for item in resolved), " and ".join(request["protocols"]))
        return self._update(row)

    @staticmethod
    def _stored_file(item: Mapping[str, Any]) -> dict[str, Any]:
        """A file as given, JSON-ready (a custom signature's bytes as base64)."""
        stored = dict(item)
        signing = _mapping(stored.get("codeSigning"), "codeSigning")
        custom = _mapping(signing.get("customCodeSigning"), "customCodeSigning")
        inline = _mapping(custom.get("signature"), "signature").get("inlineDocument")
        if isinstance(inline, bytes):
            stored["codeSigning"] = {**signing, "customCodeSigning": {
                **custom, "signature": {"inlineDocument": base64.b64encode(inline).decode()}}}
        return stored

    def _location(self, item: Mapping[str, Any]) -> tuple[str, str, str | None] | None:
        location = _mapping(item.get("fileLocation"), "fileLocation")
        if location.get("stream") is not None:
            raise InvalidRequestError("fileLocation.stream is not supported: name the file "
                                      "by s3Location (with MQTT, Bastion makes the stream)")
        s3 = location.get("s3Location")
        if s3 is None:
            return None
        s3 = _mapping(s3, "s3Location")
        bucket, key, version = s3.get("bucket"), s3.get("key"), s3.get("version")
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise InvalidRequestError("s3Location.bucket must be a bucket name")
        if not is_file_name(key):
            raise InvalidRequestError(f"s3Location.key {key!r} is not a Bastion file name")
        assert isinstance(key, str)
        if version is not None and not isinstance(version, str):
            raise InvalidRequestError("s3Location.version must be a string")
        return bucket, key, version

    def _current(self, key: str) -> tuple[int, str]:
        try:
            row = self._files.describe(key)
        except FilesError as error:
            raise ResourceNotFoundError(f"File {key}: {error.message}") from None
        return row.size, row.sha256

    def _resolve_file(self, index: int, item: Mapping[str, Any],
                      requested_by: str) -> tuple[OtaFile, str]:
        """The file's entry of the document, and the SHA-256 of the bytes signed."""
        name = item.get("fileName")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"files[{index}].fileName must be given (the "
                                      "job document's filepath)")
        file_type = item.get("fileType")
        located = self._location(item)
        signing = _mapping(item.get("codeSigning"), "codeSigning")
        ways = [way for way in ("awsSignerJobId", "startSigningJobParameter",
                                "customCodeSigning") if signing.get(way) is not None]
        if len(ways) != 1:
            raise InvalidRequestError(
                f"files[{index}].codeSigning must give exactly one of awsSignerJobId, "
                "startSigningJobParameter, customCodeSigning: Bastion delivers signed "
                "files only")
        if ways[0] == "customCodeSigning":
            if located is None:
                raise InvalidRequestError(f"files[{index}].fileLocation.s3Location must "
                                          "name the file")
            bucket, key, version = located
            signature = self._custom(index, signing["customCodeSigning"], key, version)
        else:
            if ways[0] == "awsSignerJobId":
                signature = self._signing.signature_for_ota(signing["awsSignerJobId"])
            else:
                if located is None:
                    raise InvalidRequestError(f"files[{index}].fileLocation.s3Location must "
                                              "name the file to sign")
                signature = self._sign_now(signing["startSigningJobParameter"], located,
                                           requested_by)
            bucket = _DEFAULT_BUCKET
            if located is not None:
                bucket, key, version = located
                if key != signature.file_name:
                    raise InvalidRequestError(
                        f"files[{index}]: the signing job signed file {signature.file_name}, "
                        f"not {key}")
            _, digest = self._current(signature.file_name)
            if digest != signature.file_sha256:
                raise InvalidRequestError(f"File {signature.file_name} changed after it was "
                                          "signed: sign it again")
        return OtaFile(file_name=name, file_size=signature.file_size, bucket=bucket,
                       key=signature.file_name, signature=signature.signature,
                       certificate_pem=signature.certificate_pem,
                       certificate_path=signature.certificate_path,
                       file_type=file_type if isinstance(file_type, int) else None,
                       signing_job_arn=signature.job_arn,
                       profile_version_arn=signature.profile_version_arn,
                       signed_at=signature.signed_at), \
            signature.file_sha256

    def _sign_now(self, parameter: object, located: tuple[str, str, str | None],
                  requested_by: str) -> CodeSignature:
        start = _mapping(parameter, "startSigningJobParameter")
        profile_name = start.get("signingProfileName")
        if not isinstance(profile_name, str):
            raise InvalidRequestError("startSigningJobParameter.signingProfileName must be "
                                      "given")
        profile_parameter = start.get("signingProfileParameter")
        if profile_parameter is not None:
            try:
                self._signing.get_profile(profile_name)
            except SigningNotFound:
                given = _mapping(profile_parameter, "signingProfileParameter")
                path = given.get("certificatePathOnDevice")
                self._signing.put_profile(
                    profile_name, platform_id=given.get("platform") or
                    FREERTOS_ECDSA.platform_id,
                    certificate_arn=given.get("certificateArn"),
                    signing_parameters={CERTNAME_PARAMETER: path} if path else None)
        bucket, key, version = located
        _, digest = self._current(key)
        if version is not None and version != digest:
            raise InvalidRequestError(f"s3Location.version must be the SHA-256 of file {key} "
                                      f"({digest})")
        destination = _mapping(start.get("destination"), "destination")
        s3_destination = _mapping(destination.get("s3Destination"), "s3Destination")
        job = self._signing.start_job(
            source={"s3": {"bucketName": bucket, "key": key, "version": digest}},
            destination={"s3": {"bucketName": s3_destination.get("bucket"),
                                "prefix": s3_destination.get("prefix")}}
            if s3_destination else {},
            profile_name=profile_name, client_request_token=str(uuid.uuid4()),
            requested_by=requested_by)
        return self._signing.signature_for_ota(job.job_id)

    def _custom(self, index: int, custom: object, key: str,
                version: str | None) -> CodeSignature:
        given = _mapping(custom, "customCodeSigning")
        hash_algorithm = str(given.get("hashAlgorithm") or "").upper().replace("-", "")
        signature_algorithm = str(given.get("signatureAlgorithm") or "").upper()
        if hash_algorithm != "SHA256" or signature_algorithm != "ECDSA":
            raise InvalidRequestError(
                f"files[{index}].customCodeSigning must be hashAlgorithm SHA256 and "
                "signatureAlgorithm ECDSA (P-256): Bastion delivers sig-sha256-ecdsa only")
        signature = _mapping(given.get("signature"), "signature").get("inlineDocument")
        chain = _mapping(given.get("certificateChain"), "certificateChain")
        pem = chain.get("inlineDocument")
        if not isinstance(signature, bytes) or not signature:
            raise InvalidRequestError("customCodeSigning.signature.inlineDocument must hold "
                                      "the DER signature")
        try:
            certificate = x509.load_pem_x509_certificates(str(pem).encode("ascii"))[0]
        except (ValueError, UnicodeEncodeError):
            raise InvalidRequestError("customCodeSigning.certificateChain.inlineDocument "
                                      "must hold the signing certificate (PEM)") from None
        try:
            data = self._files.read(key)
        except FilesError as error:
            raise ResourceNotFoundError(f"File {key}: {error.message}") from None
        digest = hashlib.sha256(data).hexdigest()
        if version is not None and version != digest:
            raise InvalidRequestError(f"s3Location.version must be the SHA-256 of file {key}")
        try:
            verify_file_signature(certificate, data, signature)
        except ValueError as error:
            raise InvalidRequestError(f"files[{index}].customCodeSigning: {error}") from None
        return CodeSignature(signature=signature, certificate_pem=str(pem),
                             certificate_path=str(chain.get("certificateName") or ""),
                             file_name=key, file_size=len(data), file_sha256=digest)

    # -- the rest --------------------------------------------------------------------------

    def get_ota_update(self, ota_update_id: str) -> OtaUpdate:
        """:raises ResourceNotFoundError: no such update."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.ota_updates.get(ota_update_id) if isinstance(ota_update_id, str) \
                else None
        if row is None:
            raise ResourceNotFoundError(f"OTA update {ota_update_id} does not exist")
        return self._update(row)

    def list_ota_updates(self, *, status: str | None = None, max_results: int | None = None,
                         next_token: str | None = None) -> tuple[list[OtaUpdate], str | None]:
        """:raises InvalidRequestError: a bad page size or token."""
        limit = page_size(max_results)
        try:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.ota_updates.list_page(limit=limit, token=next_token,
                                                        status=status)
        except InvalidPageTokenError:
            raise InvalidRequestError("nextToken is not valid") from None
        return [self._update(row) for row in rows], token

    def withdraw_revoked(self) -> list[str]:
        """Cancel (without ``force``) the job of every OTA update one of whose signatures
        is now revoked; see the module docstring.

        :returns: the ids of the updates whose jobs this call canceled.
        """
        withdrawn: list[str] = []
        token: str | None = None
        while True:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.ota_updates.list_page(limit=_MAX_RESULTS, token=token)
            for row in rows:
                if row.job_id is not None and self._withdraw(row.ota_update_id, row.job_id):
                    withdrawn.append(row.ota_update_id)
            if token is None:
                return withdrawn

    def _withdraw(self, ota_update_id: str, job_id: str) -> bool:
        try:
            if self._jobs.describe_job(job_id).status is not JobStatus.IN_PROGRESS:
                return False
            document = json.loads(self._jobs.get_job_document(job_id))
        except JobsError:
            return False  # deleted meanwhile
        revoked = self._revoked_in(document)
        if not revoked:
            return False
        try:
            self._jobs.cancel_job(job_id, reason_code=REVOKED_REASON_CODE,
                                  comment=f"Signature revoked: {revoked}"[:2028])
        except JobsError:
            return False  # completed or deleted meanwhile
        log.warning("OTA update %s: its job %s is canceled: the signature of %s is revoked",
                    ota_update_id, job_id, revoked)
        return True

    def _revoked_in(self, document: object) -> str | None:
        """A revoked signing job or profile version among the document's files."""
        ota = document.get("afr_ota") if isinstance(document, dict) else None
        files = ota.get("files") if isinstance(ota, dict) else None
        for entry in files if isinstance(files, list) else []:
            if not isinstance(entry, dict):
                continue
            job_arn, version_arn, signed_at = (entry.get(SIGNING_JOB_KEY),
                                               entry.get(PROFILE_VERSION_KEY),
                                               entry.get(SIGNED_AT_KEY))
            if not (isinstance(job_arn, str) and isinstance(version_arn, str)
                    and isinstance(signed_at, str)):
                continue  # a custom signature: not Signer's to revoke
            try:
                revoked = self._signing.revocation_status(
                    signature_timestamp=datetime.fromisoformat(signed_at),
                    platform_id=FREERTOS_ECDSA.platform_id, profile_version_arn=version_arn,
                    job_arn=job_arn, certificate_hashes=[])
            except (ValueError, SigningError):
                continue  # not a document Bastion wrote
            if revoked:
                return revoked[0]
        return None

    def delete_ota_update(self, ota_update_id: str, *, force_delete_job: bool = False,
                          delete_stream: bool = False) -> None:
        """DeleteOTAUpdate; with ``force_delete_job`` its job goes too, with
        ``delete_stream`` its stream.

        :raises ResourceNotFoundError: no such update.
        """
        update = self.get_ota_update(ota_update_id)
        stream_id = update.request.get(STREAM_ID_KEY)
        if delete_stream and isinstance(stream_id, str):
            try:
                self._streams.delete_stream(stream_id)
            except OtaError as error:
                if error.http_status != 404:
                    raise
        if force_delete_job and update.job_id is not None:
            try:
                self._jobs.delete_job(update.job_id, force=True)
            except JobsError as error:
                if error.http_status != 404:
                    raise
        with self._store.transaction() as uow:
            if not uow.ota_updates.delete(ota_update_id):
                raise ResourceNotFoundError(f"OTA update {ota_update_id} does not exist")
