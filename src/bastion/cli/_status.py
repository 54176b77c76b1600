"""``bastion status`` and ``bastion clients``: what this installation is doing, read from
the data directory (no access key needed).

Theory of operation: a ``bastion serve`` that is ready writes ``serve.json`` in its data
directory (its process id, version, start time and the URLs it listens on; ports chosen
at start included) and removes it when it stops. ``status`` reads that file, checks the
process is alive and asks the API's ``/readyz``; the store's kind and URL (never its
password) come from the configuration, the connected devices from the connection
journal, which every node writes, so in a cluster they are the fleet's.
"""

from __future__ import annotations

import json
import os
import platform
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import typer
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url

from .. import __version__
from ..controlplane import database_url
from ..datadir import DataDir
from ..store import Store
from ._admin import DataDirOption, JsonOption, console, open_local

READY_TIMEOUT: Final = 3.0
"""Seconds ``status`` waits for the API's ``/readyz``."""


# -- serve.json: written by `bastion serve` ---------------------------------------------


def write_serve_state(datadir: DataDir, *, listeners: list[tuple[str, str]],
                      api: str | None, console_url: str | None, metrics: str | None) -> None:
    """Record what this ``bastion serve`` process listens on (``serve.json``, 0600)."""
    state = {"pid": os.getpid(), "version": __version__,
             "started": datetime.now(UTC).isoformat(timespec="seconds"),
             "listeners": [{"name": name, "url": url} for name, url in listeners],
             "api": api, "console": console_url, "metrics": metrics}
    path = datadir.serve_state_path
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(state, file, indent=2)
    temporary.replace(path)


def remove_serve_state(datadir: DataDir) -> None:
    """Remove ``serve.json`` if it is this process's."""
    try:
        state = json.loads(datadir.serve_state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(state, dict) and state.get("pid") == os.getpid():
        datadir.serve_state_path.unlink(missing_ok=True)


def running_server(datadir: DataDir) -> dict[str, Any] | None:
    """The running server's state, or ``None`` when none runs (a stale file is ignored)."""
    try:
        state = json.loads(datadir.serve_state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        return None
    try:
        os.kill(state["pid"], 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return state


def _readiness(api: str, ca: Path) -> dict[str, Any]:
    """The API's ``/readyz`` answer (its ``checks``), or a problem."""
    context = ssl.create_default_context(cafile=str(ca)) if ca.is_file() else None
    try:
        with urllib.request.urlopen(f"{api}/readyz", timeout=READY_TIMEOUT,
                                    context=context) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as exc:  # 503: not ready, with its checks
        try:
            return dict(json.loads(exc.read()))
        except ValueError:
            return {"status": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        return {"status": f"no answer: {exc}"}


def _store_version(store: Store) -> str:
    try:
        with store.engine.connect() as conn:
            if store.dialect_name == "postgresql":
                return "PostgreSQL " + str(conn.execute(text("SHOW server_version")).scalar())
            return "SQLite " + str(conn.execute(text("SELECT sqlite_version()")).scalar())
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"unreachable: {str(exc).splitlines()[0]}"


def shown_database_url(url: str) -> str:
    """The store's URL with its password masked."""
    return make_url(url).render_as_string(hide_password=True)


def status(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Listeners of the running server, store, connected devices, versions. Exits 1 when
    no server runs from this data directory or it is not ready."""
    with open_local(data_dir) as local:
        url = database_url(local.config, local.datadir)
        store_version = _store_version(local.store)
        with local.store.transaction(readonly=True) as uow:
            connected = uow.connections.open_now()
        datadir = local.datadir
    state = running_server(datadir)
    ready = (_readiness(state["api"], datadir.ca_cert_path)
             if state is not None and state.get("api") else None)
    healthy = state is not None and (ready is None or ready.get("status") == "ready")
    store_kind, shown_url = make_url(url).get_backend_name(), shown_database_url(url)
    document: dict[str, Any] = {
        "dataDir": str(datadir.path),
        "versions": {"bastion": __version__, "python": platform.python_version(),
                     "openssl": ssl.OPENSSL_VERSION, "store": store_version},
        "server": state, "ready": ready,
        "store": {"kind": store_kind, "url": shown_url},
        "connectedDevices": len(connected),
    }
    if as_json:
        print(json.dumps(document, indent=2), flush=True)
        raise typer.Exit(0 if healthy else 1)
    console.print(f"Bastion {__version__} (Python {platform.python_version()}, "
                  f"{ssl.OPENSSL_VERSION}), data directory {datadir.path}", highlight=False)
    if state is None:
        console.print("Server: [red]not running[/] from this data directory")
    else:
        console.print(f"Server: running (pid {state['pid']}, version {state['version']}, "
                      f"since {state['started']})", highlight=False)
        for listener in state.get("listeners", []):
            console.print(f"  {listener['name']:<15} {listener['url']}", highlight=False)
        for name in ("api", "console", "metrics"):
            if state.get(name):
                console.print(f"  {name:<15} {state[name]}", highlight=False)
        if ready is not None:
            checks = ", ".join(f"{k} {v}" for k, v in dict(ready.get("checks", {})).items())
            colour = "green" if ready.get("status") == "ready" else "red"
            console.print(f"  {'ready':<15} [{colour}]{ready.get('status')}[/]"
                          + (f" ({checks})" if checks else ""), highlight=False)
    console.print(f"Store: {store_kind} {shown_url} "
                  f"({store_version})", highlight=False)
    console.print(f"Connected devices: {len(connected)}", highlight=False)
    raise typer.Exit(0 if healthy else 1)


def clients(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Who is connected now, from where and since when (the connection journal, every
    node's)."""
    with open_local(data_dir) as local, local.store.transaction(readonly=True) as uow:
        rows = uow.connections.open_now()
    if as_json:
        print(json.dumps([{"clientId": r.client_id, "sourceIp": r.source_ip,
                           "connectedAt": _utc(r.connected_at).isoformat(),
                           "certificateId": r.certificate_id, "node": r.node}
                          for r in rows], indent=2), flush=True)
        return
    table = Table("Client id", "From", "Since (UTC)", "Certificate", "Node")
    for row in rows:
        table.add_row(row.client_id, row.source_ip,
                      _utc(row.connected_at).strftime("%Y-%m-%d %H:%M:%S"),
                      row.certificate_id[:12] + "…" if row.certificate_id else "", row.node)
    console.print(table)
    console.print(f"{len(rows)} connected")


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
