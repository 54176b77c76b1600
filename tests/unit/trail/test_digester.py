"""The digester on both database backends: digests made on time, chained, delivered to
real directories, retried after a failed delivery, and never signed over a broken
trail or chained to a tampered digest."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bastion.pki import Keystore, SecretTamperedError
from bastion.store import Store, metadata
from bastion.trail import (
    DIGEST_KEY_SECRET,
    DigestSink,
    DirectorySink,
    Trail,
    TrailDigester,
    TrailIntegrityError,
    TrailKeys,
    export,
    read_digest_files,
    record_from_json,
    signing_key,
    verify_digests,
)
from support.clock import ManualClock

KEYSTORE = Keystore.generate()
KEYS = TrailKeys.from_keystore(KEYSTORE)
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))


def calls(store: Store, clock: ManualClock, count: int) -> None:
    trail = Trail(store, KEYS, clock=clock)
    for n in range(count):
        trail.record(caller=None, access_key_id="AKIAEXAMPLE", source_ip="10.0.0.9",
                     service="iot", operation="DescribeThing",
                     parameters={"thingName": f"t{n}"}, outcome="allowed", error_code=None,
                     http_status=200)
        clock.advance(1.0)


def digester(store: Store, clock: ManualClock, *sinks: DigestSink) -> TrailDigester:
    key = signing_key(store, KEYSTORE, clock.now())
    return TrailDigester(store, key, KEYS, sinks, node="node-a", interval=HOUR, clock=clock)


def verdict_of(store: Store, location: Path):  # type: ignore[no-untyped-def]
    key = signing_key(store, KEYSTORE, datetime.now(UTC)).public_key()
    records = [record_from_json(one) for one in export(store)]
    return verify_digests(read_digest_files(str(location)), key, records)


def test_digests_on_time_chained_and_read_only(store: Store, clock: ManualClock,
                                               tmp_path: Path) -> None:
    calls(store, clock, 3)
    sink = DirectorySink(tmp_path / "digests")
    made = digester(store, clock, sink)
    assert made.round() == clock.now() + HOUR  # digest 1, at once: records 1-3
    clock.advance(timedelta(minutes=10))
    calls(store, clock, 2)
    made.round()  # not due: nothing new
    assert len(list(sink.path.iterdir())) == 1
    clock.advance(HOUR)
    made.round()  # due: records 4-5
    clock.advance(HOUR)
    made.round()  # due, nothing new: an empty digest proves it
    calls(store, clock, 1)
    made.round(force=True)  # a clean stop: record 6 now
    made.round(force=True)  # nothing new: no digest
    names = sorted(path.name for path in sink.path.iterdir())
    assert [name.split("_")[1] for name in names] == [
        "0000000001-0000000003", "0000000004-0000000005", "0000000006-0000000005",
        "0000000006-0000000006"]
    for path in sink.path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    verdict = verdict_of(store, sink.path)
    assert verdict.ok, verdict.reason
    assert (verdict.digests, verdict.records, verdict.uncovered) == (4, 6, 0)


def test_a_failed_delivery_is_retried_and_nothing_is_lost(
        store: Store, clock: ManualClock, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    failing, working = DirectorySink(blocked), DirectorySink(tmp_path / "working")
    made = digester(store, clock, failing, working)
    for _ in range(3):
        calls(store, clock, 2)
        with caplog.at_level(logging.ERROR, logger="bastion.trail"):
            due = made.round()
        assert due <= clock.now() + timedelta(minutes=1)  # retried soon, not in an hour
        assert f"delivery to {failing.id} failed" in caplog.text
        clock.advance(HOUR)
    assert len(list(working.path.iterdir())) == 3
    blocked.unlink()
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="bastion.trail"):
        made.round()  # digest 4, and 1-4 to the sink that failed
    assert "failed" not in caplog.text
    assert sorted(p.name for p in blocked.iterdir()) == sorted(
        p.name for p in working.path.iterdir())
    assert verdict_of(store, blocked).ok and verdict_of(store, working.path).ok


def test_a_file_in_the_way_is_never_overwritten(store: Store, clock: ManualClock,
                                                tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    calls(store, clock, 1)
    probe = DirectorySink(tmp_path / "probe")
    digester(store, clock, probe).round()
    (name,) = [p.name for p in probe.path.iterdir()]
    sink = DirectorySink(tmp_path / "sink")
    sink.path.mkdir()
    (sink.path / name).write_bytes(b"someone else's file")
    with caplog.at_level(logging.ERROR, logger="bastion.trail"):
        digester(store, clock, sink).round()
    assert "exists with other content" in caplog.text
    assert (sink.path / name).read_bytes() == b"someone else's file"


def test_no_digest_over_a_broken_trail(store: Store, clock: ManualClock,
                                       tmp_path: Path) -> None:
    calls(store, clock, 2)
    sink = DirectorySink(tmp_path / "d")
    made = digester(store, clock, sink)
    made.round()
    calls(store, clock, 3)
    with store.engine.begin() as conn:
        conn.execute(metadata.tables["trail_records"].update()
                     .where(sa.column("sequence") == 4).values(outcome="denied"))
    clock.advance(HOUR)
    with pytest.raises(TrailIntegrityError, match="broken at record 4"):
        made.round()
    assert len(list(sink.path.iterdir())) == 1


def test_no_digest_chained_to_a_tampered_digest(store: Store, clock: ManualClock,
                                                tmp_path: Path) -> None:
    calls(store, clock, 1)
    made = digester(store, clock, DirectorySink(tmp_path / "d"))
    made.round()
    table = metadata.tables["trail_digests"]
    with store.engine.begin() as conn:
        document = conn.execute(sa.select(table.c.document)).scalar_one()
        conn.execute(table.update().values(
            document=document.replace('"node":"node-a"', '"node":"node-b"')))
    clock.advance(HOUR)
    with pytest.raises(TrailIntegrityError, match="stored digest 1 fails its check"):
        made.round()


def test_two_nodes_share_one_digest_chain(store: Store, clock: ManualClock,
                                          tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "shared")
    node_a, node_b = digester(store, clock, sink), digester(store, clock, sink)
    for node in (node_a, node_b, node_a, node_b):
        calls(store, clock, 1)
        node.round()
        node.round()  # the other node's digest counts: not due again
        clock.advance(HOUR)
    assert len(list(sink.path.iterdir())) == 4
    assert verdict_of(store, sink.path).ok


def test_the_signing_key_is_made_once_and_sealed(store: Store) -> None:
    now = datetime.now(UTC)
    first = signing_key(store, KEYSTORE, now)
    again = signing_key(store, KEYSTORE, now)
    assert first.public_key() == again.public_key()
    with store.transaction(readonly=True) as uow:
        sealed = uow.secrets.get(DIGEST_KEY_SECRET)
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    raw = first.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    assert sealed is not None and raw not in sealed
    with pytest.raises(SecretTamperedError):
        signing_key(store, Keystore.generate(), now)
