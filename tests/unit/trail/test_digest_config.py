"""``[trail]`` in ``config.toml``: the digest interval, the sinks, the retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, TrailConfig, load_config


def _load(tmp_path: Path, text: str) -> TrailConfig:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path).trail


def test_digests_are_on_by_default_into_the_data_directory(tmp_path: Path) -> None:
    trail = _load(tmp_path, "")
    assert trail.enabled and trail.digest_dir == "trail-digests"
    assert (trail.digest_interval_minutes, trail.digest_retention_days) == (60.0, 365)
    assert trail.digest_s3_bucket == ""


def test_every_key(tmp_path: Path) -> None:
    trail = _load(tmp_path, '[trail]\ndigest_interval_minutes = 15\ndigest_dir = ""\n'
                            'digest_s3_bucket = "audit"\ndigest_s3_prefix = "a/b/"\n'
                            'digest_s3_endpoint_url = "http://10.0.0.5:9000"\n'
                            'digest_retention_days = 2555\n')
    assert trail.digest_interval_minutes == 15.0 and trail.digest_dir == ""
    assert (trail.digest_s3_bucket, trail.digest_s3_prefix) == ("audit", "a/b/")
    assert trail.digest_retention_days == 2555 and trail.enabled
    assert not _load(tmp_path, '[trail]\ndigest_dir = ""\n').enabled


@pytest.mark.parametrize(("text", "match"), [
    ("digest_interval_minutes = 0", "must be positive"),
    ("digest_retention_days = 0", "at least 1"),
    ('digest_s3_prefix = "/x/"', "must not start"),
    ("digest_retention_days = 1.5", "must be int"),
    ("digest_bucket = 'x'", "unknown key trail.digest_bucket"),
])
def test_bad_values_are_refused(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _load(tmp_path, f"[trail]\n{text}\n")
