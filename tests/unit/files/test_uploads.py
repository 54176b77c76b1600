"""Uploads over HTTP: the writer (to disk, hashed, capped, discarded whole), the upload
paths and the names device uploads are stored under."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.files import FileTooLargeError, FileWriter, is_file_name, upload_file_name
from bastion.files._uploads import parse_upload_path, upload_path

THINGS = st.from_regex(r"[a-zA-Z0-9:_-]{1,128}", fullmatch=True)
JOBS = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)


def test_the_writer_hashes_and_stops_at_its_limit(tmp_path: Path) -> None:
    writer = FileWriter(tmp_path, 10)
    writer.write(b"12345")
    writer.write(b"67890")
    with pytest.raises(FileTooLargeError):
        writer.write(b"!")
    assert (writer.size, writer.sha256) == (10, hashlib.sha256(b"1234567890").hexdigest())
    writer.finish(tmp_path / "done")
    assert (tmp_path / "done").read_bytes() == b"1234567890"
    assert (tmp_path / "done").stat().st_mode & 0o777 == 0o600
    discarded = FileWriter(tmp_path, 10)
    discarded.write(b"half")
    discarded.discard()
    discarded.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done"]  # no .part left


@given(JOBS, THINGS, st.integers(1, 10**9))
def test_upload_paths_round_trip_and_names_are_file_names(job: str, thing: str,
                                                          number: int) -> None:
    assert parse_upload_path(upload_path(job, thing, number)) == (job, thing, number)
    name = upload_file_name(job, thing, number)
    assert name.startswith("device-") and len(name) <= 255
    assert is_file_name(name)


def test_thing_names_with_colons_stay_distinct() -> None:
    assert upload_file_name("j", "a:b", 1) != upload_file_name("j", "a_b", 1)
    assert parse_upload_path("/_bastion/uploads/j/thing/x") is None
    assert parse_upload_path("/_bastion/uploads/j/thing") is None
    assert parse_upload_path("/_bastion/files/j/thing/1") is None
