"""The streams repository on both backends: rows round-trip (files in order), an id is
taken once, an update applies only over the version it read, listings page both ways;
and a job execution's upload is recorded once (what makes its URL single-use)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bastion.store import ConflictError, FileUploadRow, Store, StreamFileRow, StreamRow

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _stream(stream_id: str, version: int = 1) -> StreamRow:
    return StreamRow(stream_id=stream_id, version=version, description="fw 2.1",
                     role_arn="arn:aws:iam::123456789012:role/ota",
                     files=(StreamFileRow(3, "firmware", "fw.bin", 1000, "a" * 64),
                            StreamFileRow(0, "firmware", "boot.bin", 10, "b" * 64)),
                     created_at=NOW, last_updated_at=NOW)


def test_streams_round_trip_and_update_over_their_version(store: Store) -> None:
    with store.transaction() as uow:
        uow.streams.insert(_stream("s1"))
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.streams.insert(_stream("s1"))
    with store.transaction(readonly=True) as uow:
        assert uow.streams.get("s1") == _stream("s1")
        assert uow.streams.get("s2") is None
    newer = dataclasses.replace(_stream("s1", 2), description=None,
                                files=(StreamFileRow(0, "b", "other.bin", 5, "c" * 64),),
                                last_updated_at=NOW + timedelta(hours=1))
    with store.transaction() as uow:
        assert not uow.streams.update(newer, expected_version=2)  # another update won
        assert uow.streams.update(newer, expected_version=1)
    with store.transaction() as uow:
        assert uow.streams.get("s1") == newer
        assert uow.streams.delete("s1")
        assert not uow.streams.delete("s1")


def test_streams_list_in_pages_both_ways(store: Store) -> None:
    with store.transaction() as uow:
        for name in ("b", "a", "c"):
            uow.streams.insert(_stream(f"list-{name}"))
    seen: list[str] = []
    token = None
    with store.transaction(readonly=True) as uow:
        while True:
            rows, token = uow.streams.list_page(limit=2, token=token)
            seen += [row.stream_id for row in rows if row.stream_id.startswith("list-")]
            if token is None:
                break
        backwards, _ = uow.streams.list_page(limit=250, ascending=False)
    assert seen == ["list-a", "list-b", "list-c"]
    assert [row.stream_id for row in backwards if row.stream_id.startswith("list-")] == [
        "list-c", "list-b", "list-a"]


def test_a_job_execution_uploads_once(store: Store) -> None:
    row = FileUploadRow("job-1", "sensor:1", 1, "device-sensor_1-x-job-1-1", 10, "a" * 64, NOW)
    with store.transaction() as uow:
        uow.files.record_upload(row)
        uow.files.record_upload(dataclasses.replace(row, execution_number=2,
                                                    file_name="second", uploaded_at=NOW +
                                                    timedelta(seconds=1)))
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.files.record_upload(dataclasses.replace(row, file_name="again"))
    with store.transaction(readonly=True) as uow:
        assert uow.files.upload_of("job-1", "sensor:1", 1) == row
        assert [r.file_name for r in uow.files.uploads_of_thing("sensor:1")] == [
            row.file_name, "second"]
        assert uow.files.uploads_of_files(["second", "other"])["second"].execution_number == 2
