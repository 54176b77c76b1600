"""Bastion's own log, from a real ``bastion serve``: a connect and a Detect violation at
INFO, a client's normal close not reported as a TLS error, ``logs/`` written (a rotating
``bastion.log``) or not created; and registry changes made by ``bastion device create``
and ``create-many`` trailed like the API calls that would have made them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import tomli_w

from support.clients import Client, DeviceFiles, wait_for

BASTION = [sys.executable, "-m", "bastion"]


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
    env.update(COLUMNS="200", BASTION_DATA_DIR=str(data), AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(extra)
    return env


def _run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=60,
                          env=_env(data), check=False)


def _trail(data: Path) -> list[dict[str, Any]]:
    exported = _run(data, "trail", "export")
    assert exported.returncode == 0, exported.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()]


@dataclass
class Served:
    data: Path
    proc: subprocess.Popen[str]
    stderr: Path
    mqtt_port: int
    api: str
    keys: tuple[str, str]

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def _serve(data: Path, tmp: Path, keys: tuple[str, str], *extra: str) -> Served:
    stderr = tmp / f"serve-{time.monotonic_ns()}.err"
    with stderr.open("w") as sink:
        proc = subprocess.Popen(
            [*BASTION, "serve", "--host", "127.0.0.1", "--mqtt-port", "0", "--api-port", "0",
             *extra], stdout=subprocess.PIPE, stderr=sink, text=True, env=_env(data))
    assert proc.stdout is not None
    banner = []
    for line in proc.stdout:
        banner.append(line)
        if line.startswith("Stop with"):
            break
    text = "".join(banner)
    port = re.search(r"mqtts://127\.0\.0\.1:(\d+)", text)
    api = re.search(r"api\s+(https://\S+)", text)
    assert port and api, text + stderr.read_text()
    return Served(data, proc, stderr, int(port.group(1)), api.group(1), keys)


@pytest.fixture
def initialised(tmp_path: Path) -> tuple[Path, tuple[str, str]]:
    data = tmp_path / "data"
    init = _run(data, "init")
    assert init.returncode == 0, init.stderr
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", init.stdout)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", init.stdout)
    assert key_id and secret
    return data, (key_id.group(1), secret.group(1))


@pytest.fixture
def served(initialised: tuple[Path, tuple[str, str]], tmp_path: Path) -> Iterator[Served]:
    data, keys = initialised
    running = _serve(data, tmp_path, keys)
    try:
        yield running
    finally:
        running.stop()


def _device(data: Path, name: str, out: Path) -> DeviceFiles:
    made = _run(data, "device", "create", name, "--out", str(out))
    assert made.returncode == 0, made.stderr
    return DeviceFiles(name, out / f"{name}.cert.pem", out / f"{name}.key.pem",
                       out / "root-ca.pem")


def _report(ports: list[int]) -> str:
    return json.dumps({"header": {"report_id": 1, "version": "1.0"},
                       "metrics": {"listening_tcp_ports": {
                           "ports": [{"port": p} for p in ports], "total": len(ports)}}})


def _raw_session(device: DeviceFiles, port: int, *, disconnect_first: bool) -> None:
    """CONNECT, CONNACK, (DISCONNECT,) then close TCP without TLS's close_notify: how
    many clients end a connection."""
    context = ssl.create_default_context(cafile=str(device.ca))
    context.load_cert_chain(str(device.cert), str(device.key))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        tls = context.wrap_socket(raw, server_hostname="localhost")
        client_id = device.name.encode()
        body = (b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big")
                + client_id)
        tls.sendall(bytes([0x10, len(body)]) + body)
        assert tls.recv(4) == b"\x20\x02\x00\x00"  # CONNACK, accepted
        if disconnect_first:
            tls.sendall(b"\xe0\x00")
        tls.close()  # without unwrap(): no close_notify


def test_connect_and_violation_at_info_and_a_normal_close_is_no_tls_error(
        served: Served, tmp_path: Path) -> None:
    device = _device(served.data, "logged-dev", tmp_path)
    iot: Any = boto3.client("iot", endpoint_url=served.api, region_name="us-east-1",
                            aws_access_key_id=served.keys[0],
                            aws_secret_access_key=served.keys[1],
                            verify=str(served.data / "ca" / "root-ca.cert.pem"))
    arn = iot.describe_thing(thingName="logged-dev")["thingArn"]
    iot.create_security_profile(securityProfileName="ports", behaviors=[
        {"name": "tcp-ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22]}}}])
    iot.attach_security_profile(securityProfileName="ports",
                                securityProfileTargetArn=arn.rsplit(":", 1)[0]
                                + ":all/registered-things")
    client = Client(device, served.mqtt_port, client_id="logged-dev").connect()
    base = "$aws/things/logged-dev/defender/metrics/json"
    client.subscribe(base + "/+", qos=1)
    client.publish(base, _report([22, 8080]), qos=1)
    assert client.expect()[0].topic == base + "/accepted"
    wait_for(lambda: "detect: in-alarm" in served.log(), 15, "the violation in the log")
    client.disconnect()
    pub = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(served.mqtt_port), "--cafile",
         str(device.ca), "--cert", str(device.cert), "--key", str(device.key),
         "-i", "logged-dev", "-t", "logged-dev/x", "-m", "hi", "-q", "1"],
        capture_output=True, text=True, timeout=15, check=False)
    assert pub.returncode == 0, pub.stderr

    def nobody_connected() -> bool:
        answer = _run(served.data, "clients", "--json")
        return answer.returncode == 0 and json.loads(answer.stdout) == []

    for disconnect_first in (True, False):
        _raw_session(device, served.mqtt_port, disconnect_first=disconnect_first)
    wait_for(nobody_connected, 15, "every connection closed in the journal")
    served.stop()
    log = served.log()
    connects = [line for line in log.splitlines()
                if " INFO bastion.broker" in line and "'logged-dev' connected from 127.0.0.1"
                in line]
    assert len(connects) == 4, log
    violation = [line for line in log.splitlines() if "detect: in-alarm" in line]
    assert violation and " INFO " in violation[0] and "'logged-dev'" in violation[0]
    assert "tcp-ports" in violation[0] and "8080" in violation[0]
    assert "TLS error" not in log and "TLS write" not in log, log
    written = (served.data / "logs" / "bastion.log").read_text(encoding="utf-8")
    assert "'logged-dev' connected from 127.0.0.1" in written
    assert "detect: in-alarm" in written


def test_without_a_log_file_no_logs_directory(initialised: tuple[Path, tuple[str, str]],
                                              tmp_path: Path) -> None:
    data, keys = initialised
    assert not (data / "logs").exists()  # init makes none
    config = data / "config.toml"
    settings = tomllib.loads(config.read_text())
    settings["log"]["file"] = ""
    settings["iot_logs"] = {"enabled": False}
    config.write_text(tomli_w.dumps(settings))
    running = _serve(data, tmp_path, keys)
    try:
        device = _device(data, "quiet-dev", tmp_path)
        Client(device, running.mqtt_port, client_id="quiet-dev").connect().disconnect()
        wait_for(lambda: "'quiet-dev' connected" in running.log(), 10, "the connect line")
    finally:
        running.stop()
    assert not (data / "logs").exists()


def test_device_create_and_create_many_are_trailed(
        initialised: tuple[Path, tuple[str, str]], tmp_path: Path) -> None:
    data, _ = initialised
    _device(data, "trailed-dev", tmp_path)
    many = _run(data, "device", "create-many", "--count", "2", "--prefix", "bulk-",
                "--out", str(tmp_path / "bulk"))
    assert many.returncode == 0, many.stderr
    refused = _run(data, "device", "create-many", "--count", "1", "--prefix", "nopol-",
                   "--policy", "no-such-policy", "--out", str(tmp_path / "nopol"))
    assert refused.returncode == 1 and "ResourceNotFoundException" in refused.stderr
    records = [r for r in _trail(data) if r["service"] == "iot"]
    for record in records:
        assert record["source_ip"] == "local" and record["access_key_id"].startswith("local:")
    steps = [(r["operation"], r["outcome"]) for r in records]
    device = [("CreateThing", "allowed"), ("CreateCertificateFromCsr", "allowed"),
              ("AttachThingPrincipal", "allowed")]
    assert steps == [
        *device, ("CreatePolicy", "allowed"), ("AttachPolicy", "allowed"),  # trailed-dev
        *device, ("AttachPolicy", "allowed"),  # bulk-1
        *device, ("AttachPolicy", "allowed"),  # bulk-2
        *device, ("AttachPolicy", "error"),  # nopol-1: refused
    ], steps
    assert records[0]["parameters"] == {"thingName": "trailed-dev"}
    assert records[-1]["error_code"] == "ResourceNotFoundException"
    assert records[-1]["parameters"]["thingName"] == "nopol-1"
