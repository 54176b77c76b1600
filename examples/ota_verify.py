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
4. the signature (ECDSA P-256, SHA-256) verifies the bytes with that certificate's key.

Any failure raises :class:`Refused`, whose text goes into the job's
``statusDetails.reason``. :func:`install` writes the files only once every one of them
passed. Needs ``cryptography``; nothing of Bastion.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_FILE_BYTES = 16 * 1024 * 1024


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


def verify_file(entry: dict[str, Any], data: bytes, pinned_ca: x509.Certificate,
                signing_profile: str | None = None) -> None:
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
