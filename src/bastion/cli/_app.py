"""``bastion`` commands: init, serve, device create."""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .. import __version__
from ..config import Config, ConfigError, load_config, with_overrides
from ..controlplane import open_control_plane, provision_device
from ..datadir import DataDir, default_data_dir, init_data_dir
from ..pki import KeystoreError
from ..registry import RegistryError
from ._admin import access_app, create_first_admin_key
from ._baseline import baseline_app
from ._cluster import cluster_app
from ._defender import alerts_app, audit_app, detect_app
from ._domains import acm_app
from ._files import files_app
from ._operator import DeviceTrail, device_create_many, operator_app
from ._rotation import rotation_app
from ._signing import signing_app
from ._status import clients, remove_serve_state, shown_database_url, status, write_serve_state
from ._trail import create_digest_key, trail_app
from ._workloads import audit_findings, audit_run, jobs_app, shadow_app

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Bastion: a self-hosted device gateway with AWS IoT's security plane.")
device_app = typer.Typer(no_args_is_help=True, help="Device identities.")
app.add_typer(device_app, name="device")
app.add_typer(access_app)  # bastion admin …, bastion aws-profile
app.add_typer(trail_app, name="trail")
app.add_typer(operator_app)  # bastion things|certs|policies …, bastion test-authorization
device_app.command("create-many")(device_create_many)
app.add_typer(alerts_app, name="alerts")  # bastion alerts …
app.add_typer(detect_app, name="detect")  # bastion detect violations
app.add_typer(baseline_app, name="baseline")  # bastion baseline apply|check
app.add_typer(audit_app, name="audit")  # bastion audit crl …
app.add_typer(files_app, name="files")  # bastion files upload …
app.add_typer(signing_app, name="signing")  # bastion signing ca|import-key
app.add_typer(cluster_app, name="cluster")  # bastion cluster status
app.add_typer(rotation_app, name="rotation")  # bastion rotation policy …, rotation list
app.add_typer(acm_app, name="acm")  # bastion acm import-certificate
app.command("status")(status)
app.command("clients")(clients)
app.add_typer(jobs_app, name="jobs")  # bastion jobs list|describe|executions|cancel
app.add_typer(shadow_app, name="shadow")  # bastion shadow get|update|delete
audit_app.command("run")(audit_run)
audit_app.command("findings")(audit_findings)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="BASTION_DATA_DIR", show_default="./bastion-data",
                 help="Data directory (also BASTION_DATA_DIR)."),
]


def _data_dir(path: Path | None) -> Path:
    return (path or default_data_dir()).resolve()


def _open_or_init(path: Path) -> DataDir:
    """The data directory at ``path``, initialised first (with the first admin access key,
    printed once) when it does not exist yet — so ``make run`` on a fresh machine is
    ready for both devices and the API."""
    datadir = DataDir(path)
    if not datadir.exists():
        console.print(f"Initialising data directory [bold]{path}[/]")
        datadir = init_data_dir(path)
        create_first_admin_key(datadir)
    return datadir


@app.command()
def init(
    data_dir: DataDirOption = None,
    san: Annotated[list[str], typer.Option("--san", help="Extra server name or IP (repeatable).")] = [],  # noqa: B006
    force: Annotated[bool, typer.Option(help="Replace an existing data directory's keys.")] = False,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="The store: postgresql+psycopg://USER:PASSWORD@HOST:5432/DB "
        "(written to config.toml as [store] database_url); default: BASTION_DATABASE_URL "
        "when set, else SQLite in the data directory. See docs/deploy.md.")] = None,
) -> None:
    """Create the data directory: root CA, server certificate, config; the first admin
    access key in the store Bastion will use."""
    path = _data_dir(data_dir)
    if DataDir(path).exists() and not force:
        err.print(f"[red]{path} is already initialised[/] (use --force to replace its keys)")
        raise typer.Exit(1)
    from ..controlplane import DATABASE_URL_ENV

    if database_url is not None or os.environ.get(DATABASE_URL_ENV):
        _check_store(database_url or os.environ[DATABASE_URL_ENV])
    datadir = init_data_dir(path, extra_names=san, force=force, database_url=database_url)
    console.print(f"Initialised [bold]{datadir.path}[/]")
    console.print(f"  device root CA: {datadir.ca_cert_path}")
    console.print(f"  server certificate: {datadir.server_cert_path}")
    console.print(f"  config: {datadir.config_path}")
    console.print(f"  store: {_shown_store(datadir)}", highlight=False)
    _print_scrape_token(datadir)
    # -- access keys (bastion.access): the first admin key, printed once --------------
    create_first_admin_key(datadir)
    # -- end access keys ---------------------------------------------------------------
    create_digest_key(datadir)
    _builtin_job_templates(datadir)


def _check_store(url: str) -> None:
    """Open (and migrate) the database at ``url`` before anything is written, so a wrong
    URL leaves no half-made data directory; exits 2 (not a URL) or 1 (unusable) with the
    reason, never the password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from ..store import Store

    try:
        make_url(url)
    except ArgumentError:  # the text is not echoed: it may hold a password
        err.print("[red]not a database URL[/] (postgresql+psycopg://USER:PASSWORD@HOST:PORT/"
                  "DATABASE; see docs/deploy.md)")
        raise typer.Exit(2) from None
    shown = shown_database_url(url)
    try:
        Store.open(url).close()
    except Exception as exc:  # noqa: BLE001 - the drivers' errors vary; reported
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        err.print(f"[red]cannot use the database {shown}:[/] {reason.replace(url, shown)}",
                  highlight=False)
        raise typer.Exit(1) from None


def _shown_store(datadir: DataDir) -> str:
    """The store ``datadir`` uses, its password masked; ``?`` when the config is bad."""
    from ..controlplane import database_url

    try:
        return shown_database_url(database_url(load_config(datadir.config_path), datadir))
    except ConfigError:
        return "?"


def _builtin_job_templates(datadir: DataDir) -> None:
    """The job templates every Bastion has (``bastion-upload-logs``); ``serve`` makes
    them too when they are missing."""
    from ..clock import SystemClock
    from ..files import FileService
    from ..jobs import UPLOAD_LOGS_TEMPLATE, JobService, ensure_builtin_templates

    try:
        config = load_config(datadir.config_path)
    except ConfigError:
        return  # serve reports a bad config; the templates wait for the first start
    plane = open_control_plane(config, datadir)
    try:
        jobs = JobService(plane.store, plane.registry, SystemClock(), lambda event: None,
                          documents=FileService.from_datadir(plane.store, datadir))
        ensure_builtin_templates(jobs)
    finally:
        plane.close()
    console.print(f"  job template: {UPLOAD_LOGS_TEMPLATE} (device logs on demand)")


def _print_scrape_token(datadir: DataDir) -> None:
    """Create the metrics scrape token (unless ``[metrics]`` names a file of its own)
    and say where it is; the token itself is never printed."""
    from ..metrics import ScrapeTokenError, ensure_scrape_token

    try:
        config = load_config(datadir.config_path)
    except ConfigError:
        return  # serve reports a bad config; the token waits for the first start
    if not config.metrics.enabled:
        return
    path = (Path(config.metrics.token_file) if config.metrics.token_file
            else datadir.metrics_token_path)
    try:
        ensure_scrape_token(path)
    except (OSError, ScrapeTokenError) as exc:
        err.print(f"[red]metrics token:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"  metrics scrape token (for Prometheus, owner-only): {path}")


@app.command()
def serve(
    data_dir: DataDirOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind the MQTT listeners.")] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="MQTT over TLS port (0 = any free).")] = None,
    alpn_port: Annotated[int | None, typer.Option(help="Extra TLS port for AWS SDKs using ALPN, e.g. 443.")] = None,
    websocket_port: Annotated[int | None, typer.Option(help="MQTT over WebSocket Secure port (wss://…/mqtt, SigV4 or a client certificate), e.g. 443; 0 = off.")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARN or ERROR.")] = None,
    api_host: Annotated[str | None, typer.Option(help="Address of the REST API (default 127.0.0.1).")] = None,
    api_port: Annotated[int | None, typer.Option(help="REST API port (0 = any free; default 8443).")] = None,
    api_plaintext: Annotated[bool, typer.Option("--api-plaintext", help="Serve the REST API over plain HTTP (loopback only).")] = False,
    emulator: Annotated[bool, typer.Option("--emulator", help="Emulator mode for tests: any SigV4 key is accepted, POST /_bastion/reset wipes all state (loopback only).")] = False,
    detect_interval: Annotated[float | None, typer.Option("--detect-interval", min=1.0, help="Seconds between Device Defender detect evaluations (default 300; also lowers the minimum period between device metrics reports).")] = None,
) -> None:
    """Run the broker and the REST API (initialises the data directory when missing)."""
    from ..app import WEBSOCKET_LISTENER, App, run

    path = _data_dir(data_dir)
    datadir = _open_or_init(path)
    try:
        config = load_config(datadir.config_path)
    except ConfigError as exc:
        err.print(f"[red]bad configuration:[/] {exc}")
        raise typer.Exit(2) from None
    config = with_overrides(config, host=host, port=mqtt_port, alpn_port=alpn_port,
                            websocket_port=websocket_port)
    config = _api_overrides(config, host=api_host, port=api_port,
                            plaintext=api_plaintext, emulator=emulator)
    if detect_interval is not None:
        import dataclasses

        config = dataclasses.replace(
            config, detect=dataclasses.replace(config.detect, interval=detect_interval))
    level = (log_level or config.log.level).upper()
    level = {"WARN": "WARNING", "DISABLED": "CRITICAL"}.get(level, level)
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format=LOG_FORMAT)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    log_file = _log_to_file(config, datadir)

    def ready(running: App) -> None:
        shown = "localhost" if config.mqtt.host in ("0.0.0.0", "::", "") else config.mqtt.host
        print(f"Bastion {__version__} serving from {datadir.path}", flush=True)
        print(f"  {'store':<15} {_shown_store(datadir)}", flush=True)
        if log_file is not None:
            print(f"  {'log':<15} {log_file}", flush=True)
        for listener in running.listeners:
            scheme = "mqtts" if listener.tls else "mqtt"
            path = ""
            if listener.name == WEBSOCKET_LISTENER:
                scheme, path = "wss", "/mqtt"
            print(f"  {listener.name:<15} {scheme}://{listener.host}:{listener.port}{path}",
                  flush=True)
        if running.api is not None:
            print(f"  {'api':<15} {running.api.url}", flush=True)
        if running.api is not None and running.console is not None:
            print(f"  {'console':<15} {running.api.url}/console/ (sign in with an access "
                  "key)", flush=True)
        if running.api is not None:
            print(f"  {'health':<15} {running.api.url}/healthz, {running.api.url}/readyz",
                  flush=True)
        if running.api is not None and running.metrics is not None:
            print(f"  {'metrics':<15} {running.api.url}{running.metrics.path} (bearer token "
                  f"in {running.metrics.token_path})", flush=True)
        if running.credentials is not None:
            print(f"  {'credentials':<15} {running.credentials.url}"
                  "/role-aliases/<alias>/credentials", flush=True)
        digests = running.services.digests
        if digests is not None:
            where = ", ".join(sink.id for sink in digests.sinks)
            print(f"  {'trail digests':<15} {where} (verify with "
                  f"{datadir.trail_digest_public_key_path})", flush=True)
        port = running.port()
        devices = datadir.path / "devices"
        cmd = ["mosquitto_pub", "-h", shown, "-p", str(port), "--cafile",
               str(devices / "root-ca.pem"), "--cert", str(devices / "my-device.cert.pem"),
               "--key", str(devices / "my-device.key.pem"), "-i", "my-device",
               "-t", "my-device/hello", "-m", "hello", "-q", "1"]
        print("Connect a device:", flush=True)
        # The command as this shell can run it (often .venv/bin/bastion, not on PATH).
        exe = sys.argv[0] if Path(sys.argv[0]).name == "bastion" else "bastion"
        print(f"  {shlex.quote(exe)} device create my-device --data-dir {shlex.quote(str(datadir.path))}"
              f" --out {shlex.quote(str(devices))}", flush=True)
        print("  " + shlex.join(cmd), flush=True)
        print("Stop with Ctrl-C.", flush=True)
        write_serve_state(
            datadir,
            listeners=[(listener.name,
                        f"{'mqtts' if listener.tls else 'mqtt'}://{listener.host}:{listener.port}")
                       for listener in running.listeners],
            api=None if running.api is None else running.api.url,
            console_url=(f"{running.api.url}/console/"
                         if running.api is not None and running.console is not None else None),
            metrics=(f"{running.api.url}{running.metrics.path}"
                     if running.api is not None and running.metrics is not None else None))

    from ..metrics import ScrapeTokenError

    try:
        exit_status = run(config, datadir, ready)
    except ScrapeTokenError as exc:
        err.print(f"[red]metrics token:[/] {exc}")
        raise typer.Exit(2) from None
    except OSError as exc:
        err.print(f"[red]cannot listen:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        remove_serve_state(datadir)
    if exit_status:
        err.print("[red]a component of Bastion failed; see the log above[/]")
        raise typer.Exit(exit_status)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_to_file(config: Config, datadir: DataDir) -> Path | None:
    """Also write the log to ``[log] file`` (rotated at ``max_bytes``, ``files_kept``
    kept); ``None`` when it is off (the ``logs/`` directory is then not created).

    :raises typer.Exit: the file cannot be opened (code 2).
    """
    from logging.handlers import RotatingFileHandler

    if not config.log.file:
        return None
    path = Path(config.log.file)
    path = path if path.is_absolute() else datadir.path / path
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=config.log.max_bytes,
                                      backupCount=config.log.files_kept, encoding="utf-8")
    except OSError as exc:
        err.print(f"[red]cannot write the log file:[/] {exc}")
        raise typer.Exit(2) from None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    return path


def _api_overrides(config: Config, *, host: str | None, port: int | None, plaintext: bool,
                   emulator: bool) -> Config:
    """Apply the serve command's API flags; refuse unsafe combinations (exit 2)."""
    from ..api import ApiConfigError, check_api_config

    api = config.api
    changes: dict[str, Any] = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    if plaintext:
        changes["plaintext"] = True
    if emulator:
        changes["emulator"] = True
    api = dataclasses.replace(api, **changes)
    try:
        check_api_config(api)
    except ApiConfigError as exc:
        err.print(f"[red]bad API settings:[/] {exc}")
        raise typer.Exit(2) from None
    return dataclasses.replace(config, api=api)


@device_app.command("create")
def device_create(
    name: Annotated[str, typer.Argument(help="Device (thing) name; also its client id.")],
    data_dir: DataDirOption = None,
    out: Annotated[Path | None, typer.Option(help="Where to write the files.")] = None,
    port: Annotated[int, typer.Option(help="Broker port shown in the example command.")] = 8883,
    host: Annotated[str, typer.Option(help="Broker host shown in the example command.")] = "localhost",
    overwrite: Annotated[bool, typer.Option(help="Replace existing files for this device.")] = False,
) -> None:
    """Register a device: thing, certificate from the Bastion CA, least-privilege policy."""
    path = _data_dir(data_dir)
    datadir = _open_or_init(path)
    out_dir = (out or Path.cwd()).resolve()
    try:
        config = load_config(datadir.config_path)
    except ConfigError as exc:
        err.print(f"[red]bad configuration:[/] {exc}")
        raise typer.Exit(2) from None
    plane = open_control_plane(config, datadir)
    trail = DeviceTrail(plane, datadir, config)
    try:
        files = provision_device(plane, datadir, name, out_dir, overwrite=overwrite,
                                 record=trail.record)
    except (ValueError, FileExistsError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except RegistryError as exc:
        trail.refused(name, exc)
        err.print(f"[red]{exc.aws_error_type}: {exc}[/]")
        raise typer.Exit(1) from None
    except KeystoreError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    finally:
        plane.close()
    console.print(f"Device [bold]{name}[/] registered: thing {files.thing_name}, "
                  f"certificate {files.certificate_id} (ACTIVE), policy {files.policy_name}")
    console.print(f"  certificate: {files.cert_path}")
    console.print(f"  private key: {files.key_path}")
    console.print(f"  server CA:   {files.root_ca_path}")
    console.print(f"It may connect only with client id [bold]{name}[/] and use topics under "
                  f"{name}/… and $aws/things/{name}/….")
    cmd = ["mosquitto_pub", "-h", host, "-p", str(port), "--cafile", str(files.root_ca_path),
           "--cert", str(files.cert_path), "--key", str(files.key_path), "-i", name,
           "-t", f"{name}/hello", "-m", "hello", "-q", "1"]
    console.print("Publish as this device:")
    print("  " + shlex.join(cmd), flush=True)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def _print_version(value: bool) -> None:
    if value:
        print(f"bastion {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    """Bastion: a self-hosted device gateway with AWS IoT's security plane."""


def main() -> None:
    app()
