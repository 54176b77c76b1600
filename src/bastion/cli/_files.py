"""``bastion files …``: files Bastion serves to devices (firmware, job documents).

``bastion files upload PATH [--name NAME]`` stores a file in the local data directory and
prints its URL, ``https://<api host>:<port>/_bastion/files/<name>``: use it as a job's
``documentSource`` or inside a document's ``${aws:iot:s3-presigned-url:<url>}``
placeholder (``s3://<any bucket>/<name>`` names the same file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..files import FILES_PATH, FilesError, FileService
from ._admin import DataDirOption, api_endpoint, console, err, open_local, record_local

files_app = typer.Typer(no_args_is_help=True,
                        help="Files served to devices through presigned URLs.")


@files_app.command("upload")
def files_upload(
    path: Annotated[Path, typer.Argument(help="The file to upload.", exists=True,
                                         dir_okay=False, readable=True)],
    name: Annotated[str | None, typer.Option(
        help="The file's name in Bastion (default: PATH's file name).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a file of the same name.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Upload a file (local data directory) and print its URL."""
    file_name = name or path.name
    with open_local(data_dir) as local:
        files = FileService.from_datadir(local.store, local.datadir, with_keystore=False)
        try:
            row = files.upload(file_name, path.read_bytes(), overwrite=overwrite)
        except FilesError as exc:
            err.print(f"[red]{exc.message}[/]")
            raise typer.Exit(2) from None
        record_local(local, "UploadFile", {"name": row.name, "size": row.size,
                                           "sha256": row.sha256})
        endpoint = api_endpoint(local.config) or "https://<api host>:<api port>"
    console.print(f"Uploaded [bold]{row.name}[/] ({row.size} bytes, sha256 {row.sha256})",
                  highlight=False)
    print(f"{endpoint}{FILES_PATH}{row.name}", flush=True)
