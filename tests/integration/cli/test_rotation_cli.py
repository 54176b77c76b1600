"""``bastion rotation …`` on a data directory: group policies set, read, listed,
deleted, recorded in the trail; refusals exit non-zero with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bastion.cli._app import app
from bastion.config import Config
from bastion.controlplane import open_control_plane
from bastion.datadir import init_data_dir
from bastion.trail import export

runner = CliRunner()


def bastion(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_rotation_policies_of_thing_groups(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    where = ["--data-dir", str(datadir.path)]
    plane = open_control_plane(Config(), datadir)
    try:
        plane.registry.create_thing_group("cameras")
    finally:
        plane.close()

    out = bastion("rotation", "policy", "set", "cameras", "--max-age-days", "90",
                  "--start-jobs", "--alert-target", "ops", *where)
    assert json.loads(out) == {"thingGroupName": "cameras", "maxAgeDays": 90,
                               "startJobs": True, "alertTargets": ["ops"]}
    assert json.loads(bastion("rotation", "policy", "get", "cameras", *where))[
        "maxAgeDays"] == 90
    listed = json.loads(bastion("rotation", "policy", "list", "--json", *where))
    assert listed["fleetDefault"]["max_age_days"] == 0  # the audit's threshold
    assert [p["thingGroupName"] for p in listed["thingGroups"]] == ["cameras"]

    # Refusals: no such group, a revocation grace shorter than the deactivation grace,
    # an age out of range.
    missing = runner.invoke(app, ["rotation", "policy", "set", "nosuch", "--max-age-days",
                                  "90", *where])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    short = runner.invoke(app, ["rotation", "policy", "set", "cameras",
                                "--deactivate-after-hours", "48", "--revoke-after-hours",
                                "24", *where])
    assert short.exit_code == 1 and "revokeAfterHours" in short.output
    out_of_range = runner.invoke(app, ["rotation", "policy", "set", "cameras",
                                       "--max-age-days", "0", *where])
    assert out_of_range.exit_code == 2 and "maxAgeDays" in out_of_range.output

    bastion("rotation", "policy", "delete", "cameras", *where)
    gone = runner.invoke(app, ["rotation", "policy", "get", "cameras", *where])
    assert gone.exit_code == 1 and "no rotation policy" in gone.output
    assert json.loads(bastion("rotation", "list", "--json", *where)) == []

    plane = open_control_plane(Config(), datadir)
    try:
        operations = [r["operation"] for r in export(plane.store)]
    finally:
        plane.close()
    assert operations[-2:] == ["SetRotationPolicy", "DeleteRotationPolicy"]
