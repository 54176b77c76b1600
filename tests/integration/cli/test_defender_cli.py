"""``bastion alerts …`` and ``bastion audit crl …`` on a data directory."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from bastion.cli._app import app
from bastion.datadir import init_data_dir
from support.audit_fleet import crl_pem, make_ca

runner = CliRunner()


def bastion(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_alert_targets_and_crls(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    where = ["--data-dir", str(datadir.path)]
    out = bastion("alerts", "create-webhook", "ops", "https://hooks.example.com/b", *where)
    assert "arn:aws:sns:us-east-1:123456789012:ops" in out and "signing key" in out
    bastion("alerts", "create-mqtt", "feed", "ops/alerts", "--qos", "0", *where)
    bastion("alerts", "enable", "feed", "--off", *where)
    listed = json.loads(bastion("alerts", "list", "--json", *where))
    assert {(t["name"], t["kind"], t["enabled"]) for t in listed} == {
        ("ops", "WEBHOOK", True), ("feed", "MQTT", False)}
    refused = runner.invoke(app, ["alerts", "create-webhook", "clear", "http://x.example",
                                  *where])
    assert refused.exit_code == 1 and "https" in refused.output
    bastion("alerts", "delete", "feed", *where)
    assert bastion("alerts", "dead-letters", *where) == ""
    # A CRL of an issuer Bastion does not hold (the root above an intermediate).
    now = datetime.now(UTC)
    ca = make_ca("CLI CA", rng=random.Random(1), not_before=now - timedelta(days=1),
                 not_after=now + timedelta(days=30))
    pem = tmp_path / "issuer.pem"
    pem.write_text(ca.pem)
    crl = tmp_path / "issuer.crl"
    crl.write_bytes(crl_pem(ca, [3, 4], now=now))
    out = bastion("audit", "crl", "register", str(crl), "--issuer-pem", str(pem), *where)
    assert f"{ca.ident}: 2 revoked" in out
    assert "CN=CLI CA" in bastion("audit", "crl", "list", *where)
    assert "1 CRL(s) refreshed" in bastion("audit", "crl", "refresh", *where)
    bastion("audit", "crl", "unregister", ca.ident, *where)
    missing = runner.invoke(app, ["audit", "crl", "unregister", ca.ident, *where])
    assert missing.exit_code == 1
