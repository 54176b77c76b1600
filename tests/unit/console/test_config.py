"""The [console] section of config.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, ConsoleConfig, load_config


def test_defaults() -> None:
    config = ConsoleConfig()
    assert (config.enabled, config.idle_timeout, config.absolute_timeout) == (True, 900.0, 28800.0)
    assert (config.sign_in_attempts, config.sign_in_window) == (10, 300.0)


def test_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[console]\nidle_timeout = 300\nabsolute_timeout = 3600\n"
                    "sign_in_attempts = 5\n")
    console = load_config(path).console
    assert (console.idle_timeout, console.absolute_timeout, console.sign_in_attempts) == (
        300.0, 3600.0, 5)


@pytest.mark.parametrize("text", [
    "idle_timeout = 0",
    "idle_timeout = 7200\nabsolute_timeout = 3600",  # idle beyond absolute
    "absolute_timeout = 864000",                    # more than a week
    "sign_in_attempts = 0",
    "sign_in_window = -1",
    "idle_timeout = \"15m\"",
    "session_store = \"redis\"",
])
def test_bad_values_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[console]\n{text}\n")
    with pytest.raises(ConfigError):
        load_config(path)
