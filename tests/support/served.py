"""A real ``bastion serve`` in a subprocess: started on free ports, stopped with a signal or
killed with SIGKILL, and started again on the same data directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.config import load_config
from bastion.controlplane import ControlPlane, open_control_plane, provision_device
from bastion.datadir import init_data_dir
from support.clients import DeviceFiles

BASTION = [sys.executable, "-m", "bastion"]
_MQTT_URL = re.compile(r"mqtts://[^\s:]+:(\d+)")
_API_URL = re.compile(r"^\s+api\s+(https?://\S+)$", re.MULTILINE)
_READY = "Stop with Ctrl-C."
OPEN_POLICY = "served-open"
OPEN_DOCUMENT = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}'
)

Settings = dict[str, dict[str, object]]


def bastion_env(**extra: str) -> dict[str, str]:
    """This process's environment without AWS or Bastion settings, plus ``extra``."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "BASTION_"))}
    env.update(extra)
    return env


def run_bastion(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one ``bastion`` command to its end."""
    return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=timeout,
                          env=bastion_env(), check=False)


def with_settings(text: str, settings: Settings) -> str:
    """``text`` (a ``config.toml``) with ``settings`` added, each in its section."""
    for section, values in settings.items():
        lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        header = f"[{section}]\n"
        if header in text:
            text = text.replace(header, header + lines, 1)
        else:
            text += f"\n{header}{lines}"
    return text


class ServedBastion:
    """A data directory under ``root`` and ``bastion serve`` on it, on 127.0.0.1 with MQTT
    and the API on free ports, one process at a time. Its output goes to files under
    ``root`` (one pair per start), so a chatty server never blocks on a full pipe.

    :param database_url: ``""`` for the embedded SQLite default, else a PostgreSQL URL
        written to ``[store] database_url``.
    :param settings: more of ``config.toml``: ``{"limits": {"max_queued_messages": 10}}``.
    """

    def __init__(self, root: Path, database_url: str = "",
                 settings: Settings | None = None) -> None:
        self.root = root
        self.datadir = init_data_dir(root / "data")
        wanted = dict(settings or {})
        if database_url:
            wanted.setdefault("store", {})["database_url"] = database_url
        if wanted:
            self.datadir.config_path.write_text(
                with_settings(self.datadir.config_path.read_text(), wanted))
        self.database_url = database_url
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._policy = False
        self.port = 0
        self.url = ""

    @property
    def data(self) -> Path:
        return self.datadir.path

    @property
    def pid(self) -> int:
        assert self._process is not None, "not running"
        return self._process.pid

    def plane(self) -> ControlPlane:
        """The registry of the data directory, opened here (not the running server's)."""
        return open_control_plane(load_config(self.datadir.config_path), self.datadir)

    def devices(self, *names: str) -> list[DeviceFiles]:
        """Register devices allowed everything (for tests about something else)."""
        plane = self.plane()
        try:
            if not self._policy:
                plane.policies.create_policy(OPEN_POLICY, OPEN_DOCUMENT)
                self._policy = True
            made = []
            for name in names:
                files = provision_device(plane, self.datadir, name, self.root / "devices",
                                         policy_name=OPEN_POLICY)
                made.append(DeviceFiles(name, files.cert_path, files.key_path,
                                        files.root_ca_path, files.certificate_id,
                                        files.certificate_arn))
            return made
        finally:
            plane.close()

    def start(self, timeout: float = 30.0) -> ServedBastion:
        """Start the server and wait until it says it is ready (``port``, ``url`` set).

        :raises AssertionError: it exited, or was not ready within ``timeout`` seconds.
        """
        if self._process is not None:
            raise RuntimeError("already started")
        self._starts += 1
        out = self.root / f"serve-{self._starts}.out"
        err = self.root / f"serve-{self._starts}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self._process = subprocess.Popen(
                [*BASTION, "serve", "--data-dir", str(self.data), "--host", "127.0.0.1",
                 "--mqtt-port", "0", "--api-port", "0"],
                stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=bastion_env())
        deadline = time.monotonic() + timeout
        while True:
            text = out.read_text(encoding="utf-8", errors="replace")
            if _READY in text:
                break
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"bastion serve did not start:\n{text}\n"
                                     f"{err.read_text(encoding='utf-8', errors='replace')}")
            time.sleep(0.05)
        mqtt, api = _MQTT_URL.search(text), _API_URL.search(text)
        assert mqtt and api, text
        self.port = int(mqtt.group(1))
        self.url = api.group(1)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed, as in a crash or an OOM kill."""
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """A clean stop (SIGTERM, or SIGINT as an operator's Ctrl-C); returns the exit
        status (killed after 30 s)."""
        process, self._process = self._process, None
        if process is None:
            return 0
        process.send_signal(sig)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., ServedBastion]]:
    """``make(database_url="", settings=None)`` → a :class:`ServedBastion` (not started);
    every process is killed at the end."""
    made: list[ServedBastion] = []

    def make(database_url: str = "", settings: Settings | None = None) -> ServedBastion:
        server = ServedBastion(tmp_path / f"served-{len(made)}", database_url, settings)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()
