"""The README says true things: the quickstart's refused examples, run as written
against a real ``bastion serve`` with ``mosquitto_pub``, fail with the output and exit
code the README shows; and its "Not supported yet" list is exactly the operations the
API answers ``NotImplementedException`` for."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import botocore.session

from bastion.api import implemented_operations

README = Path(__file__).resolve().parents[3] / "README.md"
BASTION = [sys.executable, "-m", "bastion"]
SERVICES = ("iot", "iot-data", "iot-jobs-data")


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def test_not_supported_yet_lists_exactly_what_is_not_implemented() -> None:
    listed = {name for name in re.findall(r"`([A-Z][A-Za-z]+)`", _section("Not supported yet"))
              if not name.endswith("Exception")}
    session = botocore.session.get_session()
    missing = set()
    for service in SERVICES:
        operations = set(session.get_service_model(service).operation_names)
        missing |= operations - implemented_operations(service)
    assert listed == missing, {"listed but implemented or unknown": sorted(listed - missing),
                               "not implemented and not listed": sorted(missing - listed)}


def _refused_examples() -> list[tuple[list[str], str, int | None]]:
    """``(argv, expected output, expected exit code)`` of each refused example."""
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- refused-examples")
    block = text[text.index("```sh", start) + len("```sh"):text.index("```", text.index(
        "```sh", start) + 5)]
    examples = []
    command: list[str] = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("mosquitto_pub"):
            command = shlex.split(line)
        elif line.startswith("# →") and command:
            found = re.fullmatch(r"# → (.+?)(?:\s+\(exit code (\d+)\))?", line)
            assert found, line
            examples.append((command, found.group(1).strip(),
                             int(found.group(2)) if found.group(2) else None))
            command = []
    return examples


def test_the_quickstart_refused_examples_fail_as_the_readme_says(tmp_path: Path) -> None:
    examples = _refused_examples()
    assert len(examples) == 3
    data = tmp_path / "bastion-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
    proc = subprocess.Popen([*BASTION, "serve", "--data-dir", str(data), "--mqtt-port", "0",
                             "--api-port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            found = re.search(r"mqtts://[^\s]+:(\d+)", line)
            port = port or (found and found.group(1))
            if line.startswith("Stop with"):
                break
        assert port
        made = subprocess.run([*BASTION, "device", "create", "my-device", "--data-dir",
                               str(data), "--out", "devices"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert made.returncode == 0, made.stderr
        for argv, expected, code in examples:
            argv = [port if previous == "-p" else arg
                    for previous, arg in zip(["", *argv[:-1]], argv, strict=True)]
            answer = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                                    timeout=20, check=False)
            output = answer.stdout + answer.stderr
            assert expected in output, (argv, output)
            if code is not None:
                assert answer.returncode == code, (argv, answer.returncode, output)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        proc.stdout.close() if proc.stdout else None
