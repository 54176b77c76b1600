"""The real ``aws`` CLI against the API, and ``bastion serve`` with its API flags."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from .conftest import KEYS, NO_RETRIES, REGION, ApiBastion

Unique = Callable[[str], str]
AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
BASTION = [sys.executable, "-m", "bastion"]


def aws_env(tmp_path: Path, role: str = "admin") -> dict[str, str]:
    key_id, secret = KEYS[role]
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret,
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_MAX_ATTEMPTS="1")
    return env


@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_aws_cli(api_bastion: ApiBastion, unique: Unique, tmp_path: Path) -> None:
    assert AWS is not None
    common = ["--endpoint-url", api_bastion.url, "--ca-bundle", str(api_bastion.verify),
              "--output", "json"]
    env = aws_env(tmp_path)
    name = unique("cli")
    created = subprocess.run([AWS, "iot", "create-thing", "--thing-name", name, *common],
                             capture_output=True, text=True, env=env, timeout=30, check=False)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["thingName"] == name
    # The rest in parallel: the CLI's start-up is the slow part.
    commands = {
        "list": [AWS, "iot", "list-things", *common],
        "missing": [AWS, "iot", "describe-thing", "--thing-name", unique("missing"), *common],
        "publish": [AWS, "iot-data", "publish", "--topic", f"{name}/cli", "--payload", "hello",
                    "--retain", *common],
        "denied": [AWS, "iot", "delete-thing", "--thing-name", name, *common],
    }
    processes = {key: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True,
                                       env=aws_env(tmp_path, "auditor" if key == "denied"
                                                   else "admin"))
                 for key, cmd in commands.items()}
    results = {key: (process.communicate(timeout=30), process.returncode)
               for key, process in processes.items()}
    (out, err), code = results["list"]
    assert code == 0, err
    assert name in [thing["thingName"] for thing in json.loads(out)["things"]]
    (out, err), code = results["missing"]
    assert code != 0
    assert "An error occurred (ResourceNotFoundException) when calling the DescribeThing " \
           "operation: Thing" in err
    (out, err), code = results["publish"]
    assert code == 0, err
    (out, err), code = results["denied"]
    assert code != 0 and "(AccessDeniedException)" in err
    retained = api_bastion.client("iot-data").get_retained_message(topic=f"{name}/cli")
    assert retained["payload"] == b"hello"
    got = subprocess.run([AWS, "iot-data", "get-retained-message", "--topic", f"{name}/cli",
                          *common], capture_output=True, text=True, env=env, timeout=30, check=False)
    assert got.returncode == 0, got.stderr
    assert base64.b64decode(json.loads(got.stdout)["payload"]) == b"hello"


def test_bastion_serve_with_the_api(tmp_path: Path) -> None:
    refused = subprocess.run([*BASTION, "serve", "--data-dir", str(tmp_path / "unused"),
                              "--api-host", "0.0.0.0", "--api-plaintext"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2
    assert "plain HTTP is only allowed on a loopback address" in refused.stderr
    proc = subprocess.Popen(
        [*BASTION, "serve", "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1",
         "--mqtt-port", "0", "--api-port", "0", "--api-plaintext", "--emulator"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            match = re.match(r"\s+api\s+(http://127\.0\.0\.1:\d+)$", line)
            if match:
                url = match.group(1)
            if line.startswith("Stop with"):
                break
        assert url, "".join(lines)
        iot = boto3.client("iot", endpoint_url=url, region_name="eu-central-1",
                           aws_access_key_id="AKIATEST", aws_secret_access_key="test",
                           config=NO_RETRIES)
        arn = iot.create_thing(thingName="from-cli")["thingArn"]
        assert arn == "arn:aws:iot:eu-central-1:123456789012:thing/from-cli"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert proc.returncode == 0
