"""``bastion cluster status``: the nodes serving the fleet, and the health of what they
share (NATS with JetStream, the database). Exits 0 when everything answers, 1 otherwise."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

import typer
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ..cluster import Lease, read_status
from ..controlplane import database_url
from ._admin import DataDirOption, JsonOption, console, open_local

cluster_app = typer.Typer(no_args_is_help=True,
                          help="Cluster mode: nodes on one NATS and one PostgreSQL.")

Timeout = Annotated[float, typer.Option(help="Seconds to wait for NATS.")]


@cluster_app.command("status")
def status(data_dir: DataDirOption = None, as_json: JsonOption = False,
           timeout: Timeout = 3.0) -> None:
    """Nodes (connections, sessions, version), NATS/JetStream and the database."""
    with open_local(data_dir) as local:
        config = local.config
        url = database_url(config, local.datadir)
        shown_url = make_url(url).render_as_string(hide_password=True)
        try:
            with local.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            store_ok, store_problem = True, ""
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            store_ok, store_problem = False, str(exc).splitlines()[0]
    cluster = config.cluster
    if not cluster.nats_url:
        console.print(f"Not a cluster: a single node ([cluster] nats_url is empty). "
                      f"Store {shown_url}: {'ok' if store_ok else store_problem}")
        raise typer.Exit(0 if store_ok else 1)
    found = asyncio.run(read_status(cluster.nats_url, cluster.name, timeout,
                                    Lease(cluster.lease)))
    healthy = store_ok and found.nats_ok and found.jetstream_ok and bool(found.nodes)
    if as_json:
        print(json.dumps({
            "cluster": cluster.name, "nats": {"url": found.nats_url, "ok": found.nats_ok,
                                              "version": found.nats_version,
                                              "jetstream": found.jetstream_ok,
                                              "problem": found.problem},
            "store": {"url": shown_url, "ok": store_ok, "problem": store_problem},
            "nodes": [{"node": n.node, "version": n.version, "started": n.started,
                       "seen": n.seen, "connections": n.connections,
                       "sessions": n.sessions} for n in found.nodes],
            "healthy": healthy}, indent=2))
        raise typer.Exit(0 if healthy else 1)
    nats_line = (f"NATS {found.nats_version}, JetStream "
                 f"{'ok' if found.jetstream_ok else 'NOT available'}"
                 if found.nats_ok else "NATS unreachable")
    console.print(f"Cluster [bold]{cluster.name}[/] on {found.nats_url}: {nats_line}",
                  highlight=False)
    if found.problem:
        console.print(f"  [red]{found.problem}[/]", highlight=False)
    console.print(f"Store {shown_url}: " + ("ok" if store_ok else f"[red]{store_problem}[/]"),
                  highlight=False)
    now = time.time()
    console.print(f"Nodes ({len(found.nodes)}):")
    for node in found.nodes:
        console.print(f"  {node.node:<24} up {_age(now - node.started):>8}  "
                      f"{node.connections:>7} connections  {node.sessions:>7} sessions  "
                      f"v{node.version}", highlight=False)
    if not found.nodes:
        console.print("  [red]none reports in[/]")
    raise typer.Exit(0 if healthy else 1)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
