"""``config.toml`` loading: list fields, and ``[mqtt]``'s PROXY protocol keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, MQTTConfig, load_config


def _load(tmp_path: Path, text: str) -> MQTTConfig:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path).mqtt


def test_proxy_protocol_is_off_by_default(tmp_path: Path) -> None:
    mqtt = _load(tmp_path, "[mqtt]\nport = 8883\n")
    assert (mqtt.proxy_protocol, mqtt.proxy_trusted) == (False, ())


def test_proxy_keys(tmp_path: Path) -> None:
    mqtt = _load(tmp_path, '[mqtt]\nproxy_protocol = true\n'
                           'proxy_trusted = ["10.0.0.0/8", "2001:db8::5"]\n')
    assert mqtt.proxy_protocol is True
    assert mqtt.proxy_trusted == ("10.0.0.0/8", "2001:db8::5")


@pytest.mark.parametrize("text,match", [
    pytest.param('proxy_trusted = "10.0.0.0/8"', "list of strings", id="a-string"),
    pytest.param("proxy_trusted = [10]", "list of strings", id="a-number-in-the-list"),
    pytest.param('proxy_trusted = ["10.0.0.0/8", ["10.1.0.0/16"]]', "list of strings",
                 id="nested"),
    pytest.param('proxy_trusted = ["10.0.0.1/8"]', "host bits", id="host-bits-set"),
    pytest.param('proxy_trusted = ["balancer.example"]', "balancer.example", id="a-name"),
    pytest.param("proxy_protocol = true", "proxy_trusted", id="on-without-trusted"),
    pytest.param("proxy_protocol = true\nproxy_trusted = []", "proxy_trusted",
                 id="on-with-none-trusted"),
    pytest.param('proxy_protocol = "yes"', "bool", id="not-a-bool"),
])
def test_bad_proxy_keys(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _load(tmp_path, f"[mqtt]\n{text}\n")


def test_trusted_given_in_code() -> None:
    listed = MQTTConfig(proxy_trusted=["127.0.0.1"])  # type: ignore[arg-type]
    assert listed.proxy_trusted == ("127.0.0.1",)
    with pytest.raises(TypeError):
        MQTTConfig(proxy_trusted="127.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="proxy_trusted"):
        MQTTConfig(proxy_protocol=True)
