"""``bastion acm import-certificate``: import a server certificate for a domain
configuration into the local data directory, exactly as ACM's ImportCertificate does
through the API (the same checks; the key sealed by the master key) — for air-gapped
setups without boto3. Prints the certificate ARN to give CreateDomainConfiguration as
``serverCertificateArns``.

A re-import (``--certificate-arn``) made this way reaches a running Bastion's listeners
at its next domain change or restart (the command does not reach the running process);
through the API it is live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..clock import SystemClock
from ..domains import DomainsError, DomainService
from ._admin import DataDirOption, console, err, open_local, record_local

acm_app = typer.Typer(no_args_is_help=True,
                      help="Server certificates for domain configurations (ACM's analog).")


@acm_app.command("import-certificate")
def import_certificate(
    certificate: Annotated[Path, typer.Argument(help="The server certificate (PEM).",
                                                exists=True, dir_okay=False,
                                                readable=True)],
    private_key: Annotated[Path, typer.Argument(help="Its private key (PEM, unencrypted).",
                                                exists=True, dir_okay=False,
                                                readable=True)],
    chain: Annotated[Path | None, typer.Option(
        "--chain", help="The issuing chain (PEM), issuer first.", exists=True,
        dir_okay=False, readable=True)] = None,
    certificate_arn: Annotated[str | None, typer.Option(
        "--certificate-arn", help="Re-import over this certificate.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Import a server certificate (key sealed at rest) and print its ARN."""
    with open_local(data_dir) as local:
        service = DomainService(local.store, local.keystore(), account=local.config.account,
                                publish=lambda event: None, clock=SystemClock())
        try:
            arn = service.import_certificate(
                certificate.read_bytes(), private_key.read_bytes(),
                chain.read_bytes() if chain is not None else None,
                certificate_arn=certificate_arn)
        except DomainsError as exc:
            err.print(f"[red]{exc.aws_error_type}: {exc.message}[/]", highlight=False)
            raise typer.Exit(2) from None
        record_local(local, "ImportCertificate", {"CertificateArn": arn})
    console.print("Imported; the key is sealed in Bastion (delete your copy if you can).",
                  highlight=False)
    print(arn, flush=True)
