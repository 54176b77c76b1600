"""The ``bastion`` command line, end to end: init, device create, serve + a real client."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

BASTION = [sys.executable, "-m", "bastion"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=60, check=False,
                          env=env)


def test_init_creates_keys_with_owner_only_permissions(tmp_path):
    data = tmp_path / "d"
    result = run("init", "--data-dir", str(data), "--san", "gateway.example", "--san", "10.9.8.7")
    assert result.returncode == 0, result.stderr
    for key in (data / "ca" / "root-ca.key.pem", data / "tls" / "server.key.pem",
                data / "master.key", data / "metrics.token"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    # The scrape token's place is said; the token itself is never printed.
    assert str(data / "metrics.token") in result.stdout
    assert (data / "metrics.token").read_text().strip() not in result.stdout + result.stderr
    from cryptography import x509

    from bastion.pki import load_pem_certificates

    server = load_pem_certificates((data / "tls" / "server.cert.pem").read_bytes())[0]
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "gateway.example"} <= names
    assert {"127.0.0.1", "::1", "10.9.8.7"} <= ips
    again = run("init", "--data-dir", str(data))
    assert again.returncode == 1 and "already initialised" in again.stderr


def test_data_dir_from_environment(tmp_path):
    env = {**os.environ, "BASTION_DATA_DIR": str(tmp_path / "envdir")}
    result = run("init", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "envdir" / "config.toml").exists()


def test_serve_and_connect_with_mosquitto_tools(tmp_path):
    data = tmp_path / "data"
    out = tmp_path / "devices"
    proc = subprocess.Popen([*BASTION, "serve", "--data-dir", str(data), "--mqtt-port", "0",
                             "--host", "127.0.0.1", "--api-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            match = re.search(r"mqtts://[^\s:]+:(\d+)", line)
            if match:
                port = int(match.group(1))
            if line.startswith("Stop with"):
                break
        assert port, "".join(lines)
        assert any(re.search(r"api\s+https://127\.0\.0\.1:\d+", line) for line in lines), lines
        assert any("mosquitto_pub" in line for line in lines)
        # serve initialised the directory itself, including the first admin API key
        assert any("AWS_ACCESS_KEY_ID=AKIA" in line for line in lines), lines
        created = run("device", "create", "sensor-1", "--data-dir", str(data),
                      "--out", str(out), "--port", str(port))
        assert created.returncode == 0, created.stderr
        assert "mosquitto_pub" in created.stdout
        assert stat.S_IMODE((out / "sensor-1.key.pem").stat().st_mode) == 0o600
        tls = ["-h", "127.0.0.1", "-p", str(port), "--cafile", str(out / "root-ca.pem"),
               "--cert", str(out / "sensor-1.cert.pem"), "--key", str(out / "sensor-1.key.pem")]
        pub = subprocess.run(["mosquitto_pub", *tls, "-q", "1", "-r", "-t", "sensor-1/hello",
                              "-m", "hi", "-i", "sensor-1"], capture_output=True, text=True, check=False,
                             timeout=10)
        assert pub.returncode == 0, pub.stderr
        sub = subprocess.run(["mosquitto_sub", *tls, "-t", "sensor-1/hello", "-C", "1",
                              "-W", "5", "-i", "sensor-1"], capture_output=True, check=False,
                             text=True, timeout=10)
        assert sub.stdout.strip() == "hi", sub.stderr
        # Least privilege: another client id, or another device's topics, are refused.
        other_id = subprocess.run(["mosquitto_sub", *tls, "-t", "sensor-1/hello", "-C", "1",
                                   "-W", "5", "-i", "not-sensor-1"], capture_output=True, check=False,
                                  text=True, timeout=10)
        assert other_id.returncode != 0 and "not authori" in other_id.stderr
        other_topic = subprocess.run(["mosquitto_pub", *tls, "-q", "1", "-t", "sensor-2/x",
                                      "-m", "no", "-i", "sensor-1"], capture_output=True, check=False,
                                     text=True, timeout=10)
        assert other_topic.returncode != 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0


def test_device_name_is_validated(tmp_path):
    result = run("device", "create", "../escape", "--data-dir", str(tmp_path / "d"),
                 "--out", str(tmp_path))
    assert result.returncode == 2
    assert not Path(tmp_path / "../escape.key.pem").exists()
