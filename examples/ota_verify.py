"""What a device checks before it installs a file of an OTA job (``afr_ota``), however the
file came (presigned HTTPS: ``ota_device.py``; MQTT streams: ``ota_mqtt_device.py``).

For one file entry of the job document and the bytes received:

1. the size is the announced ``filesize``;
2. the file is signed: ``sig-sha256-ecdsa`` is there and is base64;
3. the signing certificate — carried in the job as ``x-bastion-certificate``, or kept by
   the device at ``certfile`` — is trusted only as a leaf of the code-signing CA the
   device **pins** (installed with it, never taken from the network): issued by that CA,
   valid now, not a CA, extended key usage ``codeSigning``; and, when the device expects
   one signing profile (``signing_profile``), its subject CN is that profile's name
   (Bastion's certificate of a profile whose key it generated);
4. the signature (ECDSA P-256, SHA-256) verifies the bytes with that certificate's key;
5. when the device checks revocation (a :class:`RevocationCheck`, from
   ``--role-alias`` / ``--credentials-endpoint`` / ``--signer-endpoint``): the signature
   is not revoked. The job names the AWS Signer job that made it
   (``x-bastion-signing-job-arn``), the profile version (``x-bastion-signing-profile-
   version-arn``) and the time (``x-bastion-signed-at``); the device trades its own
   certificate for temporary credentials at the credentials provider (a role alias, as
   any AWS IoT device reaches AWS APIs) and asks Signer's ``GetRevocationStatus``. The
   signing job revoked (RevokeSignature), or the profile version revoked effective at or
   before the signature (RevokeSigningProfile): refused. A file with no signing job to ask
   about, or an answer that does not come, is refused too (fail closed).

Any failure raises :class:`Refused`, whose text goes into the job's
``statusDetails.reason``. :func:`install` writes the files only once every one of them
passed. Needs ``cryptography`` (and ``boto3`` to check revocation); nothing of Bastion.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import ssl
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_FILE_BYTES = 16 * 1024 * 1024
PLATFORM = "AmazonFreeRTOS-Default"  # AWS Signer's platform of sig-sha256-ecdsa
SIGNING_JOB_KEY = "x-bastion-signing-job-arn"
PROFILE_VERSION_KEY = "x-bastion-signing-profile-version-arn"
SIGNED_AT_KEY = "x-bastion-signed-at"


class Refused(Exception):
    """Why an update is not installed (goes into the job's ``statusDetails.reason``)."""


def check_certificate(certificate: x509.Certificate, pinned_ca: x509.Certificate,
                      signing_profile: str | None = None) -> None:
    """Trust the signing certificate only as the pinned code-signing CA's leaf (of the
    expected signing profile, when one is given)."""
    try:
        certificate.verify_directly_issued_by(pinned_ca)
    except (ValueError, TypeError, InvalidSignature):
        raise Refused("signing certificate not issued by the pinned code-signing CA") \
            from None
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Refused("signing certificate not valid now")
    try:
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise Refused("signing certificate is a CA certificate")
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise Refused("signing certificate is not for code signing") from None
    if ExtendedKeyUsageOID.CODE_SIGNING not in usage:
        raise Refused("signing certificate is not for code signing")
    if signing_profile is not None:
        names = [attribute.value for attribute in
                 certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [signing_profile]:
            raise Refused(f"signed by another signing profile ({', '.join(map(str, names))}),"
                          f" not {signing_profile}")


def check_signature(certificate: x509.Certificate, data: bytes, signature: bytes) -> None:
    public_key = certificate.public_key()
    if not (isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)):
        raise Refused("signing key is not ECDSA P-256")
    try:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused("signature does not match the file (tampered?)") from None


class RevocationUnknown(Exception):
    """Whether a signature is revoked could not be learned (refused, or no answer)."""


class RevocationCheck:
    """AWS Signer's ``GetRevocationStatus``, asked with temporary credentials the device
    gets for its own certificate from the credentials provider (``role_alias``).

    :param credentials_endpoint: the credentials provider's ``https://host:port``.
    :param signer_endpoint: where Signer's API answers (Bastion's API URL).
    """

    def __init__(self, *, credentials_endpoint: str, role_alias: str, signer_endpoint: str,
                 thing: str, cert: Path, key: Path, root_ca: Path,
                 timeout: float = 30.0) -> None:
        self._credentials_url = (f"{credentials_endpoint.rstrip('/')}/role-aliases/"
                                 f"{urllib.parse.quote(role_alias, safe='')}/credentials")
        self._signer_endpoint = signer_endpoint
        self._thing = thing
        self._root_ca = str(root_ca)
        self._context = ssl.create_default_context(cafile=self._root_ca)
        self._context.load_cert_chain(str(cert), str(key))
        self._timeout = timeout

    def _credentials(self) -> dict[str, str]:
        request = urllib.request.Request(self._credentials_url,
                                         headers={"x-amzn-iot-thingname": self._thing})
        with urllib.request.urlopen(request, context=self._context,
                                    timeout=self._timeout) as answer:
            return dict(json.loads(answer.read())["credentials"])

    def revoked(self, job_arn: str, profile_version_arn: str, signed_at: datetime,
                certificate: x509.Certificate) -> list[str]:
        """The revoked entities among the signing job, the profile version and the
        signing certificate (by the SHA-256 of its DER) for a signature of ``signed_at``.

        :raises RevocationUnknown: the credentials provider or Signer refused or did not
            answer.
        """
        import boto3  # only a device that checks revocation needs it
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._ask(boto3, Config, job_arn, profile_version_arn, signed_at,
                             certificate)
        except (OSError, ValueError, KeyError, BotoCoreError, ClientError) as error:
            raise RevocationUnknown(str(error)) from None

    def _ask(self, boto3: Any, config: Any, job_arn: str, profile_version_arn: str,
             signed_at: datetime, certificate: x509.Certificate) -> list[str]:
        credentials = self._credentials()
        signer = boto3.client(
            "signer", endpoint_url=self._signer_endpoint, region_name=job_arn.split(":")[3],
            aws_access_key_id=credentials["accessKeyId"],
            aws_secret_access_key=credentials["secretAccessKey"],
            aws_session_token=credentials["sessionToken"], verify=self._root_ca,
            # GetRevocationStatus has Signer's ``data-`` host prefix: not for an address.
            config=config(inject_host_prefix=False, connect_timeout=self._timeout,
                          read_timeout=self._timeout, retries={"max_attempts": 2}))
        digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER))
        answer = signer.get_revocation_status(
            signatureTimestamp=signed_at, platformId=PLATFORM,
            profileVersionArn=profile_version_arn, jobArn=job_arn,
            certificateHashes=[digest.hexdigest()])
        return [str(entity) for entity in answer.get("revokedEntities", [])]


def add_revocation_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of a device that checks revocation (all three, or none)."""
    parser.add_argument("--role-alias",
                        help="check each signature's revocation with AWS Signer, with "
                             "credentials of this role alias")
    parser.add_argument("--credentials-endpoint",
                        help="the credentials provider (https://host:port)")
    parser.add_argument("--signer-endpoint", help="AWS Signer's API (https://host:port)")


def revocation_check_from(args: argparse.Namespace) -> RevocationCheck | None:
    """The :class:`RevocationCheck` the options ask for (``None``: none)."""
    given = [args.role_alias, args.credentials_endpoint, args.signer_endpoint]
    if not any(given):
        return None
    if not all(given):
        raise SystemExit("--role-alias, --credentials-endpoint and --signer-endpoint go "
                         "together")
    return RevocationCheck(
        credentials_endpoint=args.credentials_endpoint, role_alias=args.role_alias,
        signer_endpoint=args.signer_endpoint, thing=args.thing, cert=Path(args.cert),
        key=Path(args.key), root_ca=Path(args.root_ca), timeout=args.timeout)


def check_revocation(entry: dict[str, Any], certificate: x509.Certificate,
                     revocations: RevocationCheck) -> None:
    """Refuse a signature revoked since it was made (fail closed)."""
    job_arn, profile_version_arn, signed_at = (
        entry.get(SIGNING_JOB_KEY), entry.get(PROFILE_VERSION_KEY), entry.get(SIGNED_AT_KEY))
    if not (isinstance(job_arn, str) and isinstance(profile_version_arn, str)
            and isinstance(signed_at, str)):
        raise Refused("no signing job to check the signature's revocation against")
    try:
        moment = datetime.fromisoformat(signed_at)
    except ValueError:
        raise Refused(f"{SIGNED_AT_KEY} is not a time") from None
    if moment.tzinfo is None:
        raise Refused(f"{SIGNED_AT_KEY} has no time zone")
    try:
        revoked = revocations.revoked(job_arn, profile_version_arn, moment, certificate)
    except RevocationUnknown as error:  # no answer is no assurance: refuse
        raise Refused(f"could not check the signature's revocation: {error}") from None
    if job_arn in revoked:
        raise Refused(f"the signature is revoked (signing job {job_arn.rsplit('/', 1)[-1]})")
    if profile_version_arn in revoked:
        raise Refused(f"the signing profile version {profile_version_arn.split('/', 2)[-1]} "
                      f"is revoked for signatures made at {signed_at}")
    if revoked:
        raise Refused(f"the signing certificate is revoked ({', '.join(revoked)})")


def verify_file(entry: dict[str, Any], data: bytes, pinned_ca: x509.Certificate,
                signing_profile: str | None = None,
                revocations: RevocationCheck | None = None) -> None:
    """Everything that must hold before a received file is installed."""
    if len(data) != entry.get("filesize"):
        raise Refused(f"size {len(data)} is not the announced {entry.get('filesize')}")
    encoded = entry.get("sig-sha256-ecdsa")
    if not isinstance(encoded, str):
        raise Refused("the file is not signed (no sig-sha256-ecdsa)")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise Refused("the signature is not base64") from None
    pem = entry.get("x-bastion-certificate")
    if not isinstance(pem, str):
        certfile = Path(str(entry.get("certfile") or ""))
        if not certfile.is_file():
            raise Refused("no signing certificate (none in the job, none at certfile)")
        pem = certfile.read_text()
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        raise Refused("the signing certificate does not parse") from None
    check_certificate(certificate, pinned_ca, signing_profile)
    check_signature(certificate, data, signature)
    if revocations is not None:
        check_revocation(entry, certificate, revocations)


def ota_files(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The file entries of an OTA job document."""
    ota = document.get("afr_ota")
    if not isinstance(ota, dict) or not ota.get("files"):
        raise Refused("not an OTA job (no afr_ota files)")
    return [entry for entry in ota["files"] if isinstance(entry, dict)]


def install(checked: Sequence[tuple[dict[str, Any], bytes]], install_dir: Path) -> list[Path]:
    """Write every checked file (entry, bytes) under ``install_dir`` (named after its
    ``filepath``), each whole or not at all."""
    install_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry, data in checked:
        path = install_dir / Path(str(entry.get("filepath") or "update.bin")).name
        temporary = path.with_suffix(path.suffix + ".part")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        paths.append(path)
    return paths
