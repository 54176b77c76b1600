"""``bastion serve`` as a real subprocess, to be stopped with SIGTERM or killed with SIGKILL."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.controlplane import ControlPlane, open_control_plane, provision_device
from bastion.datadir import init_data_dir
from support.clients import DeviceFiles

OPEN_DOCUMENT = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}'
)


def with_settings(text: str, settings: dict[str, dict[str, object]]) -> str:
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
    """A data directory and the ``bastion serve`` processes started on it, one at a time.

    :param database_url: ``""`` for the embedded SQLite default, else a PostgreSQL URL
        written to ``[store] database_url``.
    :param settings: more of ``config.toml``: ``{"limits": {"max_queued_messages": 10}}``.
    """

    def __init__(self, root: Path, database_url: str = "",
                 settings: dict[str, dict[str, object]] | None = None) -> None:
        self.datadir = init_data_dir(root / "data")
        wanted = dict(settings or {})
        if database_url:
            wanted.setdefault("store", {})["database_url"] = database_url
        if wanted:
            self.datadir.config_path.write_text(
                with_settings(self.datadir.config_path.read_text(), wanted))
        self.database_url = database_url
        self._out = root / "devices"
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.log: list[str] = []
        self._policy = False
        self._reader = threading.Thread()

    def plane(self) -> ControlPlane:
        from bastion.config import load_config

        return open_control_plane(load_config(self.datadir.config_path), self.datadir)

    def devices(self, *names: str) -> list[DeviceFiles]:
        """Register devices allowed everything (these tests are about durability)."""
        plane = self.plane()
        try:
            if not self._policy:
                plane.policies.create_policy("durability-open", OPEN_DOCUMENT)
                self._policy = True
            made = []
            for name in names:
                files = provision_device(plane, self.datadir, name, self._out,
                                         policy_name="durability-open")
                made.append(DeviceFiles(name, files.cert_path, files.key_path,
                                        files.root_ca_path, files.certificate_id,
                                        files.certificate_arn))
            return made
        finally:
            plane.close()

    def start(self, timeout: float = 30.0) -> int:
        """Start ``bastion serve``; returns its MQTT port once it is ready."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        proc = subprocess.Popen(
            [sys.executable, "-m", "bastion", "serve", "--data-dir", str(self.datadir.path),
             "--mqtt-port", "0", "--host", "127.0.0.1", "--api-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.proc = proc
        ready = threading.Event()
        port: list[int] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.log.append(line)
                match = re.search(r"mqtts://[^\s:]+:(\d+)", line)
                if match and not port:
                    port.append(int(match.group(1)))
                if line.startswith("Stop with"):
                    ready.set()
            proc.stdout.close()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or not port or proc.poll() is not None:
            self.kill()
            raise AssertionError("bastion serve did not start:\n" + "".join(self.log[-40:]))
        self.port = port[0]
        return self.port

    def kill(self) -> None:
        """``kill -9``: nothing gets to run."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self._reader.is_alive():
            self._reader.join(10)

    def terminate(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("bastion serve did not stop on SIGTERM") from None
        if self._reader.is_alive():
            self._reader.join(10)
        return status


@pytest.fixture
def served(tmp_path: Path) -> Callable[..., ServedBastion]:
    """``make(database_url="")`` → a :class:`ServedBastion`; every process is killed at the
    end."""
    made: list[ServedBastion] = []

    def make(database_url: str = "",
             settings: dict[str, dict[str, object]] | None = None) -> ServedBastion:
        server = ServedBastion(tmp_path / f"served-{len(made)}", database_url, settings)
        made.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in made:
        server.kill()

