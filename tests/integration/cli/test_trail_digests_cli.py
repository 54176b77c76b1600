"""Signed trail digests end to end: a data directory made by ``bastion init``, a real
Bastion (API over HTTPS, its own access keys) answering boto3 calls while it signs a
digest every 0.6 s into a directory and into an S3-compatible store (moto's server, a
local stand-in for S3, with Object Lock), a clean stop, then ``bastion trail verify
--digests`` in real subprocesses — from the database, from an export on a machine with
only the public key, from the bucket — and every kind of tampering named."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig, TrailConfig
from bastion.datadir import DataDir
from bastion.trail import TrailDigestKeeper
from support.running import RunningBastion

BASTION = [sys.executable, "-m", "bastion"]
KEY_ID = re.compile(r"AWS_ACCESS_KEY_ID=(AKIA[A-Z0-9]{16})")
SECRET = re.compile(r"AWS_SECRET_ACCESS_KEY=([A-Za-z0-9+/]{40})")
OBJECT_STORE_KEY = ("AKIAOBJECTSTORE00001", "object-store-secret")
BUCKET = "fleet-trail"
PREFIX = "prod/digests/"
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=120,
                          env=_env(**env), cwd=cwd, check=False)


def said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


@dataclass(frozen=True)
class Served:
    data: Path
    digests: Path
    public_key: Path
    export: Path
    object_store: str
    head: int

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.object_store, region_name="us-east-1",
                            aws_access_key_id=OBJECT_STORE_KEY[0],
                            aws_secret_access_key=OBJECT_STORE_KEY[1])

    def verify(self, *args: str, digests: Path | str | None = None,
               **env: str) -> subprocess.CompletedProcess[str]:
        return run("trail", "verify", "--digests", str(digests or self.digests),
                   "--public-key", str(self.public_key), *args, **env)


@pytest.fixture(scope="module")
def object_store() -> Iterator[str]:
    """moto's S3 server on loopback (no real S3-compatible server installs from the
    package registries this project uses); it accepts any credentials."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _head(running: RunningBastion) -> int:
    with running.app.services.store.transaction(readonly=True) as uow:
        head = uow.trail.head()
    assert head is not None
    return head.sequence


def _covered(directory: Path) -> int:
    ends = [int(path.name.split("_")[1].split("-")[1]) for path in directory.glob("*.json")]
    return max(ends, default=0)


def _wait_until_digested(running: RunningBastion, directory: Path) -> None:
    head = _head(running)
    deadline = time.monotonic() + 30
    while _covered(directory) < head:
        assert time.monotonic() < deadline, f"no digest covers record {head}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, object_store: str) -> Served:
    root = tmp_path_factory.mktemp("digests")
    data = root / "data"
    init = run("init", "--data-dir", str(data))
    assert init.returncode == 0, init.stderr
    key_id, secret = KEY_ID.search(init.stdout), SECRET.search(init.stdout)
    assert key_id and secret, init.stdout
    config = Config(
        mqtt=MQTTConfig(host="127.0.0.1", port=0),
        limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
        api=ApiConfig(host="127.0.0.1", port=0),
        trail=TrailConfig(digest_interval_minutes=0.01, digest_s3_bucket=BUCKET,
                          digest_s3_prefix=PREFIX, digest_s3_endpoint_url=object_store,
                          digest_retention_days=400))
    datadir = DataDir(data)
    with pytest.MonkeyPatch.context() as environment:
        # Bastion reaches the object store with boto3's usual chain, as an operator
        # would start it: the environment.
        environment.setenv("AWS_ACCESS_KEY_ID", OBJECT_STORE_KEY[0])
        environment.setenv("AWS_SECRET_ACCESS_KEY", OBJECT_STORE_KEY[1])
        running = RunningBastion(config, datadir).start()
        try:
            api = running.app.api
            assert api is not None
            iot = boto3.client("iot", endpoint_url=api.url, region_name="us-east-1",
                               aws_access_key_id=key_id.group(1),
                               aws_secret_access_key=secret.group(1),
                               verify=str(datadir.ca_cert_path), config=NO_RETRIES)
            intruder = boto3.client("iot", endpoint_url=api.url, region_name="us-east-1",
                                    aws_access_key_id=key_id.group(1),
                                    aws_secret_access_key="x" * 40,
                                    verify=str(datadir.ca_cert_path), config=NO_RETRIES)
            local = data / "trail-digests"
            for batch in range(3):
                for n in range(3):
                    iot.create_thing(thingName=f"sensor-{batch}-{n}-{uuid.uuid4().hex[:6]}")
                iot.list_things()
                with pytest.raises(ClientError):
                    intruder.list_things()
                _wait_until_digested(running, local)
                if batch == 0:  # the bucket did not exist so far: those deliveries failed
                    boto3.client("s3", endpoint_url=object_store, region_name="us-east-1"
                                 ).create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
            keeper = running.app.component(TrailDigestKeeper)
            assert keeper.rounds >= 3  # periodic rounds made the digests above
            iot.create_thing(thingName="last-call")  # digested by the clean stop only
            head = _head(running)
        finally:
            running.stop()
    assert _covered(local) == head, "the clean stop made the last digest"
    export = root / "trail.jsonl"
    written = run("trail", "export", "--data-dir", str(data), "--out", str(export))
    assert written.returncode == 0, written.stderr
    return Served(data, local, data / "trail-digest.pub.pem", export, object_store, head)


def _copy(served: Served, tmp_path: Path) -> Path:
    target = tmp_path / "digests"
    shutil.copytree(served.digests, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def _with_records(directory: Path) -> list[Path]:
    """The digest files that cover at least one record, in chain order."""
    found = []
    for path in sorted(directory.glob("*.json")):
        first, last = path.name.split("_")[1].split("-")
        if int(last) >= int(first):
            found.append(path)
    return found


def test_init_made_the_signing_key_and_digest_key_prints_it(served: Served) -> None:
    assert stat.S_IMODE(served.public_key.stat().st_mode) == 0o644
    printed = run("trail", "digest-key", "--data-dir", str(served.data))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == served.public_key.read_text()
    assert printed.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert not list(served.data.glob("*digest*.key*")), "no private key file"


def test_a_data_directory_without_a_key_gets_one_at_start(tmp_path: Path) -> None:
    from bastion.datadir import init_data_dir

    datadir = init_data_dir(tmp_path / "older")  # as before digests: no signing key
    assert not datadir.trail_digest_public_key_path.exists()
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    trail=TrailConfig(digest_dir="digests"))
    running = RunningBastion(config, datadir).start()
    running.stop()
    printed = run("trail", "digest-key", "--data-dir", str(datadir.path))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == datadir.trail_digest_public_key_path.read_text()
    result = run("trail", "verify", "--data-dir", str(datadir.path), "--digests",
                 str(datadir.path / "digests"), "--public-key",
                 str(datadir.trail_digest_public_key_path))
    assert result.returncode == 0, said(result)
    assert "1 digests, 0 records" in said(result)


def test_digests_are_read_only_and_the_trail_verifies(served: Served) -> None:
    files = sorted(served.digests.iterdir())
    assert len(files) > 3
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o444 for path in files)
    result = served.verify("--data-dir", str(served.data))
    assert result.returncode == 0, said(result)
    assert f"{len(files)} digests, {served.head} records" in said(result)


def test_an_auditor_verifies_an_export_with_the_public_key_alone(served: Served,
                                                                 tmp_path: Path) -> None:
    desk = tmp_path / "auditor"
    desk.mkdir()
    shutil.copytree(served.digests, desk / "digests")
    shutil.copy(served.public_key, desk / "bastion.pub.pem")
    shutil.copy(served.export, desk / "trail.jsonl")
    result = run("trail", "verify", "--digests", "digests", "--public-key",
                 "bastion.pub.pem", "--trail-export", "trail.jsonl", cwd=desk,
                 BASTION_DATA_DIR=str(desk / "nothing-here"))
    assert result.returncode == 0, said(result)
    assert f"{served.head} records" in said(result)


def test_the_bucket_has_every_digest_under_compliance_retention(served: Served) -> None:
    s3 = served.s3()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]
    names = sorted(item["Key"][len(PREFIX):] for item in listed)
    assert names == sorted(path.name for path in served.digests.iterdir()), (
        "the digests whose delivery failed before the bucket existed were delivered later")
    head = s3.head_object(Bucket=BUCKET, Key=PREFIX + names[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert until > datetime.now(UTC) + timedelta(days=399)
    version = s3.list_object_versions(Bucket=BUCKET, Prefix=PREFIX + names[0])
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=PREFIX + names[0],
                         VersionId=version["Versions"][0]["VersionId"])
    result = served.verify("--trail-export", str(served.export), "--s3-endpoint-url",
                           served.object_store, digests=f"s3://{BUCKET}/{PREFIX}",
                           AWS_ACCESS_KEY_ID=OBJECT_STORE_KEY[0],
                           AWS_SECRET_ACCESS_KEY=OBJECT_STORE_KEY[1])
    assert result.returncode == 0, said(result)


def _delete_middle(directory: Path) -> tuple[str, str]:
    victim = _with_records(directory)[1]
    number = int(victim.name.split("_")[0].rsplit("-", 1)[1])
    victim.unlink()
    return "(digest missing)", f"digest {number} is missing"


def _edit_one_byte(directory: Path) -> tuple[str, str]:
    victim = _with_records(directory)[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    return "(digest altered)", victim.name


def _swap_names(directory: Path) -> tuple[str, str]:
    a, b = _with_records(directory)[1:3]
    temporary = directory / "swap"
    a.rename(temporary)
    b.rename(a)
    temporary.rename(b)
    return "(digest misnamed)", f"digest {a.name}"


def _delete_first(directory: Path) -> tuple[str, str]:
    min(directory.glob("*.json")).unlink()
    return "(digest missing)", "digests 1-1 are missing"


@pytest.mark.parametrize("damage", [_delete_middle, _edit_one_byte, _swap_names,
                                    _delete_first],
                         ids=["deleted", "edited", "reordered", "first-deleted"])
def test_tampered_digests_are_named(served: Served, tmp_path: Path, damage: Any) -> None:
    directory = _copy(served, tmp_path)
    problem, where = damage(directory)
    result = served.verify("--trail-export", str(served.export), digests=directory)
    assert result.returncode == 1, said(result)
    assert problem in said(result) and where in said(result), said(result)
    assert "intact against" not in result.stdout


def _lines(served: Served) -> list[str]:
    return served.export.read_text().splitlines()


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda lines: lines[:-3], "BROKEN at digest {digest}, record {tail} (truncated)"),
    (lambda lines: lines[:4] + lines[5:], "record 5 (record missing)"),
    (lambda lines: lines[:5] + [lines[6], lines[5]] + lines[7:], "record 6 (record missing)"),
    ("edit", "record 7 (record altered)"),
], ids=["truncated", "deleted", "reordered", "edited"])
def test_a_tampered_export_is_named(served: Served, tmp_path: Path, damage: Any,
                                    expected: str) -> None:
    lines = _lines(served)
    if damage == "edit":
        record = json.loads(lines[6])
        record["source_ip"] = "203.0.113.66"
        lines[6] = json.dumps(record)
        changed = lines
    else:
        changed = damage(list(lines))
    export = tmp_path / "trail.jsonl"
    export.write_text("\n".join(changed) + "\n")
    result = served.verify("--trail-export", str(export))
    assert result.returncode == 1, said(result)
    tail = served.head - 2
    covering = next(p.name for p in sorted(served.digests.glob("*.json"))
                    if int(p.name.split("_")[1].split("-")[0]) <= tail
                    <= int(p.name.split("_")[1].split("-")[1]))
    assert expected.format(digest=covering, tail=tail) in said(result), said(result)


@pytest.mark.parametrize(("statements", "expected"), [
    (["UPDATE trail_records SET outcome = 'allowed' WHERE outcome = 'denied'"],
     "(record altered)"),
    (["DELETE FROM trail_records WHERE sequence > 4"], "record 5 (truncated)"),
], ids=["edited", "truncated"])
def test_a_tampered_database_is_named(served: Served, tmp_path: Path,
                                      statements: list[str], expected: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(served.data, data)
    with sqlite3.connect(data / "bastion.db") as conn:
        first_denied = conn.execute("SELECT min(sequence) FROM trail_records "
                                    "WHERE outcome = 'denied'").fetchone()[0]
        for statement in statements:
            conn.execute(statement)
    result = served.verify("--data-dir", str(data))
    assert result.returncode == 1, said(result)
    assert expected in said(result), said(result)
    if "altered" in expected:
        assert f"record {first_denied} (record altered)" in said(result)


def test_the_newest_digest_deleted_is_named_from_the_database(served: Served,
                                                              tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(served.data, data)
    digests = data / "trail-digests"
    with sqlite3.connect(data / "bastion.db") as conn:  # the copy's sink is its own
        conn.execute("UPDATE trail_digest_deliveries SET sink = ? WHERE sink = ?",
                     (f"dir:{digests.resolve()}", f"dir:{served.digests.resolve()}"))
    intact = served.verify("--data-dir", str(data), digests=digests)
    assert intact.returncode == 0, said(intact)
    newest = max(digests.glob("*.json"))
    newest.chmod(0o644)
    newest.unlink()
    result = served.verify("--data-dir", str(data), digests=digests)
    assert result.returncode == 1, said(result)
    number = int(newest.name.split("_")[0].rsplit("-", 1)[1])
    assert f"(digest missing): digest {number} is missing" in said(result), said(result)
    offline = served.verify("--trail-export", str(served.export), digests=digests)
    assert offline.returncode == 0 and "not covered by a digest yet" in said(offline)


def test_tampering_in_the_bucket_is_named(served: Served, tmp_path: Path) -> None:
    s3 = served.s3()
    s3.create_bucket(Bucket="copy", ObjectLockEnabledForBucket=False)
    names = sorted(path.name for path in served.digests.iterdir())
    for name in names:
        s3.put_object(Bucket="copy", Key=name, Body=(served.digests / name).read_bytes())
    creds = {"AWS_ACCESS_KEY_ID": OBJECT_STORE_KEY[0],
             "AWS_SECRET_ACCESS_KEY": OBJECT_STORE_KEY[1]}
    args = ("--trail-export", str(served.export), "--s3-endpoint-url", served.object_store)
    assert served.verify(*args, digests="s3://copy/", **creds).returncode == 0
    middle = _with_records(served.digests)[1].name
    edited = (served.digests / middle).read_bytes().replace(b'"node":"', b'"node":"x', 1)
    s3.put_object(Bucket="copy", Key=middle, Body=edited)
    result = served.verify(*args, digests="s3://copy/", **creds)
    assert result.returncode == 1 and "(digest altered)" in said(result), said(result)
    assert middle in said(result)
    s3.delete_object(Bucket="copy", Key=middle)
    result = served.verify(*args, digests="s3://copy/", **creds)
    assert result.returncode == 1 and "(digest missing)" in said(result), said(result)


def test_a_wrong_public_key_is_named(served: Served, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bastion.trail import public_key_pem

    other = tmp_path / "other.pem"
    other.write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    result = run("trail", "verify", "--digests", str(served.digests), "--public-key",
                 str(other), "--trail-export", str(served.export))
    assert result.returncode == 1 and "(wrong key)" in said(result), said(result)
    missing = run("trail", "verify", "--digests", str(served.digests), "--trail-export",
                  str(served.export))
    assert missing.returncode == 2
