"""The ``afr_ota`` job document: AWS's keys, one entry per file in order, the signature as
base64 of the DER bytes, the file named by a presigned-URL placeholder the file service
recognises (so devices get a URL, never the stored document)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.files import file_name_of, placeholder_urls
from bastion.ota import OtaFile, ota_job_document

NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True)
FILES = st.builds(
    OtaFile, file_name=st.text(min_size=1, max_size=40), file_size=st.integers(0, 2**31),
    bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{2,20}", fullmatch=True), key=NAMES,
    signature=st.binary(min_size=8, max_size=72),
    certificate_pem=st.text(max_size=60), certificate_path=st.text(max_size=30),
    file_type=st.none() | st.integers(0, 255))


@given(st.lists(FILES, min_size=1, max_size=4))
def test_every_file_is_described_as_aws_does(files: list[OtaFile]) -> None:
    document = ota_job_document(files)
    parsed = json.loads(document)
    ota = parsed["afr_ota"]
    assert ota["protocols"] == ["HTTP"]
    assert len(ota["files"]) == len(files)
    for index, (entry, item) in enumerate(zip(ota["files"], files, strict=True)):
        assert entry["fileid"] == index
        assert entry["filepath"] == item.file_name
        assert entry["filesize"] == item.file_size
        assert entry["certfile"] == item.certificate_path
        assert entry["auth_scheme"] == "aws.s3.presigned"
        assert base64.b64decode(entry["sig-sha256-ecdsa"]) == item.signature
        assert entry["x-bastion-certificate"] == item.certificate_pem
        assert ("fileType" in entry) == (item.file_type is not None)
    # Each URL is a placeholder designating the file, in order.
    urls = placeholder_urls(document)
    assert [file_name_of(url) for url in urls] == [item.key for item in files]


def test_no_files_is_no_document() -> None:
    with pytest.raises(ValueError):
        ota_job_document([])


@given(st.lists(FILES, min_size=1, max_size=4), st.booleans())
def test_mqtt_names_the_stream_and_https_the_urls(files: list[OtaFile], both: bool) -> None:
    protocols = ["MQTT", "HTTP"] if both else ["MQTT"]
    document = ota_job_document(files, protocols=protocols, stream_id="AFR_OTA-s1")
    ota = json.loads(document)["afr_ota"]
    assert ota["protocols"] == protocols
    assert ota["streamname"] == "AFR_OTA-s1"
    assert [entry["fileid"] for entry in ota["files"]] == list(range(len(files)))
    for entry in ota["files"]:
        assert ("update_data_url" in entry) == both == ("auth_scheme" in entry)
    assert len(placeholder_urls(document)) == (len(files) if both else 0)


def test_mqtt_needs_a_stream_and_https_has_none() -> None:
    item = OtaFile("a", 1, "b", "a", b"sig", "pem", "/c")
    with pytest.raises(ValueError):
        ota_job_document([item], protocols=["MQTT"])
    with pytest.raises(ValueError):
        ota_job_document([item], protocols=["HTTP"], stream_id="s")
    with pytest.raises(ValueError):
        ota_job_document([item], protocols=["FTP"])
    assert "streamname" not in ota_job_document([item])


def test_a_signer_signature_names_what_get_revocation_status_asks() -> None:
    """The signing job, profile version and time (UTC) go with a Signer-made signature;
    a custom one names none."""
    signed_at = datetime(2026, 12, 8, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    job = "arn:aws:signer:us-east-1:123456789012:/signing-jobs/j1"
    version = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/p/v1"
    item = OtaFile("a", 1, "b", "a", b"sig", "pem", "/c", signing_job_arn=job,
                   profile_version_arn=version, signed_at=signed_at)
    [entry] = json.loads(ota_job_document([item]))["afr_ota"]["files"]
    assert entry["x-bastion-signing-job-arn"] == job
    assert entry["x-bastion-signing-profile-version-arn"] == version
    assert entry["x-bastion-signed-at"] == "2026-12-08T01:04:05.678901+00:00"
    [custom] = json.loads(ota_job_document([OtaFile("a", 1, "b", "a", b"sig", "pem", "/c")]))[
        "afr_ota"]["files"]
    assert not [key for key in custom if key.startswith("x-bastion-sign")]
