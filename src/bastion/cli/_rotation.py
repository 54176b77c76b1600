"""``bastion rotation …``: certificate rotation policies per thing group, and the
rotations so far — local commands on the data directory's store.

Rotation policies are Bastion's own settings (AWS IoT has no such resource), so they are
set here and not through the ``iot`` API; the fleet default is ``[rotation]`` in
``config.toml``. A running ``bastion serve`` reads the policies at every sweep and
confirmation. Each change is recorded in the trail as the local user.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from ..rotation import FleetPolicy, GroupPolicy, RotationError, RotationPolicies, RotationStatus
from ._admin import DataDirOption, JsonOption, console, err, open_local, record_local

rotation_app = typer.Typer(no_args_is_help=True,
                           help="Certificate rotation: policies per thing group, rotations.")
policy_app = typer.Typer(no_args_is_help=True,
                         help="Rotation policies of thing groups (over the fleet default).")
rotation_app.add_typer(policy_app, name="policy")


def _policies(local: Any) -> RotationPolicies:
    settings = local.config.rotation
    return RotationPolicies(local.store, FleetPolicy(
        settings.max_age_days, settings.rotate_before_expiry_days,
        settings.deactivate_after_hours, settings.revoke_after_hours, settings.start_jobs,
        settings.alert_targets))


def _policy_json(policy: GroupPolicy) -> dict[str, Any]:
    names = {"group_name": "thingGroupName", "max_age_days": "maxAgeDays",
             "rotate_before_expiry_days": "rotateBeforeExpiryDays",
             "deactivate_after_hours": "deactivateAfterHours",
             "revoke_after_hours": "revokeAfterHours", "start_jobs": "startJobs",
             "alert_targets": "alertTargets"}
    return {names[k]: (list(v) if isinstance(v, tuple) else v)
            for k, v in asdict(policy).items() if v is not None}


@policy_app.command("set")
def set_policy(
    group: str,
    max_age_days: Annotated[int | None, typer.Option(
        help="Rotate certificates older than this.")] = None,
    rotate_before_expiry_days: Annotated[int | None, typer.Option(
        help="Rotate certificates expiring within this many days.")] = None,
    deactivate_after_hours: Annotated[int | None, typer.Option(
        help="Grace before the old certificate is deactivated.")] = None,
    revoke_after_hours: Annotated[int | None, typer.Option(
        help="Grace before the old certificate is revoked.")] = None,
    start_jobs: Annotated[bool | None, typer.Option(
        "--start-jobs/--alert-only", help="Whether the sweep starts rotation jobs.")] = None,
    alert_target: Annotated[list[str] | None, typer.Option(
        help="Alert target told of due certificates (repeatable).")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set (replace) a thing group's rotation policy; unset settings are the fleet
    default's."""
    try:
        policy = GroupPolicy(group, max_age_days, rotate_before_expiry_days,
                             deactivate_after_hours, revoke_after_hours, start_jobs,
                             None if alert_target is None else tuple(alert_target))
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    with open_local(data_dir) as local:
        try:
            _policies(local).put(policy)
        except RotationError as exc:
            err.print(f"[red]{exc.message}[/]")
            raise typer.Exit(1) from None
        record_local(local, "SetRotationPolicy", _policy_json(policy))
    console.print(json.dumps(_policy_json(policy)))


@policy_app.command("get")
def get_policy(group: str, data_dir: DataDirOption = None) -> None:
    """A thing group's rotation policy (JSON)."""
    with open_local(data_dir) as local:
        try:
            policy = _policies(local).get(group)
        except RotationError as exc:
            err.print(f"[red]{exc.message}[/]")
            raise typer.Exit(1) from None
    console.print(json.dumps(_policy_json(policy)))


@policy_app.command("list")
def list_policies(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Every thing group's rotation policy, and the fleet default."""
    with open_local(data_dir) as local:
        policies = _policies(local)
        groups = policies.all()
        fleet = policies.fleet
    if as_json:
        console.print(json.dumps({"fleetDefault": asdict(fleet),
                                  "thingGroups": [_policy_json(p) for p in groups]}))
        return
    table = Table("thing group", "max age (days)", "before expiry (days)",
                  "deactivate after (h)", "revoke after (h)", "starts jobs", "alert targets")

    def show(value: object, fallback: str = "default") -> str:
        return fallback if value is None else str(value)

    table.add_row("(fleet default)", show(fleet.max_age_days or None, "audit threshold"),
                  show(fleet.rotate_before_expiry_days or None, "audit threshold"),
                  str(fleet.deactivate_after_hours), str(fleet.revoke_after_hours),
                  str(fleet.start_jobs), ", ".join(fleet.alert_targets))
    for p in groups:
        table.add_row(p.group_name, show(p.max_age_days), show(p.rotate_before_expiry_days),
                      show(p.deactivate_after_hours), show(p.revoke_after_hours),
                      show(p.start_jobs), show(None if p.alert_targets is None
                                               else ", ".join(p.alert_targets)))
    console.print(table)


@policy_app.command("delete")
def delete_policy(group: str, data_dir: DataDirOption = None) -> None:
    """Remove a thing group's rotation policy (its things fall back to other groups'
    policies or the fleet default)."""
    with open_local(data_dir) as local:
        try:
            _policies(local).delete(group)
        except RotationError as exc:
            err.print(f"[red]{exc.message}[/]")
            raise typer.Exit(1) from None
        record_local(local, "DeleteRotationPolicy", {"thingGroupName": group})


@rotation_app.command("list")
def list_rotations(
    thing: Annotated[str | None, typer.Option(help="Only this thing's rotations.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    data_dir: DataDirOption = None, as_json: JsonOption = False,
) -> None:
    """Rotations, newest first: status, certificates, and why a failed one failed."""
    with open_local(data_dir) as local, local.store.transaction(readonly=True) as uow:
        rows = uow.rotations.listing(thing_name=thing, limit=limit)
    if as_json:
        def text(value: object) -> object:
            return value.isoformat() if isinstance(value, datetime) else value
        console.print(json.dumps([{k: text(v) for k, v in asdict(row).items()}
                                  for row in rows]))
        return
    table = Table("rotation", "thing", "status", "old certificate", "new certificate",
                  "created", "reason")
    for row in rows:
        status = RotationStatus(row.status).value
        table.add_row(row.rotation_id, row.thing_name, status, row.old_certificate_id[:12],
                      (row.new_certificate_id or "")[:12], row.created_at.isoformat(),
                      row.reason or "")
    console.print(table)
