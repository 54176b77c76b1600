"""``bastion init`` / ``admin`` / ``aws-profile`` / ``trail`` / ``device create-many``,
end to end in real subprocesses on a real data directory."""

from __future__ import annotations

import base64
import configparser
import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.access import AccessKeyService, Role
from bastion.datadir import DataDir
from bastion.store import Store
from bastion.trail import Trail, TrailKeys

BASTION = [sys.executable, "-m", "bastion"]
KEY_ID = re.compile(r"AWS_ACCESS_KEY_ID=(AKIA[A-Z0-9]{16})")
SECRET = re.compile(r"AWS_SECRET_ACCESS_KEY=([A-Za-z0-9+/]{40})")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "BASTION_"))}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=120,
                          env=_env(**env), check=False)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A data directory made by `bastion init`, and the admin key it printed."""
    data = tmp_path_factory.mktemp("admin") / "data"
    result = run("init", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    key_id, secret = KEY_ID.search(result.stdout), SECRET.search(result.stdout)
    assert key_id and secret, result.stdout
    return data, key_id.group(1), secret.group(1)


@pytest.fixture
def data(initialised: tuple[Path, str, str]) -> Path:
    return initialised[0]


@contextmanager
def _service(data: Path) -> Iterator[AccessKeyService]:
    with Store.for_sqlite_file(data / "bastion.db") as store:
        yield AccessKeyService(store, DataDir(data).open_keystore(), cache_ttl=0)


def _database_bytes(data: Path) -> bytes:
    return b"".join(path.read_bytes() for path in data.glob("bastion.db*"))


def test_init_prints_a_working_admin_key_once(initialised: tuple[Path, str, str]) -> None:
    data, key_id, secret = initialised
    with _service(data) as service:
        assert service.lookup(key_id) == (secret, Role.ADMIN)
    assert secret.encode() not in _database_bytes(data)  # sealed at rest
    listed = run("admin", "list-access-keys", "--data-dir", str(data), "--json")
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert {"AccessKeyId": key_id, "Role": "admin", "Status": "Active"}.items() <= \
        keys[0].items()
    assert secret not in listed.stdout
    # init --force keeps the keys and prints no new secret.
    again = run("init", "--data-dir", str(data), "--force")
    assert again.returncode == 0, again.stderr
    assert not SECRET.search(again.stdout) and "access keys: kept" in again.stdout


def test_init_makes_the_upload_logs_job_template(initialised: tuple[Path, str, str]) -> None:
    data, _, _ = initialised
    with Store.for_sqlite_file(data / "bastion.db") as store, \
            store.transaction(readonly=True) as uow:
        template = uow.job_templates.get("bastion-upload-logs")
    assert template is not None
    assert json.loads(template.document or "{}")["operation"] == "upload-logs"


def test_create_disable_enable_delete_keys(initialised: tuple[Path, str, str]) -> None:
    data, admin_id, _ = initialised
    created = run("admin", "create-access-key", "--role", "operator", "--description",
                  "ci", "--data-dir", str(data), "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["Role"] == "operator" and re.fullmatch(r"AKIA[A-Z0-9]{16}", key["AccessKeyId"])
    with _service(data) as service:
        assert service.lookup(key["AccessKeyId"]) == (key["SecretAccessKey"], Role.OPERATOR)
    text = run("admin", "create-access-key", "--role", "auditor", "--data-dir", str(data))
    assert text.returncode == 0 and KEY_ID.search(text.stdout) and SECRET.search(text.stdout)

    assert run("admin", "disable-access-key", key["AccessKeyId"],
               "--data-dir", str(data)).returncode == 0
    with _service(data) as service:
        assert service.lookup(key["AccessKeyId"]) is None
    assert run("admin", "enable-access-key", key["AccessKeyId"],
               "--data-dir", str(data)).returncode == 0
    assert run("admin", "delete-access-key", key["AccessKeyId"],
               "--data-dir", str(data)).returncode == 0
    missing = run("admin", "delete-access-key", key["AccessKeyId"], "--data-dir", str(data))
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr
    last = run("admin", "disable-access-key", admin_id, "--data-dir", str(data))
    assert last.returncode == 1 and "last active admin key" in last.stderr
    bad_role = run("admin", "create-access-key", "--role", "root", "--data-dir", str(data))
    assert bad_role.returncode == 2


def test_admin_commands_need_an_initialised_directory(tmp_path: Path) -> None:
    result = run("admin", "list-access-keys", "--data-dir", str(tmp_path / "none"))
    assert result.returncode == 2 and "not initialised" in result.stderr


def _parse_profile(text: str) -> tuple[str, str]:
    config, _, rest = text.partition("# ~/.aws/credentials\n")
    credentials = rest.split("\n# Then:")[0]
    return config, credentials


def test_aws_profile_is_usable_by_botocore(data: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("aws-profile", "--data-dir", str(data), "--profile", "edge",
                 "--endpoint-url", "https://localhost:9443")
    assert result.returncode == 0, result.stderr
    assert "Created access key" in result.stderr
    config_text, credentials_text = _parse_profile(result.stdout)
    config = configparser.ConfigParser()
    config.read_string(config_text)
    assert config["profile edge"]["services"] == "edge-endpoints"
    assert Path(config["profile edge"]["ca_bundle"]) == data / "ca" / "root-ca.cert.pem"
    for name in ("iot", "iot_data_plane", "iot_jobs_data_plane"):
        assert "endpoint_url = https://localhost:9443" in config["services edge-endpoints"][name]
    assert "AWS_ENDPOINT_URL_IOT=https://localhost:9443" in result.stdout
    assert "--endpoint-url https://localhost:9443 --ca-bundle" in result.stdout
    (tmp_path / "config").write_text(config_text)
    (tmp_path / "credentials").write_text(credentials_text)

    # What boto3 and the aws CLI (v1 >= 1.29, v2 >= 2.13) make of it:
    import botocore.session

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    session = botocore.session.Session(profile="edge")
    clients = {name: session.create_client(name)
               for name in ("iot", "iot-data", "iot-jobs-data")}
    credentials = session.get_credentials()
    ca_bundle = session.get_config_variable("ca_bundle")
    assert {c.meta.endpoint_url for c in clients.values()} == {"https://localhost:9443"}
    assert ca_bundle == str(data / "ca" / "root-ca.cert.pem")
    assert credentials is not None
    with _service(data) as service:
        assert service.lookup(credentials.access_key) == (credentials.secret_key, Role.OPERATOR)


def test_aws_profile_for_an_existing_key_and_as_environment(
        initialised: tuple[Path, str, str]) -> None:
    data, key_id, secret = initialised
    result = run("aws-profile", "--data-dir", str(data), "--access-key-id", key_id, "--env")
    assert result.returncode == 0, result.stderr
    lines = dict(line.removeprefix("export ").split("=", 1)
                 for line in result.stdout.splitlines())
    assert lines["AWS_ACCESS_KEY_ID"] == key_id and lines["AWS_SECRET_ACCESS_KEY"] == secret
    assert lines["AWS_ENDPOINT_URL_IOT"] == "https://127.0.0.1:8443"  # the [api] default
    assert lines["AWS_CA_BUNDLE"] == str(data / "ca" / "root-ca.cert.pem")
    unknown = run("aws-profile", "--data-dir", str(data), "--access-key-id",
                  "AKIAAAAAAAAAAAAAAAAA")
    assert unknown.returncode == 1


# -- the trail ----------------------------------------------------------------------------


@pytest.fixture
def trail_dir(tmp_path: Path) -> Path:
    """A data directory whose trail holds the init record and 8 API calls."""
    data = tmp_path / "data"
    assert run("init", "--data-dir", str(data)).returncode == 0
    with Store.for_sqlite_file(data / "bastion.db") as store:
        trail = Trail(store, TrailKeys.from_keystore(DataDir(data).open_keystore()))
        for n in range(8):
            trail.record(caller=None, access_key_id="AKIAEXAMPLEEXAMPLE00",
                         source_ip="192.0.2.1", service="iot",
                         operation="CreateCertificateFromCsr" if n == 3 else "ListThings",
                         parameters={"certificateSigningRequest": "-----BEGIN CERTIFICATE "
                                     "REQUEST-----\nMIIBsecretish\n"} if n == 3 else {},
                         outcome="denied", error_code="AccessDeniedException",
                         http_status=403)
    return data


def _sql(data: Path, *statements: str) -> None:
    with sqlite3.connect(data / "bastion.db") as conn:
        for statement in statements:
            conn.execute(statement)


def test_trail_verify_intact(trail_dir: Path) -> None:
    result = run("trail", "verify", "--data-dir", str(trail_dir))
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout and "9 records" in result.stdout
    anchor = re.search(r"Last record: (9:[0-9a-f]{64})", result.stdout)
    assert anchor
    anchored = run("trail", "verify", "--data-dir", str(trail_dir), "--anchor", anchor.group(1))
    assert anchored.returncode == 0, anchored.stderr
    wrong = run("trail", "verify", "--data-dir", str(trail_dir), "--anchor", "9:" + "a" * 64)
    assert wrong.returncode == 1 and "record 9" in wrong.stderr


@pytest.mark.parametrize(("damage", "broken"), [
    (["UPDATE trail_records SET outcome = 'allowed' WHERE sequence = 5"], 5),
    (["DELETE FROM trail_records WHERE sequence = 4"], 4),
    (["UPDATE trail_records SET sequence = -1 WHERE sequence = 6",
      "UPDATE trail_records SET sequence = 6 WHERE sequence = 7",
      "UPDATE trail_records SET sequence = 7 WHERE sequence = -1"], 6),
], ids=["edited", "deleted", "reordered"])
def test_trail_verify_names_the_first_broken_record(trail_dir: Path, damage: list[str],
                                                    broken: int) -> None:
    _sql(trail_dir, *damage)
    result = run("trail", "verify", "--data-dir", str(trail_dir))
    assert result.returncode == 1
    assert f"BROKEN at record {broken}" in result.stderr


@pytest.mark.parametrize(("damage", "expected"), [
    (["UPDATE trail_records SET parameters = '{}' WHERE sequence = 5"],
     "BROKEN at record 5 (record altered)"),
    (["DELETE FROM trail_records WHERE sequence > 7"],
     ("BROKEN at record 8 (truncated): the trail is truncated after record 7: the sealed "
     "head says 9 records")),
    (["DELETE FROM trail_records"],
     ("BROKEN at record 1 (truncated): the trail is truncated: the sealed head says 9 "
     "records, none remain")),
    (["DELETE FROM trail_records", "DELETE FROM trail_head"],
     "BROKEN (head missing)"),
    (["DELETE FROM trail_records WHERE sequence > 7",
      ("UPDATE trail_head SET sequence = 7, hash = (SELECT hash FROM trail_records WHERE "
      "sequence = 7)")],
     "BROKEN (head seal invalid)"),
    (["UPDATE trail_head SET seal = NULL"], "BROKEN (head not sealed)"),
], ids=["altered", "truncated", "emptied", "deleted", "head-moved", "seal-removed"])
def test_trail_verify_says_what_broke(trail_dir: Path, damage: list[str],
                                      expected: str) -> None:
    assert run("trail", "verify", "--data-dir", str(trail_dir)).returncode == 0
    _sql(trail_dir, *damage)
    result = run("trail", "verify", "--data-dir", str(trail_dir))
    assert result.returncode == 1, result.stdout
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert "intact" not in result.stdout


def test_trail_verify_needs_the_master_key(trail_dir: Path) -> None:
    (trail_dir / "master.key").rename(trail_dir / "elsewhere.key")
    missing = run("trail", "verify", "--data-dir", str(trail_dir))
    assert missing.returncode == 1
    assert "BROKEN (key unavailable)" in missing.stderr
    other = base64.b64encode(os.urandom(32)).decode()
    wrong = run("trail", "verify", "--data-dir", str(trail_dir), BASTION_MASTER_KEY=other)
    assert wrong.returncode == 1 and "BROKEN (head seal invalid)" in wrong.stderr


def test_trail_export_as_json_lines(trail_dir: Path, tmp_path: Path) -> None:
    everything = run("trail", "export", "--data-dir", str(trail_dir), "--since", "2000-01-01")
    assert everything.returncode == 0, everything.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [line["sequence"] for line in lines] == list(range(1, 10))
    assert lines[0]["operation"] == "CreateAccessKey" and lines[0]["role"] == "admin"
    assert "MIIBsecretish" not in everything.stdout
    assert lines[4]["parameters"]["certificateSigningRequest"].startswith("[CSR: ")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert run("trail", "export", "--data-dir", str(trail_dir),
               "--since", future).stdout == ""
    until = run("trail", "export", "--data-dir", str(trail_dir), "--until", "2000-01-01")
    assert until.returncode == 0 and until.stdout == ""
    bad = run("trail", "export", "--data-dir", str(trail_dir), "--since", "last tuesday")
    assert bad.returncode == 2

    out = tmp_path / "trail.jsonl"
    written = run("trail", "export", "--data-dir", str(trail_dir), "--out", str(out))
    assert written.returncode == 0 and "9 records" in written.stderr
    checked = run("trail", "verify", "--file", str(out), "--data-dir", str(trail_dir))
    assert checked.returncode == 0, checked.stderr
    records = out.read_text().splitlines()
    edited = json.loads(records[2])
    edited["source_ip"] = "10.0.0.1"
    records[2] = json.dumps(edited)
    out.write_text("\n".join(records) + "\n")
    tampered = run("trail", "verify", "--file", str(out), "--data-dir", str(trail_dir))
    assert tampered.returncode == 1 and "BROKEN at record 3" in tampered.stderr


def test_admin_changes_are_in_the_trail(initialised: tuple[Path, str, str]) -> None:
    data = initialised[0]
    exported = run("trail", "export", "--data-dir", str(data))
    operations = [json.loads(line)["operation"] for line in exported.stdout.splitlines()]
    assert operations[0] == "CreateAccessKey"
    assert run("trail", "verify", "--data-dir", str(data)).returncode == 0


# -- device create-many -----------------------------------------------------------------


def test_device_create_many(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    result = run("device", "create-many", "--count", "12", "--prefix", "meter-", "--out",
                 str(out), "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    with (out / "manifest.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["thing_name"] for row in rows] == [f"meter-{n:02d}" for n in range(1, 13)]
    for row in rows:
        assert Path(row["cert_path"]).is_file() and Path(row["key_path"]).is_file()
        assert (Path(row["key_path"]).stat().st_mode & 0o077) == 0
    again = run("device", "create-many", "--count", "2", "--start", "11", "--prefix",
                "meter-", "--out", str(out), "--data-dir", str(data))
    assert again.returncode == 2 and "exists" in again.stderr
    bad = run("device", "create-many", "--count", "1", "--prefix", "../x", "--out",
              str(out), "--data-dir", str(data))
    assert bad.returncode == 2
