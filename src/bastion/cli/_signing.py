"""``bastion signing …``: the code-signing keys and CA, on the local data directory.

``bastion signing ca`` prints the code-signing CA's certificate (creating the CA on first
use): what devices pin to check firmware signatures — never the device CA.
``bastion signing import-key KEY.pem`` seals an ECDSA P-256 private key into Bastion,
has the code-signing CA certify it, and prints the certificate ARN to give
PutSigningProfile as ``signingMaterial.certificateArn``; Bastion keeps the key sealed by
the master key and never answers it. (PutSigningProfile without ``signingMaterial``
generates a key in Bastion instead.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..files import FileService
from ..signing import SigningError, SigningService
from ._admin import DataDirOption, Local, console, err, open_local, record_local

signing_app = typer.Typer(no_args_is_help=True,
                          help="Code signing: the code-signing CA and signing keys.")


def _service(local: Local) -> SigningService:
    return SigningService(
        local.store, local.keystore(),
        FileService.from_datadir(local.store, local.datadir, with_keystore=False),
        account=local.config.account,
        ca_certificate_path=local.datadir.ca_dir / "code-signing-ca.cert.pem")


@signing_app.command("ca")
def signing_ca(data_dir: DataDirOption = None) -> None:
    """Print the code-signing CA's certificate (PEM), the one devices pin."""
    with open_local(data_dir) as local:
        pem = _service(local).ca_certificate_pem()
    print(pem, end="", flush=True)


@signing_app.command("import-key")
def signing_import_key(
    path: Annotated[Path, typer.Argument(help="The ECDSA P-256 private key (PEM).",
                                         exists=True, dir_okay=False, readable=True)],
    name: Annotated[str, typer.Option(help="The certificate's common name.")] =
        "Bastion code signing (imported)",
    data_dir: DataDirOption = None,
) -> None:
    """Import a signing key (sealed by the master key) and print its certificate ARN."""
    with open_local(data_dir) as local:
        try:
            arn = _service(local).import_certificate(path.read_bytes(), name)
        except SigningError as exc:
            err.print(f"[red]{exc.message}[/]")
            raise typer.Exit(2) from None
        record_local(local, "ImportSigningKey", {"certificateArn": arn, "commonName": name})
    console.print("Imported; the key is sealed in Bastion (delete your copy if you can).",
                  highlight=False)
    print(arn, flush=True)
