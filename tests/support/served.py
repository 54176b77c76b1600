"""A real ``bastion serve`` in a subprocess: started on free ports, stopped with SIGINT or
killed with SIGKILL, and started again on the same data directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BASTION = [sys.executable, "-m", "bastion"]
_API_URL = re.compile(r"^\s+api\s+(https?://\S+)$", re.MULTILINE)
_READY = "Stop with Ctrl-C."


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


class ServedBastion:
    """``bastion serve --data-dir DATA`` on 127.0.0.1, MQTT and API on free ports. Its
    output goes to files in ``logs`` (one pair per start), so a chatty server never
    blocks on a full pipe."""

    def __init__(self, data: Path, logs: Path) -> None:
        self.data = data
        self._logs = logs
        self._starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> ServedBastion:
        """Start the server and wait until it says it is ready.

        :raises AssertionError: it exited, or was not ready within ``timeout`` seconds.
        """
        if self._process is not None:
            raise RuntimeError("already started")
        self._starts += 1
        out = self._logs / f"serve-{self._starts}.out"
        err = self._logs / f"serve-{self._starts}.err"
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
        found = _API_URL.search(text)
        assert found, text
        self.url = found.group(1)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed, as in a crash or an OOM kill."""
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> int:
        """SIGINT, as an operator's Ctrl-C; returns the exit status (killed after 15 s)."""
        process, self._process = self._process, None
        if process is None:
            return 0
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
