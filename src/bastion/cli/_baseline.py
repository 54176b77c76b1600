"""``bastion baseline apply|check``: the AWS IoT Security Baseline's controls on the
data directory (:mod:`bastion.baseline`; ``docs/baseline.md``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..baseline import CONTROLS, AlertOptions, Baseline
from ..config import load_config
from ..errors import ServiceError
from ..events import InProcessBus
from ..services import build_services
from ._admin import DataDirOption, JsonOption, console, err
from ._defender import _store

baseline_app = typer.Typer(no_args_is_help=True,
                           help="The AWS IoT Security Baseline: apply it, check it.")


@contextmanager
def _baseline(data_dir: Path | None, options: AlertOptions) -> Iterator[Baseline]:
    with _store(data_dir) as (datadir, store, _):
        try:
            services = build_services(load_config(datadir.config_path), datadir, store,
                                      InProcessBus(), send=lambda topic, payload, qos: None)
            yield Baseline(services, datadir.config_path, options)
        except ServiceError as exc:
            err.print(f"[red]{exc.message}[/]")
            raise typer.Exit(1) from None


def _report(baseline: Baseline, as_json: bool) -> bool:
    rows = []
    for control in CONTROLS:
        verdict = control.check(baseline)
        rows.append({"control": control.id, "title": control.title,
                     "status": "PASS" if verdict.passed else "FAIL",
                     "evidence": verdict.evidence})
    if as_json:
        console.print_json(json.dumps(rows))
    else:
        table = Table("control", "status", "title", "evidence")
        for row in rows:
            color = "green" if row["status"] == "PASS" else "red"
            table.add_row(row["control"], f"[{color}]{row['status']}[/]",
                          escape(row["title"]), escape(row["evidence"]))
        console.print(table)
    return all(row["status"] == "PASS" for row in rows)


@baseline_app.command("apply")
def apply_command(
        alert_webhook: Annotated[str | None, typer.Option(
            help="An https URL that receives every alert (a new alert target).")] = None,
        alert_email: Annotated[str | None, typer.Option(
            help="An e-mail address that receives every alert (SMTP with STARTTLS).")] = None,
        smtp_host: Annotated[str, typer.Option(help="SMTP server of --alert-email.")] = "localhost",
        smtp_port: Annotated[int, typer.Option(help="Its port.")] = 587,
        smtp_sender: Annotated[str, typer.Option(help="The From address.")] = "bastion@localhost",
        ca_file: Annotated[str | None, typer.Option(
            help="CA bundle for the webhook or SMTP server (default: the system's).")] = None,
        data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Turn every control on (idempotent), then check them; exits 1 on a FAIL."""
    options = AlertOptions(alert_webhook, alert_email, smtp_host, smtp_port, smtp_sender,
                           ca_file)
    with _baseline(data_dir, options) as baseline:
        for control in CONTROLS:
            for change in control.apply(baseline):
                if not as_json:
                    console.print(f"{control.id}: {change}", markup=False)
        passed = _report(baseline, as_json)
    if not passed:
        raise typer.Exit(1)


@baseline_app.command("check")
def check_command(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Each control with PASS or FAIL and its evidence; exits 1 on a FAIL."""
    with _baseline(data_dir, AlertOptions()) as baseline:
        passed = _report(baseline, as_json)
    if not passed:
        raise typer.Exit(1)
