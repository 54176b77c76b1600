"""``[detect]`` in the configuration file and ``bastion serve --detect-interval``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, DetectConfig, load_config


def test_defaults_match_aws() -> None:
    assert DetectConfig().interval == 300.0
    assert DetectConfig().invalidate_after == 2 * 86400


def test_detect_section(tmp_path: Path) -> None:
    path = tmp_path / "bastion.toml"
    path.write_text("[detect]\ninterval = 5\n", encoding="utf-8")
    assert load_config(path).detect.interval == 5.0
    path.write_text('[detect]\ninterval = "soon"\n', encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)


def test_serve_has_the_option() -> None:
    from typer.testing import CliRunner

    from bastion.cli._app import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert "--detect-interval" in result.output
