"""``bastion acm import-certificate`` on a data directory (air-gapped, no boto3): the
certificate is imported as ImportCertificate would (same checks, key sealed by the master
key), recorded in the trail, usable by a domain configuration; refusals exit 2 with
ACM's error."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from bastion.cli._app import app
from bastion.clock import SystemClock
from bastion.config import Config
from bastion.datadir import init_data_dir
from bastion.domains import DomainService
from bastion.store import Store
from bastion.trail import export
from support.server_certs import OperatorCa

runner = CliRunner()


def test_import_certificate_offline(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    where = ["--data-dir", str(datadir.path)]
    issued = OperatorCa().issue("air.example.test")
    cert, key, chain = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "chain.pem"
    cert.write_bytes(issued.certificate_pem)
    key.write_bytes(issued.key_pem)
    chain.write_bytes(issued.chain_pem)

    result = runner.invoke(app, ["acm", "import-certificate", str(cert), str(key),
                                 "--chain", str(chain), *where])
    assert result.exit_code == 0, result.output
    arn = result.output.strip().splitlines()[-1]
    assert arn.startswith("arn:aws:acm:us-east-1:")

    store = Store.open(f"sqlite:///{datadir.db_path}")
    try:
        service = DomainService(store, datadir.open_keystore(), account=Config().account,
                                publish=lambda event: None, clock=SystemClock())
        assert service.describe_certificate(arn).domain_name == "air.example.test"
        service.create_domain_configuration("air", domain_name="air.example.test",
                                            server_certificate_arns=[arn])
        (served,) = [d for d in service.served_domains() if d.domain_name]
        assert served.key is not None
        assert served.key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()) == issued.key_pem
        records = [r for r in export(store) if r["operation"] == "ImportCertificate"]
        assert [r["parameters"] for r in records] == [{"CertificateArn": arn}]
    finally:
        store.close()

    other = OperatorCa().issue("other.example.test")
    key.write_bytes(other.key_pem)
    refused = runner.invoke(app, ["acm", "import-certificate", str(cert), str(key), *where])
    assert refused.exit_code == 2
    assert "ValidationException" in refused.output and "does not match" in refused.output
