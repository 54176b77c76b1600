"""The [iot_logs] section of config.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, IoTLogsConfig, load_config


def test_the_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[iot_logs]\ndefault_level = "INFO"\nmax_bytes = 4096\n'
                    'syslog_address = "127.0.0.1:514"\nsyslog_facility = "local3"\n')
    config = load_config(path).iot_logs
    assert config == IoTLogsConfig(default_level="INFO", max_bytes=4096,
                                   syslog_address="127.0.0.1:514", syslog_facility="local3")
    assert load_config(tmp_path / "missing.toml").iot_logs.default_level == "ERROR"


@pytest.mark.parametrize("line", [
    'default_level = "VERBOSE"', "max_bytes = 10", "files_kept = 0", "queue_size = 0",
    'syslog_address = "localhost"', "refresh_seconds = 0",
], ids=["level", "max-bytes", "files-kept", "queue", "syslog", "refresh"])
def test_bad_values_are_refused(tmp_path: Path, line: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[iot_logs]\n{line}\n")
    with pytest.raises(ConfigError, match=r"\[iot_logs\]"):
        load_config(path)
