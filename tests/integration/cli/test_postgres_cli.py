"""The PostgreSQL path: ``bastion init --database-url URL`` and ``BASTION_DATABASE_URL``
put the first admin key in the store that will be used, ``serve``'s banner and
``bastion status`` show that store without its password; a wrong URL leaves nothing.
Real subprocesses, a real PostgreSQL (skipped with the reason outside CI)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from bastion.access import AccessKeyService
from bastion.datadir import DataDir
from bastion.store import Store
from support.databases import _pg_schemas, fresh_database_url  # noqa: F401 - fixtures

BASTION = [sys.executable, "-m", "bastion"]
PASSWORD = "pw-never-shown-7f3a"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
    env.update(COLUMNS="200")
    env.update(extra)
    return env


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=90,
                          env=env or _env(), check=False)


def _with_password(url: str) -> str:
    """The test server trusts loopback, so a password in the URL is carried, not
    checked: enough to see that no output shows it."""
    parsed = make_url(url)
    if parsed.password is None:
        parsed = parsed.set(password=PASSWORD)
    return parsed.render_as_string(hide_password=False)


def _secret_of(url: str) -> str:
    return str(make_url(url).password)


def _key_ids(url: str, data: Path) -> list[str]:
    store = Store.open(url)
    try:
        service = AccessKeyService(store, DataDir(data).open_keystore())
        return [key.access_key_id for key in service.list_access_keys()]
    finally:
        store.close()


def test_init_with_database_url_keeps_everything_in_postgresql(
        fresh_database_url: Callable[[str], str], tmp_path: Path) -> None:  # noqa: F811
    url = _with_password(fresh_database_url("postgresql"))
    data = tmp_path / "data"
    init = _run("init", "--data-dir", str(data), "--database-url", url)
    assert init.returncode == 0, init.stderr
    output = init.stdout + init.stderr
    assert _secret_of(url) not in output
    assert re.search(r"store: postgresql\+psycopg://\w+:\*\*\*@", output), output
    config = tomllib.loads((data / "config.toml").read_text())
    assert config["store"]["database_url"] == url
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", init.stdout)
    assert key_id, init.stdout
    assert _key_ids(url, data) == [key_id.group(1)]  # the first admin key, in PostgreSQL
    assert not (data / "bastion.db").exists()

    proc = subprocess.Popen([*BASTION, "serve", "--data-dir", str(data), "--host",
                             "127.0.0.1", "--mqtt-port", "0", "--api-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        assert proc.stdout is not None
        banner = []
        for line in proc.stdout:
            banner.append(line)
            if line.startswith("Stop with"):
                break
        text = "".join(banner)
        assert re.search(r"store\s+postgresql\+psycopg://\w+:\*\*\*@", text), text
        assert _secret_of(url) not in text
        status = _run("status", "--data-dir", str(data))
        assert status.returncode == 0, status.stdout + status.stderr
        assert "Store: postgresql" in status.stdout and "PostgreSQL" in status.stdout
        assert _secret_of(url) not in status.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        _, errors = proc.communicate(timeout=20)
    assert _secret_of(url) not in errors
    assert not (data / "bastion.db").exists()


def test_database_url_from_the_environment(fresh_database_url: Callable[[str], str],  # noqa: F811
                                           tmp_path: Path) -> None:
    url = _with_password(fresh_database_url("postgresql"))
    data = tmp_path / "data"
    env = _env(BASTION_DATABASE_URL=url)
    init = _run("init", "--data-dir", str(data), env=env)
    assert init.returncode == 0, init.stderr
    assert _secret_of(url) not in init.stdout + init.stderr
    assert "store" not in tomllib.loads((data / "config.toml").read_text())  # not written
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", init.stdout)
    assert key_id and _key_ids(url, data) == [key_id.group(1)]
    listed = _run("admin", "list-access-keys", "--data-dir", str(data), env=env)
    assert key_id.group(1) in listed.stdout
    assert not (data / "bastion.db").exists()


def test_an_unusable_database_url_leaves_no_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"postgresql+psycopg://bastion:{PASSWORD}@127.0.0.1:1/nothing"
    init = _run("init", "--data-dir", str(data), "--database-url", url)
    assert init.returncode == 1
    assert PASSWORD not in init.stdout + init.stderr
    assert "bastion:***@127.0.0.1:1/nothing" in init.stderr
    assert not (data / "config.toml").exists()
    garbage = _run("init", "--data-dir", str(data), "--database-url", "not a url")
    assert garbage.returncode == 2 and "not a database URL" in garbage.stderr
