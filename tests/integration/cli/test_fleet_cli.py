"""``bastion status|clients|jobs|shadow|audit run|findings``, ``--version``/``-h``,
certificate id prefixes, ``aws-profile`` reusing its key and ``make run ARGS=…``: real
``bastion`` subprocesses against a real ``bastion serve`` and real paho devices."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from support.clients import Client, DeviceFiles, wait_for

BASTION = [sys.executable, "-m", "bastion"]
REPO = Path(__file__).resolve().parents[3]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
    env.update(COLUMNS="200", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Served:
    data: Path
    api: str
    mqtt_port: int
    key_id: str
    secret: str
    banner: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = _clean_env(AWS_ACCESS_KEY_ID=self.key_id, AWS_SECRET_ACCESS_KEY=self.secret,
                         BASTION_DATA_DIR=str(self.data))
        return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=60,
                              env=env, check=False)

    def iot(self, service: str = "iot") -> object:
        return boto3.client(service, endpoint_url=self.api, region_name="us-east-1",  # type: ignore[call-overload]
                            aws_access_key_id=self.key_id,
                            aws_secret_access_key=self.secret,
                            verify=str(self.data / "ca" / "root-ca.cert.pem"))

    def device(self, name: str, out: Path) -> DeviceFiles:
        made = self.run("device", "create", name, "--out", str(out))
        assert made.returncode == 0, made.stderr
        certificate_id = re.search(r"certificate ([0-9a-f]{64})", made.stdout)
        assert certificate_id, made.stdout
        return DeviceFiles(name, out / f"{name}.cert.pem", out / f"{name}.key.pem",
                           out / "root-ca.pem", certificate_id=certificate_id.group(1))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("fleet") / "data"
    init = subprocess.run([*BASTION, "init", "--data-dir", str(data)], capture_output=True,
                          text=True, timeout=60, env=_clean_env(), check=False)
    assert init.returncode == 0, init.stderr
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", init.stdout)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", init.stdout)
    assert key_id and secret, init.stdout
    proc = subprocess.Popen([*BASTION, "serve", "--data-dir", str(data), "--host", "127.0.0.1",
                             "--mqtt-port", "0", "--api-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=_clean_env())
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Stop with"):
                break
        banner = "".join(lines)
        port = re.search(r"mqtts://127\.0\.0\.1:(\d+)", banner)
        api = re.search(r"api\s+(https://\S+)", banner)
        assert port and api, banner
        yield Served(data, api.group(1), int(port.group(1)), key_id.group(1), secret.group(1),
                     banner)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_status_shows_listeners_store_devices_and_versions(served: Served,
                                                           tmp_path: Path) -> None:
    device = served.device("status-dev", tmp_path)
    client = Client(device, served.mqtt_port, client_id="status-dev").connect()
    try:
        def one_connected() -> bool:
            answer = served.run("status", "--json")
            return json.loads(answer.stdout)["connectedDevices"] >= 1

        wait_for(one_connected, 15, "the connection in the journal")
        answer = served.run("status", "--json")
        assert answer.returncode == 0, answer.stderr
        state = json.loads(answer.stdout)
        urls = [listener["url"] for listener in state["server"]["listeners"]]
        assert f"mqtts://127.0.0.1:{served.mqtt_port}" in urls
        assert state["server"]["api"] == served.api
        assert state["ready"]["status"] == "ready"
        assert state["store"]["kind"] == "sqlite"
        assert state["store"]["url"].endswith("bastion.db")
        assert state["versions"]["bastion"] and state["versions"]["store"].startswith("SQLite")
        text = served.run("status")
        assert text.returncode == 0, text.stderr
        assert f"mqtts://127.0.0.1:{served.mqtt_port}" in text.stdout
        assert re.search(r"Connected devices: [1-9]", text.stdout), text.stdout
    finally:
        client.disconnect()


def test_status_says_when_no_server_runs(tmp_path: Path) -> None:
    data = tmp_path / "idle"
    assert subprocess.run([*BASTION, "init", "--data-dir", str(data)], capture_output=True,
                          env=_clean_env(), timeout=60, check=False).returncode == 0
    answer = subprocess.run([*BASTION, "status", "--data-dir", str(data)], capture_output=True,
                            text=True, env=_clean_env(), timeout=60, check=False)
    assert answer.returncode == 1
    assert "not running" in answer.stdout and "Store: sqlite" in answer.stdout


def test_clients_lists_who_is_connected_from_where_since_when(served: Served,
                                                              tmp_path: Path) -> None:
    device = served.device("clients-dev", tmp_path)
    client = Client(device, served.mqtt_port, client_id="clients-dev").connect()
    try:
        def listed() -> list[dict[str, str]]:
            answer = served.run("clients", "--json")
            assert answer.returncode == 0, answer.stderr
            return [c for c in json.loads(answer.stdout) if c["clientId"] == "clients-dev"]

        wait_for(listed, 15, "clients-dev in `bastion clients`")
        row = listed()[0]
        assert row["sourceIp"] == "127.0.0.1"
        assert row["certificateId"] == device.certificate_id
        assert row["connectedAt"].startswith("20")
        table = served.run("clients")
        assert "clients-dev" in table.stdout and "127.0.0.1" in table.stdout
    finally:
        client.disconnect()
    wait_for(lambda: not listed(), 15, "clients-dev gone from `bastion clients`")


def test_version_and_short_help_everywhere(served: Served) -> None:
    version = served.run("--version")
    assert version.returncode == 0 and re.fullmatch(r"bastion \d+\.\d+\.\S+\n", version.stdout)
    for command in (["-h"], ["status", "-h"], ["clients", "-h"], ["jobs", "list", "-h"],
                    ["shadow", "update", "-h"], ["audit", "run", "-h"], ["certs", "revoke", "-h"],
                    ["detect", "violations", "-h"], ["serve", "-h"]):
        answer = served.run(*command)
        assert answer.returncode == 0, (command, answer.stderr)
        assert "Usage:" in answer.stdout, command


def test_jobs_commands(served: Served, tmp_path: Path) -> None:
    served.device("job-dev", tmp_path)
    iot = served.iot()
    iot.create_job(jobId="fw-7", targets=[  # type: ignore[attr-defined]
        iot.describe_thing(thingName="job-dev")["thingArn"]],  # type: ignore[attr-defined]
        document=json.dumps({"operation": "update"}))
    listed = served.run("jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "fw-7" in [job["jobId"] for job in json.loads(listed.stdout)]
    described = served.run("jobs", "describe", "fw-7")
    assert described.returncode == 0 and "IN_PROGRESS" in described.stdout, described.stderr
    executions = served.run("jobs", "executions", "fw-7")
    assert "job-dev" in executions.stdout and "QUEUED" in executions.stdout
    canceled = served.run("jobs", "cancel", "fw-7")
    assert canceled.returncode == 0, canceled.stderr
    status = json.loads(served.run("jobs", "describe", "fw-7", "--json").stdout)["status"]
    assert status in ("CANCELED", "DELETION_IN_PROGRESS")
    missing = served.run("jobs", "describe", "no-such-job")
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr


def test_shadow_commands(served: Served, tmp_path: Path) -> None:
    served.device("shadow-dev", tmp_path)
    updated = served.run("shadow", "update", "shadow-dev", "--desired", '{"led": "on"}')
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["state"]["desired"] == {"led": "on"}
    named = served.run("shadow", "update", "shadow-dev", "--name", "cfg", "--reported",
                       '{"rate": 5}')
    assert named.returncode == 0, named.stderr
    got = json.loads(served.run("shadow", "get", "shadow-dev").stdout)
    assert got["state"]["desired"] == {"led": "on"} and "reported" not in got["state"]
    got_named = json.loads(served.run("shadow", "get", "shadow-dev", "--name", "cfg").stdout)
    assert got_named["state"]["reported"] == {"rate": 5}
    assert served.run("shadow", "delete", "shadow-dev").returncode == 0
    gone = served.run("shadow", "get", "shadow-dev")
    assert gone.returncode == 1 and "ResourceNotFoundException" in gone.stderr
    bad = served.run("shadow", "update", "shadow-dev", "--desired", "{not json")
    assert bad.returncode == 2


def test_audit_run_and_findings(served: Served) -> None:
    iot = served.iot()
    iot.create_policy(policyName="wide-open", policyDocument=json.dumps(  # type: ignore[attr-defined]
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
    iot.update_account_audit_configuration(  # type: ignore[attr-defined]
        auditCheckConfigurations={"IOT_POLICY_OVERLY_PERMISSIVE_CHECK": {"enabled": True}})
    ran = served.run("audit", "run", "--check", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK")
    assert ran.returncode == 1, ran.stdout + ran.stderr  # non-compliant
    assert "COMPLETED" in ran.stdout and "IOT_POLICY_OVERLY_PERMISSIVE_CHECK" in ran.stdout
    task_id = re.search(r"--task-id (\S+)", ran.stdout)
    assert task_id, ran.stdout
    latest = served.run("audit", "findings", "--json")
    assert latest.returncode == 0, latest.stderr
    findings = json.loads(latest.stdout)
    assert any(f["checkName"] == "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"
               and f["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"]
               ["policyName"] == "wide-open" for f in findings), findings
    by_task = served.run("audit", "findings", "--task-id", task_id.group(1))
    assert "wide-open" in by_task.stdout


def test_certificate_ids_by_unique_prefix(served: Served, tmp_path: Path) -> None:
    device = served.device("prefix-dev", tmp_path)
    prefix = device.certificate_id[:10]
    described = served.run("certs", "describe", prefix, "--json")
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["certificateId"] == device.certificate_id
    allowed = served.run("test-authorization", "--cert-id", prefix, "--action", "iot:Connect",
                         "--resource", "client/prefix-dev", "--client-id", "prefix-dev")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    deactivated = served.run("certs", "deactivate", prefix)
    assert deactivated.returncode == 0, deactivated.stderr
    assert device.certificate_id in deactivated.stdout
    status = json.loads(served.run("certs", "describe", device.certificate_id, "--json").stdout)
    assert status["status"] == "INACTIVE"
    too_short = served.run("certs", "describe", device.certificate_id[:3])
    assert too_short.returncode == 1 and "too short" in too_short.stderr
    unknown = served.run("certs", "describe", "ffff0000")
    assert unknown.returncode == 1


def test_aws_profile_reuses_its_key(tmp_path: Path) -> None:
    data = tmp_path / "profile"
    env = _clean_env(BASTION_DATA_DIR=str(data))
    assert subprocess.run([*BASTION, "init"], capture_output=True, env=env, timeout=60,
                          check=False).returncode == 0

    def profile(*extra: str) -> str:
        answer = subprocess.run([*BASTION, "aws-profile", *extra], capture_output=True,
                                text=True, env=env, timeout=60, check=False)
        assert answer.returncode == 0, answer.stderr
        found = re.search(r"aws_access_key_id = (\S+)", answer.stdout)
        assert found, answer.stdout
        return found.group(1)

    first = profile()
    assert profile() == first
    other_profile = profile("--profile", "ci")
    assert other_profile != first
    assert profile("--new-key") != first
    keys = subprocess.run([*BASTION, "admin", "list-access-keys", "--json"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert len(json.loads(keys.stdout)) == 4  # init's admin, bastion, ci, --new-key


def test_make_run_passes_args_to_serve() -> None:
    answer = subprocess.run(["make", "-n", "-C", str(REPO), "run",
                             "ARGS=--mqtt-port 1884 --log-level debug"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert answer.returncode == 0, answer.stderr
    assert "bastion serve --mqtt-port 1884 --log-level debug" in answer.stdout
