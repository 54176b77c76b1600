"""``bastion alerts …`` (notification targets, dead letters), ``bastion audit crl …``
(CRL sources of the revocation checks) and ``bastion detect violations`` (active
violations with ML Detect's explanations): local commands on the data directory's store.

A running ``bastion serve`` sees the changes at once: it reads targets when it delivers
and CRLs when it audits. (AWS has no API for either; the audit itself is driven through
the AWS API: ``aws iot start-on-demand-audit-task`` …)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..account import Account
from ..alerts import AlertTargetError, AlertTargetService
from ..config import ConfigError, load_config
from ..controlplane import database_url
from ..datadir import DataDir
from ..defender.audit import CrlRegistry, DefenderError
from ..defender.detect import EXPLANATION_MEMBER, MetricType, StoreRecords
from ..store import Store
from ._admin import DataDirOption, JsonOption, console, data_dir_path, err

alerts_app = typer.Typer(no_args_is_help=True,
                         help="Notification targets of audit (and detect) alerts.")
audit_app = typer.Typer(no_args_is_help=True,
                        help="Device Defender audit: run one, its findings, CRL sources.")
crl_app = typer.Typer(no_args_is_help=True,
                      help="CRLs of issuing CAs, for the revocation checks.")
audit_app.add_typer(crl_app, name="crl")
detect_app = typer.Typer(no_args_is_help=True,
                         help="Device Defender detect: active violations.")


@contextmanager
def _store(data_dir: Path | None) -> Iterator[tuple[DataDir, Store, Account]]:
    datadir = DataDir(data_dir_path(data_dir))
    if not datadir.exists():
        err.print(f"[red]no data directory at {datadir.path}[/] (run bastion init)")
        raise typer.Exit(1)
    try:
        config = load_config(datadir.config_path)
    except ConfigError as exc:
        err.print(f"[red]bad configuration:[/] {exc}")
        raise typer.Exit(2) from None
    store = Store.open(database_url(config, datadir))
    try:
        yield datadir, store, config.account
    except (AlertTargetError, DefenderError) as exc:
        err.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from None
    finally:
        store.close()


@contextmanager
def _targets(data_dir: Path | None) -> Iterator[AlertTargetService]:
    with _store(data_dir) as (datadir, store, account):
        yield AlertTargetService(store, sealer=datadir.open_keystore(), account=account)


@alerts_app.command("create-webhook")
def create_webhook(
    name: str, url: str,
    ca_file: Annotated[Path | None, typer.Option(help="PEM CA bundle the receiver's "
                                                      "certificate chains to.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """An HTTPS webhook; prints its ARN and the signing key (shown only now)."""
    with _targets(data_dir) as targets:
        created = targets.create_webhook(name, url,
                                         ca_file=None if ca_file is None else str(ca_file))
    console.print(f"{created.target.arn}\nsigning key (keep it; not shown again): "
                  f"{created.signing_key}")


@alerts_app.command("create-email")
def create_email(
    name: str,
    host: Annotated[str, typer.Option(help="SMTP server (STARTTLS is required).")],
    sender: Annotated[str, typer.Option("--from", help="Sender address.")],
    to: Annotated[list[str], typer.Option("--to", help="Recipient (repeatable).")],
    port: Annotated[int, typer.Option(help="SMTP submission port.")] = 587,
    username: Annotated[str | None, typer.Option(help="SMTP login.")] = None,
    password_env: Annotated[str | None, typer.Option(
        help="Environment variable holding the SMTP password.")] = None,
    ca_file: Annotated[Path | None, typer.Option(help="PEM CA bundle of the server.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """E-mail through an SMTP server with STARTTLS."""
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            err.print(f"[red]{password_env} is not set[/]")
            raise typer.Exit(2)
    with _targets(data_dir) as targets:
        created = targets.create_email(name, host=host, port=port, sender=sender,
                                       recipients=to, username=username, password=password,
                                       ca_file=None if ca_file is None else str(ca_file))
    console.print(created.target.arn)


@alerts_app.command("create-mqtt")
def create_mqtt(name: str, topic: str,
                qos: Annotated[int, typer.Option(help="0 or 1.")] = 1,
                data_dir: DataDirOption = None) -> None:
    """A publish on a topic of Bastion's own broker."""
    with _targets(data_dir) as targets:
        console.print(targets.create_mqtt(name, topic, qos=qos).target.arn)


@alerts_app.command("list")
def list_targets(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """The notification targets."""
    with _targets(data_dir) as targets:
        items = targets.all()
    if as_json:
        console.print_json(json.dumps([{"name": t.name, "arn": t.arn, "kind": t.kind.value,
                                        "enabled": t.enabled} for t in items]))
        return
    table = Table("name", "kind", "enabled", "ARN")
    for t in items:
        table.add_row(t.name, t.kind.value, "yes" if t.enabled else "no", t.arn)
    console.print(table)


@alerts_app.command("enable")
def enable(name: str, off: Annotated[bool, typer.Option("--off", help="Disable instead.")]
           = False, data_dir: DataDirOption = None) -> None:
    """Enable (or ``--off``: disable) a target."""
    with _targets(data_dir) as targets:
        targets.set_enabled(name, not off)


@alerts_app.command("delete")
def delete(name: str, data_dir: DataDirOption = None) -> None:
    """Delete a target."""
    with _targets(data_dir) as targets:
        targets.delete(name)


@alerts_app.command("dead-letters")
def dead_letters(target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
                 data_dir: DataDirOption = None) -> None:
    """Alerts given up after their last delivery attempt (JSON lines)."""
    with _targets(data_dir) as targets:
        token: str | None = None
        while True:
            letters, token = targets.dead_letters(target_name=target, next_token=token)
            for letter in letters:
                print(json.dumps({"id": letter.letter_id, "target": letter.target_name,
                                  "kind": letter.kind.value, "subject": letter.subject,
                                  "attempts": letter.attempts,
                                  "lastError": letter.last_error,
                                  "createdAt": letter.created_at.isoformat(),
                                  "alert": dict(letter.document)}))
            if not token:
                return


@crl_app.command("register")
def crl_register(
    source: Annotated[str, typer.Argument(help="File path or http(s):// URL of the CRL.")],
    ca_certificate_id: Annotated[str | None, typer.Option(
        help="The registered CA certificate that issues the CRL.")] = None,
    issuer_pem: Annotated[Path | None, typer.Option(
        help="The issuer's certificate, when it is not a registered CA.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register (or replace) the CRL source of an issuing CA; it is fetched now."""
    with _store(data_dir) as (_, store, _):
        found = CrlRegistry(store).register(
            source, ca_certificate_id=ca_certificate_id,
            issuer_certificate_pem=None if issuer_pem is None else issuer_pem.read_text())
    console.print(f"{found.issuer_certificate_id}: {found.revoked_count} revoked "
                  f"({found.issuer_subject})")


@crl_app.command("list")
def crl_list(data_dir: DataDirOption = None) -> None:
    """The CRL sources and the state of their last fetch."""
    with _store(data_dir) as (_, store, _):
        sources = CrlRegistry(store).sources()
    table = Table("issuer id", "subject", "source", "revoked", "next update", "last error")
    for s in sources:
        table.add_row(s.issuer_certificate_id[:16] + "…", s.issuer_subject, s.source,
                      str(s.revoked_count),
                      "" if s.next_update is None else s.next_update.isoformat(),
                      s.last_error or "")
    console.print(table)


@crl_app.command("refresh")
def crl_refresh(data_dir: DataDirOption = None) -> None:
    """Fetch every CRL source now."""
    with _store(data_dir) as (_, store, _):
        count = CrlRegistry(store).refresh()
    console.print(f"{count} CRL(s) refreshed")


@crl_app.command("unregister")
def crl_unregister(
    issuer_certificate_id: Annotated[str, typer.Argument(
        help="The issuer's certificate id, or a unique prefix (as `crl list` shows it).")],
    data_dir: DataDirOption = None,
) -> None:
    """Forget the CRL source of an issuer."""
    with _store(data_dir) as (_, store, _):
        registry = CrlRegistry(store)
        prefix = issuer_certificate_id.lower().rstrip("…")
        matches = [s.issuer_certificate_id for s in registry.sources()
                   if s.issuer_certificate_id.startswith(prefix)]
        if len(matches) > 1:
            err.print(f"[red]{issuer_certificate_id!r} is ambiguous:[/] " + ", ".join(matches))
            raise typer.Exit(2)
        registry.unregister(matches[0] if matches else issuer_certificate_id)


@detect_app.command("violations")
def detect_violations(
        thing: Annotated[str | None, typer.Option(help="Only this thing's.")] = None,
        data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """The active violations, oldest first; an ML violation says why it fired."""
    with _store(data_dir) as (_, store, _account):
        with store.transaction(readonly=True) as uow:
            custom = {name: MetricType(kind) for name, kind, _ in uow.detect.custom_metrics()}
        found = [v for v, _ in StoreRecords(store).active_violations(custom)
                 if thing is None or v.thing_name == thing]
    if as_json:
        console.print_json(json.dumps([v.to_json() for v in found]))
        return
    table = Table("thing", "profile", "behavior", "since", "value", "why")
    for v in found:
        document = v.to_json()
        level = document.get("violationEventAdditionalInfo", {}).get("confidenceLevel")
        explanation = document.get(EXPLANATION_MEMBER) or {}
        why = explanation.get("summary") or (f"ML {level}" if level else "static threshold")
        value = "" if v.last_violation_value is None else json.dumps(
            v.last_violation_value.to_json())
        since = datetime.fromtimestamp(v.violation_start_time, UTC).strftime(
            "%Y-%m-%d %H:%M:%S")
        table.add_row(v.thing_name, v.security_profile_name, v.behavior.name, since, value,
                      why)
    console.print(table)
