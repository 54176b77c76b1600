"""``bastion admin …`` and ``bastion aws-profile``: access keys, worked on the data
directory's store directly. This is the bootstrap path (it needs the data directory and
its master key, not an access key), so every change made here is also written to the
trail, as the local user.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.table import Table

from ..access import AccessError, AccessKeyService, AccessKeyStatus, Role
from ..config import Config, ConfigError, load_config
from ..controlplane import database_url
from ..datadir import DataDir, default_data_dir
from ..pki import Keystore, KeystoreError
from ..store import Store, StoreError
from ..trail import Trail, TrailError, TrailKeys

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="BASTION_DATA_DIR", show_default="./bastion-data",
                 help="Data directory (also BASTION_DATA_DIR)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

ADMIN_SERVICE: Final = "bastion"
"""The trail's service name for Bastion's own administration."""


class RoleChoice(str, Enum):
    admin = "admin"
    operator = "operator"
    auditor = "auditor"


# -- the data directory -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Local:
    """The data directory opened for a command: its config and store."""

    datadir: DataDir
    config: Config
    store: Store

    def keystore(self) -> Keystore:
        """:raises KeystoreError: the master key is missing or malformed."""
        try:
            return self.datadir.open_keystore()
        except FileNotFoundError:
            raise KeystoreError(
                f"no master key: set BASTION_MASTER_KEY or restore "
                f"{self.datadir.master_key_path}") from None

    def access_keys(self) -> AccessKeyService:
        """:raises KeystoreError: the master key is missing or malformed."""
        return AccessKeyService(self.store, self.keystore(), cache_ttl=0)

    def trail(self) -> Trail:
        """The trail, keyed under this directory's master key.

        :raises KeystoreError: the master key is missing or malformed.
        """
        return Trail(self.store, TrailKeys.from_keystore(self.keystore()))


def data_dir_path(path: Path | None) -> Path:
    return (path or default_data_dir()).resolve()


@contextmanager
def open_local(data_dir: Path | None) -> Iterator[Local]:
    """Open an initialised data directory's config and store; exits with a message (code
    2) when it is not initialised or its config is bad, (code 1) when the database fails.
    """
    datadir = DataDir(data_dir_path(data_dir))
    if not datadir.exists():
        err.print(f"[red]{datadir.path} is not initialised[/] (run `bastion init`)")
        raise typer.Exit(2)
    try:
        config = load_config(datadir.config_path)
    except ConfigError as exc:
        err.print(f"[red]bad configuration:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        store = Store.open(database_url(config, datadir))
    except StoreError as exc:
        err.print(f"[red]cannot open the database:[/] {exc}")
        raise typer.Exit(1) from None
    try:
        yield Local(datadir, config, store)
    except (KeystoreError, StoreError, TrailError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class _LocalCaller:
    role: str = Role.ADMIN.value


def record_local(local: Local, operation: str, parameters: Mapping[str, object],
                 *, outcome: str = "allowed", error_code: str | None = None,
                 http_status: int = 200, service: str = ADMIN_SERVICE) -> None:
    """Write a change made through the data directory to the trail, as the local user
    (``service`` ``iot`` for the registry changes the API would have trailed)."""
    local.trail().record(
        caller=_LocalCaller(), access_key_id=f"local:{_user()}", source_ip="local",
        service=service, operation=operation, parameters=parameters, outcome=outcome,
        error_code=error_code, http_status=http_status)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry / no login name
        return "unknown"


def _create_key(local: Local, role: Role, description: str) -> tuple[str, str]:
    key_id, secret = local.access_keys().create_access_key(role, description)
    record_local(local, "CreateAccessKey",
                 {"accessKeyId": key_id, "role": role.value, "description": description})
    return key_id, secret


def _print_secret(key_id: str, secret: str, role: Role, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret,
                          "Role": role.value}), flush=True)
        return
    print(f"Access key {key_id} (role {role.value}); the secret is shown only now:", flush=True)
    print(f"  AWS_ACCESS_KEY_ID={key_id}", flush=True)
    print(f"  AWS_SECRET_ACCESS_KEY={secret}", flush=True)


def create_first_admin_key(datadir: DataDir) -> None:
    """For ``bastion init``: create and print the first admin key, unless an active admin
    key exists already (``init --force`` on an installation in use)."""
    with open_local(datadir.path) as local:
        if local.access_keys().has_active_admin_key():
            console.print("  access keys: kept (create more with "
                          "`bastion admin create-access-key`)")
            return
        key_id, secret = _create_key(local, Role.ADMIN, "created by bastion init")
    _print_secret(key_id, secret, Role.ADMIN, as_json=False)
    print("  Use it with the AWS CLI: bastion aws-profile --access-key-id " + key_id,
          flush=True)


# -- bastion admin ----------------------------------------------------------------------

admin_app = typer.Typer(no_args_is_help=True,
                        help="Access keys of the API (works on the data directory).")


@admin_app.command("create-access-key")
def create_access_key(
    role: Annotated[RoleChoice, typer.Option(help="admin, operator (no key management) or "
                                             "auditor (read-only).")],
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an access key and print its secret (once)."""
    with open_local(data_dir) as local:
        try:
            key_id, secret = _create_key(local, Role(role.value), description)
        except ValueError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from None
    _print_secret(key_id, secret, Role(role.value), as_json)


@admin_app.command("list-access-keys")
def list_access_keys(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """List access keys (never their secrets)."""
    with open_local(data_dir) as local:
        keys = local.access_keys().list_access_keys()
    if as_json:
        print(json.dumps([{"AccessKeyId": k.access_key_id, "Role": k.role.value,
                           "Status": k.status.value, "Description": k.description,
                           "CreateDate": k.creation_date.isoformat()} for k in keys],
                         indent=2))
        return
    table = Table("Role", "Status", "Created (UTC)", "Description")
    table.add_column("Access key id", no_wrap=True)
    table.columns.insert(0, table.columns.pop())
    for key in keys:
        table.add_row(key.access_key_id, key.role.value, key.status.value,
                      key.creation_date.strftime("%Y-%m-%d %H:%M:%S"), key.description)
    console.print(table)


def _change(data_dir: Path | None, access_key_id: str, operation: str) -> None:
    with open_local(data_dir) as local:
        service = local.access_keys()
        action = {"DisableAccessKey": service.disable_access_key,
                  "EnableAccessKey": service.enable_access_key,
                  "DeleteAccessKey": service.delete_access_key}[operation]
        try:
            action(access_key_id)
        except AccessError as exc:
            record_local(local, operation, {"accessKeyId": access_key_id}, outcome="error",
                         error_code=exc.aws_error_type, http_status=exc.http_status)
            err.print(f"[red]{exc.aws_error_type}: {exc}[/]")
            raise typer.Exit(1) from None
        record_local(local, operation, {"accessKeyId": access_key_id})


@admin_app.command("disable-access-key")
def disable_access_key(access_key_id: str, data_dir: DataDirOption = None) -> None:
    """Disable an access key (a running server notices within seconds)."""
    _change(data_dir, access_key_id, "DisableAccessKey")
    console.print(f"Access key {access_key_id} disabled.")


@admin_app.command("enable-access-key")
def enable_access_key(access_key_id: str, data_dir: DataDirOption = None) -> None:
    """Enable a disabled access key."""
    _change(data_dir, access_key_id, "EnableAccessKey")
    console.print(f"Access key {access_key_id} enabled.")


@admin_app.command("delete-access-key")
def delete_access_key(access_key_id: str, data_dir: DataDirOption = None) -> None:
    """Delete an access key for good."""
    _change(data_dir, access_key_id, "DeleteAccessKey")
    console.print(f"Access key {access_key_id} deleted.")


# -- bastion aws-profile ----------------------------------------------------------------

# Identifiers of the `services` section / AWS_ENDPOINT_URL_<ID> variables (botocore).
_ENDPOINT_IDS: Final = ("iot", "iot_data_plane", "iot_jobs_data_plane")


def api_endpoint(config: Config) -> str | None:
    """The API's URL as configured (``None`` when the port is chosen at start)."""
    api = config.api
    if api.port == 0:
        return None
    host = api.public_host or api.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{'http' if api.plaintext else 'https'}://{host}:{api.port}"


def profile_text(*, profile: str, region: str, endpoint: str, ca_bundle: Path | None,
                 access_key_id: str, secret: str) -> str:
    """The ``~/.aws/config`` and ``~/.aws/credentials`` snippets and the other forms."""
    section = "default" if profile == "default" else f"profile {profile}"
    ca_line = f"ca_bundle = {ca_bundle}\n" if ca_bundle else ""
    services = "".join(f"{name} =\n  endpoint_url = {endpoint}\n" for name in _ENDPOINT_IDS)
    env = [f"AWS_ENDPOINT_URL_{name.upper()}={shlex.quote(endpoint)}"
           for name in _ENDPOINT_IDS]
    if ca_bundle:
        env.append(f"AWS_CA_BUNDLE={shlex.quote(str(ca_bundle))}")
    env += [f"AWS_ACCESS_KEY_ID={access_key_id}", f"AWS_SECRET_ACCESS_KEY={secret}",
            f"AWS_DEFAULT_REGION={region}"]
    per_command = f"--endpoint-url {shlex.quote(endpoint)}"
    if ca_bundle:
        per_command += f" --ca-bundle {shlex.quote(str(ca_bundle))}"
    return (
        f"# ~/.aws/config  (AWS CLI >= 1.29 / 2.13, boto3 >= 1.28)\n"
        f"[{section}]\n"
        f"region = {region}\n"
        f"output = json\n"
        f"{ca_line}"
        f"services = {profile}-endpoints\n"
        f"\n"
        f"[services {profile}-endpoints]\n"
        f"{services}"
        f"\n"
        f"# ~/.aws/credentials\n"
        f"[{profile}]\n"
        f"aws_access_key_id = {access_key_id}\n"
        f"aws_secret_access_key = {secret}\n"
        f"\n"
        f"# Then: aws --profile {profile} iot list-things\n"
        f"#\n"
        f"# Or, for this shell only (also botocore >= 1.31):\n"
        + "".join(f"#   export {line}\n" for line in env)
        + f"#\n"
        f"# Older AWS CLIs ignore endpoint settings in profiles; pass them per command:\n"
        f"#   aws --profile {profile} {per_command} iot list-things\n"
    )


@dataclass(frozen=True, slots=True)
class _ProfileKey:
    access_key_id: str
    secret: str
    created: bool


def _profile_key(local: Local, access_key_id: str | None, role: Role,
                 profile: str, *, new_key: bool) -> _ProfileKey:
    """The key a profile carries: ``access_key_id``; else the newest active key this
    command made for ``profile`` with ``role`` (so running it again does not mint a key
    each time); else (or with ``new_key``) a new one. Reading a secret is trailed."""
    service = local.access_keys()
    if access_key_id is None and not new_key:
        description = _profile_description(profile)
        earlier = [key for key in service.list_access_keys()
                   if key.description == description and key.role is role
                   and key.status is AccessKeyStatus.ACTIVE]
        if earlier:
            access_key_id = earlier[-1].access_key_id
    if access_key_id is not None:
        try:
            secret = service.reveal_secret(access_key_id)
        except AccessError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        record_local(local, "RevealAccessKeySecret", {"accessKeyId": access_key_id})
        return _ProfileKey(access_key_id, secret, False)
    key_id, secret = _create_key(local, role, _profile_description(profile))
    return _ProfileKey(key_id, secret, True)


def _profile_description(profile: str) -> str:
    return f"bastion aws-profile {profile}"


def aws_profile(
    profile: Annotated[str, typer.Option(help="AWS profile name.")] = "bastion",
    access_key_id: Annotated[str | None, typer.Option(
        help="Use this existing key (its secret is read from the data directory); "
             "default: the key this command made for the profile before, else a new one."
    )] = None,
    new_key: Annotated[bool, typer.Option(
        "--new-key", help="Create a new key even when the profile has one.")] = False,
    role: Annotated[RoleChoice, typer.Option(
        help="Role of the key created when --access-key-id is not given.")
    ] = RoleChoice.operator,
    endpoint_url: Annotated[str | None, typer.Option(
        help="The API's URL; default: from the data directory's [api] config.")] = None,
    region: Annotated[str | None, typer.Option(
        help="Region; default: the configured [account] region.")] = None,
    env: Annotated[bool, typer.Option(
        "--env", help="Print only `export` lines, for eval \"$(bastion aws-profile --env)\"."
    )] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Print an AWS CLI / boto3 profile for this Bastion: `aws iot list-things` in one step."""
    if not profile or any(ch in profile for ch in "[]\n\r "):
        err.print(f"[red]invalid profile name {profile!r}[/]")
        raise typer.Exit(2)
    with open_local(data_dir) as local:
        endpoint = endpoint_url or api_endpoint(local.config)
        if endpoint is None:
            err.print("[red]the API port is chosen at start ([api] port = 0):[/] "
                      "pass --endpoint-url")
            raise typer.Exit(2)
        key = _profile_key(local, access_key_id, Role(role.value), profile,
                           new_key=new_key)
        ca_bundle = (local.datadir.ca_cert_path
                     if endpoint.startswith("https:") and local.datadir.ca_cert_path.is_file()
                     else None)
        text = profile_text(profile=profile, region=region or local.config.account.region,
                            endpoint=endpoint, ca_bundle=ca_bundle,
                            access_key_id=key.access_key_id, secret=key.secret)
    if ca_bundle and os.environ.get("AWS_CA_BUNDLE"):
        err.print("[yellow]note:[/] AWS_CA_BUNDLE is set in this shell; it overrides the "
                  "profile's ca_bundle (unset it, or use the --ca-bundle form)")
    if key.created:
        err.print(f"Created access key {key.access_key_id} (role {role.value}) for profile "
                  f"{profile}.")
    elif access_key_id is None:
        err.print(f"Reusing access key {key.access_key_id} (role {role.value}) of profile "
                  f"{profile} (--new-key for another).")
    if env:
        for line in text.splitlines():
            if line.startswith("#   export "):
                print(line[len("#   "):])
        return
    print(text, end="", flush=True)


# `app.add_typer(access_app)` merges these into the top level: `bastion admin …`,
# `bastion aws-profile`.
access_app = typer.Typer()
access_app.add_typer(admin_app, name="admin")
access_app.command("aws-profile")(aws_profile)
