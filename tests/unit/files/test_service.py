"""The file service: uploads, the sealed signing key, downloads with presigned URLs, and
job documents."""

from __future__ import annotations

import hashlib
import json
import stat
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bastion.files import (
    SIGNING_KEY_SECRET,
    FileService,
    InvalidFileError,
    SignatureRejectedError,
    UnknownFileError,
)
from bastion.pki import Keystore, SecretTamperedError
from bastion.store import Store
from support.clock import ManualClock

from .conftest import BASE_URL


def unique(prefix: str = "fw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.bin"


def _get(files: FileService, url: str) -> bytes:
    parts = urlsplit(url)
    return files.download(parts.path, parts.query)[1]


def test_upload_keeps_bytes_private_and_describes_them(files: FileService) -> None:
    name, data = unique(), b"\x7fELF firmware" * 100
    row = files.upload(name, data)
    assert (row.name, row.size, row.sha256) == (name, len(data), hashlib.sha256(data).hexdigest())
    assert files.describe(name) == row
    assert files.read(name) == data
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((files.directory / name).stat().st_mode) == 0o600
    assert [p.name for p in files.directory.iterdir()] == [name]  # no temporary left


def test_overwrite_needs_consent(files: FileService, clock: ManualClock) -> None:
    name = unique()
    first = files.upload(name, b"one")
    with pytest.raises(InvalidFileError, match="exists"):
        files.upload(name, b"two")
    assert files.read(name) == b"one"
    clock.advance(timedelta(minutes=5))
    second = files.upload(name, b"two", overwrite=True)
    assert files.read(name) == b"two"
    assert second.created_at == first.created_at < second.last_modified_date


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "x" * 256, "a b", "é.bin"])
def test_bad_names_are_refused(files: FileService, name: str) -> None:
    with pytest.raises(InvalidFileError):
        files.upload(name, b"x")
    with pytest.raises(InvalidFileError):
        files.describe(name)


def test_misuse_is_a_type_error(files: FileService) -> None:
    with pytest.raises(TypeError):
        files.upload(unique(), "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        files.upload(7, b"x")  # type: ignore[arg-type]


def test_unknown_files(files: FileService) -> None:
    with pytest.raises(UnknownFileError):
        files.read(unique())


def test_the_signing_key_is_sealed_in_the_store(files: FileService, store: Store,
                                               keystore: Keystore, clock: ManualClock,
                                               tmp_path: Path) -> None:
    name = unique()
    files.upload(name, b"data")
    url = files.presigned_url(name, 60)
    with store.transaction(readonly=True) as uow:
        sealed = uow.secrets.get(SIGNING_KEY_SECRET)
    assert sealed is not None
    # Another process with the same master key verifies the same URLs.
    other = FileService(store, files.directory, keystore, clock=clock)
    assert _get(other, url) == b"data"
    # Without the master key the sealed key cannot be used.
    stranger = FileService(store, tmp_path / "elsewhere", Keystore.generate(), clock=clock)
    with pytest.raises(SecretTamperedError):
        stranger.signer()


def test_presigned_download_until_expiry(files: FileService, clock: ManualClock) -> None:
    name, data = unique(), bytes(range(256)) * 4
    files.upload(name, data)
    url = files.presigned_url(name, 60)
    assert url.startswith(f"{BASE_URL}/_bastion/files/{name}?X-Bastion-Expires=")
    assert _get(files, url) == data
    clock.advance(timedelta(seconds=59))
    assert _get(files, url) == data
    clock.advance(timedelta(seconds=1))
    with pytest.raises(SignatureRejectedError) as refused:
        _get(files, url)
    assert refused.value.expired and refused.value.http_status == 403


def test_tampered_and_unsigned_downloads_are_refused(files: FileService) -> None:
    first, second = unique(), unique()
    files.upload(first, b"1")
    files.upload(second, b"2")
    url = files.presigned_url(first, 3600)
    with pytest.raises(SignatureRejectedError):
        _get(files, url.replace(first, second))  # another file with this signature
    with pytest.raises(SignatureRejectedError):
        _get(files, url[:-4] + ("0000" if not url.endswith("0000") else "1111"))
    with pytest.raises(SignatureRejectedError):
        _get(files, f"{BASE_URL}/_bastion/files/{first}")


def test_a_signed_url_of_a_missing_file_is_404(files: FileService) -> None:
    url = files.presigned_url(unique(), 60)
    with pytest.raises(UnknownFileError) as missing:
        _get(files, url)
    assert missing.value.http_status == 404


def test_presigned_url_needs_a_base_url_and_a_positive_lifetime(
        store: Store, tmp_path: Path, keystore: Keystore, files: FileService) -> None:
    bare = FileService(store, tmp_path, keystore)
    with pytest.raises(RuntimeError):
        bare.presigned_url("fw.bin")
    with pytest.raises(ValueError):
        files.presigned_url("fw.bin", 0)
    with pytest.raises(ValueError):
        bare.base_url = "https://host:1/path"


# -- job documents -------------------------------------------------------------------------


def test_documents_from_files(files: FileService) -> None:
    name = unique("job")
    files.upload(name, json.dumps({"operation": "reboot"}).encode())
    for source in (f"{BASE_URL}/_bastion/files/{name}", f"s3://my-bucket/{name}",
                   f"https://s3.amazonaws.com/my-bucket/{name}"):
        assert json.loads(files.fetch_document(source)) == {"operation": "reboot"}
    with pytest.raises(InvalidFileError, match="not a Bastion file URL"):
        files.fetch_document("https://example.com/doc.json")
    with pytest.raises(UnknownFileError):
        files.fetch_document(f"s3://b/{unique()}")
    big = unique("big")
    files.upload(big, b" " * (32 * 1024 + 1))
    with pytest.raises(InvalidFileError, match="exceeds"):
        files.fetch_document(f"s3://b/{big}")
    binary = unique("bin")
    files.upload(binary, b"\xff\xfe")
    with pytest.raises(InvalidFileError, match="UTF-8"):
        files.fetch_document(f"s3://b/{binary}")


def test_placeholders_are_checked_and_presigned(files: FileService, clock: ManualClock) -> None:
    name = unique()
    files.upload(name, b"firmware")
    document = json.dumps({"url": f"${{aws:iot:s3-presigned-url:s3://b/{name}}}"})
    files.check_document(document)
    with pytest.raises(UnknownFileError):
        files.check_document(document.replace(name, unique()))
    with pytest.raises(InvalidFileError, match="designates no Bastion file"):
        files.check_document('{"u": "${aws:iot:s3-presigned-url:https://example.com/x}"}')
    url = json.loads(files.presign_document(document, 120))["url"]
    assert url.startswith(f"{BASE_URL}/_bastion/files/{name}?")
    assert _get(files, url) == b"firmware"
    clock.advance(timedelta(seconds=120))
    with pytest.raises(SignatureRejectedError):
        _get(files, url)


def test_without_a_base_url_placeholders_stay(store: Store, tmp_path: Path,
                                             keystore: Keystore) -> None:
    document = '{"url": "${aws:iot:s3-presigned-url:s3://b/fw.bin}"}'
    assert FileService(store, tmp_path, keystore).presign_document(document, 60) == document
