"""The entry writer: real files (size rotation) and a real syslog receiver (UDP)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from bastion.iotlogs import EntryWriter, entry, timestamp


def test_timestamp_is_aws_format_in_utc() -> None:
    assert timestamp(1502379443.476) == "2017-08-10 15:37:23.476"
    assert timestamp(0.0) == "1970-01-01 00:00:00.000"


def test_entries_leave_out_empty_fields_and_keep_aws_order() -> None:
    built = entry(0.0, "INFO", "123456789012", "Success", "Connect", protocol="MQTT",
                  clientId="c", thingName=None, reason="")
    assert list(built) == ["timestamp", "logLevel", "traceId", "accountId", "status",
                           "eventType", "protocol", "clientId"]


def test_the_file_rotates_past_its_size_and_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "aws-iot.jsonl"
    writer = EntryWriter(path, max_bytes=1024, files_kept=20, queue_size=1000)
    writer.start()
    try:
        for number in range(60):
            writer.put(entry(0.0, "INFO", "123456789012", "Success", "Publish-In",
                             topicName=f"t/{number}"))
        assert writer.flush()
    finally:
        writer.stop()
    files = sorted(tmp_path.glob("logs/aws-iot.jsonl*"))
    assert len(files) > 3, files
    assert all(f.stat().st_size <= 1024 for f in files)
    topics = sorted(int(json.loads(line)["topicName"][2:])
                    for f in files for line in f.read_text().splitlines())
    assert topics == list(range(60))
    assert writer.written == 60 and writer.dropped == 0


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    writer = EntryWriter(tmp_path / "x.jsonl", max_bytes=1 << 20, files_kept=1, queue_size=2)
    # Not started: nothing drains the queue.
    for _ in range(5):
        writer.put({"eventType": "Connect"})
    assert writer.dropped == 3


def test_syslog_gets_each_entry_as_one_json_datagram(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        writer = EntryWriter(tmp_path / "x.jsonl", max_bytes=1 << 20, files_kept=1,
                             queue_size=10, syslog=f"127.0.0.1:{port}",
                             syslog_facility="local0")
        writer.start()
        try:
            sent = entry(0.0, "ERROR", "123456789012", "Failure", "Subscribe",
                         reason="AUTHORIZATION_FAILURE")
            writer.put(sent)
            datagram = receiver.recv(65536).decode()
        finally:
            writer.stop()
    assert datagram.startswith("<131>bastion-iot: ")  # local0 (16) * 8 + error (3)
    assert json.loads(datagram.split(": ", 1)[1]) == sent


def test_a_bad_syslog_facility_is_refused(tmp_path: Path) -> None:
    writer = EntryWriter(tmp_path / "x.jsonl", max_bytes=1 << 20, files_kept=1,
                         queue_size=10, syslog="127.0.0.1:514", syslog_facility="nope")
    with pytest.raises(ValueError, match="facility"):
        writer.start()
