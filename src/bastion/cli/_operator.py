"""Everyday operator commands over the API, with boto3: ``bastion things|certs|policies``,
``bastion test-authorization``; and ``bastion device create-many`` (local, in bulk).

Connection settings, for every API command:

* endpoint: ``--endpoint-url`` / ``BASTION_API_URL``; else the AWS configuration's
  endpoint for ``iot`` (``AWS_ENDPOINT_URL_IOT``, ``AWS_ENDPOINT_URL``, the profile's
  ``services`` section or ``endpoint_url``); else the API of the ``bastion serve``
  running from the data directory (its ``serve.json``: a port chosen at start is found
  too); else the data directory's ``[api]`` config. Never AWS's own endpoint: a command meant for Bastion must not act on a real AWS
  account because a profile lacked an endpoint;
* credentials: boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
  ``--profile``/``AWS_PROFILE``); ``bastion aws-profile`` prints a profile;
* CA bundle: ``--ca-bundle``, else the profile's ``ca_bundle``, else the data
  directory's CA certificate (when there is one), else ``AWS_CA_BUNDLE``;
* region: ``--region``, else the profile's or ``AWS_DEFAULT_REGION``, else the data
  directory's ``[account]`` region.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..account import format_arn, parse_arn
from ..config import Config, ConfigError, load_config
from ..controlplane import ControlPlane, open_control_plane, provision_device
from ..datadir import DataDir
from ..pki import KeystoreError
from ..registry import RegistryError
from ._admin import (
    DataDirOption,
    JsonOption,
    Local,
    api_endpoint,
    console,
    data_dir_path,
    err,
    record_local,
)
from ._status import running_server

if TYPE_CHECKING:
    from mypy_boto3_iot import IoTClient

API_URL_ENV: Final = "BASTION_API_URL"

EndpointOption = Annotated[str | None, typer.Option(
    "--endpoint-url", envvar=API_URL_ENV, help="The API's URL (also BASTION_API_URL).")]
ProfileOption = Annotated[str | None, typer.Option(
    "--profile", help="AWS profile with the credentials (also AWS_PROFILE).")]
RegionOption = Annotated[str | None, typer.Option("--region", help="Region.")]
CaBundleOption = Annotated[Path | None, typer.Option(
    "--ca-bundle", help="CA certificate(s) to trust; default: the data directory's CA.")]
CertificateIdArgument = Annotated[str, typer.Argument(
    help="Certificate id: all 64 hex digits, or a unique prefix (at least 4).")]


class ApiProblem(Exception):
    """The API cannot be reached or used as configured (an operator problem)."""


def _local_config(data_dir: Path | None) -> tuple[DataDir, Config | None]:
    datadir = DataDir(data_dir_path(data_dir))
    if not datadir.config_path.is_file():
        return datadir, None
    try:
        return datadir, load_config(datadir.config_path)
    except ConfigError:
        return datadir, None


def iot_client(*, endpoint_url: str | None, profile: str | None, region: str | None,
               ca_bundle: Path | None, data_dir: Path | None) -> IoTClient:
    """A boto3 ``iot`` client for Bastion's API (see the module docstring).

    :raises ApiProblem: no endpoint is known, or the profile does not exist.
    """
    boto, endpoint, region, verify = _api_settings(endpoint_url, profile, region, ca_bundle,
                                                   data_dir)
    client: IoTClient = boto.client("iot", endpoint_url=endpoint, region_name=region,
                                    verify=verify)
    return client


def iot_data_client(*, endpoint_url: str | None, profile: str | None, region: str | None,
                    ca_bundle: Path | None, data_dir: Path | None) -> Any:
    """A boto3 ``iot-data`` client (shadows) for Bastion's API, on the same settings as
    :func:`iot_client` (typed ``Any``: the project pins no stubs for ``iot-data``).

    :raises ApiProblem: no endpoint is known, or the profile does not exist.
    """
    boto, endpoint, region, verify = _api_settings(endpoint_url, profile, region, ca_bundle,
                                                   data_dir)
    return boto.client("iot-data", endpoint_url=endpoint, region_name=region, verify=verify)


def _api_settings(endpoint_url: str | None, profile: str | None, region: str | None,
                  ca_bundle: Path | None, data_dir: Path | None
                  ) -> tuple[Any, str, str, str | bool | None]:
    """A boto3 session, the endpoint, region and CA bundle (see the module docstring).

    :raises ApiProblem: no endpoint is known, or the profile does not exist.
    """
    import boto3  # imported here: boto3 takes a while, and most commands do not need it
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider
    from botocore.exceptions import ProfileNotFound

    datadir, config = _local_config(data_dir)
    try:
        session = botocore.session.Session(profile=profile)
        scoped = session.get_scoped_config()
        endpoint = endpoint_url or ConfiguredEndpointProvider(
            full_config=session.full_config, scoped_config=scoped,
            client_name="iot", environ=os.environ).provide()
        verify: str | bool | None = (str(ca_bundle) if ca_bundle is not None
                                     else scoped.get("ca_bundle"))
        region = region or session.get_config_variable("region")
    except ProfileNotFound as exc:
        raise ApiProblem(str(exc)) from None
    if not endpoint:
        state = running_server(datadir)
        endpoint = state.get("api") if state is not None else None
    if not endpoint and config is not None:
        endpoint = api_endpoint(config)
    if not endpoint:
        raise ApiProblem("no API endpoint: pass --endpoint-url, set BASTION_API_URL, or use "
                         "a profile from `bastion aws-profile`")
    if verify is None and str(endpoint).startswith("https:") and datadir.ca_cert_path.is_file():
        verify = str(datadir.ca_cert_path)  # before AWS_CA_BUNDLE: it knows Bastion's CA
    if verify is None:
        verify = session.get_config_variable("ca_bundle")
    if not region:
        region = config.account.region if config is not None else "us-east-1"
    return (boto3.session.Session(botocore_session=session), str(endpoint), str(region),
            verify)


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn API and connection failures into a message and exit code 1."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        err.print(f"[red]{error.get('Code', 'Error')}:[/] {error.get('Message', '')}")
        raise typer.Exit(1) from None
    except NoCredentialsError:
        err.print("[red]no credentials:[/] set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                  "or use a profile (`bastion aws-profile` prints one)")
        raise typer.Exit(1) from None
    except (BotoCoreError, ApiProblem) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None


def _client(endpoint_url: str | None, profile: str | None, region: str | None,
            ca_bundle: Path | None, data_dir: Path | None) -> IoTClient:
    with api_errors():
        return iot_client(endpoint_url=endpoint_url, profile=profile, region=region,
                          ca_bundle=ca_bundle, data_dir=data_dir)


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str), flush=True)


def _fields(title: str, values: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in values.items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value, default=str))
    console.print(table)


# -- things -----------------------------------------------------------------------------

things_app = typer.Typer(no_args_is_help=True, help="Things (through the API).")


@things_app.command("list")
def things_list(
    thing_type: Annotated[str | None, typer.Option("--type", help="Only this thing type.")
                          ] = None,
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List things, with whether each is connected now (GetThingConnectivityData: a
    device connected with the thing's name as its client id, on any node)."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    things: list[dict[str, Any]] = []
    with api_errors():
        pages = (iot.get_paginator("list_things").paginate(thingTypeName=thing_type)
                 if thing_type else iot.get_paginator("list_things").paginate())
        for page in pages:
            things.extend(dict(thing) for thing in page.get("things", []))
        connectivity = _connectivity(iot, [thing["thingName"] for thing in things])
    for thing in things:
        thing["connected"] = connectivity.get(thing["thingName"])
    if as_json:
        _json(things)
        return
    table = Table("Name", "Type", "Version", "Connected", "Attributes")
    for thing in things:
        attributes = ", ".join(f"{k}={v}" for k, v in thing.get("attributes", {}).items())
        connected = thing["connected"]
        table.add_row(thing.get("thingName", ""), thing.get("thingTypeName", ""),
                      str(thing.get("version", "")),
                      "?" if connected is None else "yes" if connected else "no", attributes)
    console.print(table)
    console.print(f"{len(things)} things")


CONNECTIVITY_CALLS: Final = 8
"""GetThingConnectivityData calls ``things list`` has in flight at once."""


def _connectivity(iot: IoTClient, names: list[str]) -> dict[str, bool | None]:
    """Whether each thing is connected; ``None`` for a thing deleted since it was listed.

    :raises botocore.exceptions.ClientError: any other refusal (a role without the
        right, say), raised by the first call before the others are made.
    """
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import ClientError

    def ask(name: str) -> bool | None:
        try:
            return bool(iot.get_thing_connectivity_data(thingName=name)["connected"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise

    if not names:
        return {}
    first = ask(names[0])  # one call first: a refusal (role, credentials) fails once
    with ThreadPoolExecutor(CONNECTIVITY_CALLS) as pool:
        rest = list(pool.map(ask, names[1:]))
    return dict(zip(names, [first, *rest], strict=True))


@things_app.command("create")
def things_create(
    name: str,
    thing_type: Annotated[str | None, typer.Option("--type", help="Thing type.")] = None,
    attr: Annotated[list[str], typer.Option(
        "--attr", help="Attribute NAME=VALUE (repeatable).")] = [],  # noqa: B006
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a thing."""
    attributes: dict[str, str] = {}
    for item in attr:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--attr")
        attributes[key] = value
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        if thing_type:
            created = iot.create_thing(thingName=name, thingTypeName=thing_type,
                                       attributePayload={"attributes": attributes})
        else:
            created = iot.create_thing(thingName=name,
                                       attributePayload={"attributes": attributes})
    console.print(f"Thing [bold]{created['thingName']}[/] created: {created['thingArn']}")


@things_app.command("describe")
def things_describe(
    name: str, as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show a thing and its principals."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        thing = {k: v for k, v in iot.describe_thing(thingName=name).items()
                 if k != "ResponseMetadata"}
        principals = iot.list_thing_principals(thingName=name).get("principals", [])
    thing["principals"] = principals
    if as_json:
        _json(thing)
        return
    _fields(f"Thing {name}", thing)


@things_app.command("delete")
def things_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a thing."""
    if not yes:
        typer.confirm(f"Delete thing {name}?", abort=True)
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        iot.delete_thing(thingName=name)
    console.print(f"Thing [bold]{name}[/] deleted.")


# -- certificates -----------------------------------------------------------------------

certs_app = typer.Typer(no_args_is_help=True, help="Device certificates (through the API).")


@certs_app.command("list")
def certs_list(
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List certificates."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    certificates: list[dict[str, Any]] = []
    with api_errors():
        for page in iot.get_paginator("list_certificates").paginate():
            certificates.extend(dict(cert) for cert in page.get("certificates", []))
    if as_json:
        _json(certificates)
        return
    table = Table("Certificate id", "Status", "Mode", "Created")
    for cert in certificates:
        table.add_row(cert.get("certificateId", ""), cert.get("status", ""),
                      cert.get("certificateMode", ""), str(cert.get("creationDate", "")))
    console.print(table)
    console.print(f"{len(certificates)} certificates")


@certs_app.command("describe")
def certs_describe(
    certificate_id: CertificateIdArgument,
    pem: Annotated[bool, typer.Option("--pem", help="Also print the PEM.")] = False,
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show a certificate, its things and its policies."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        certificate_id = full_certificate_id(iot, certificate_id)
        found = iot.describe_certificate(certificateId=certificate_id)
        description: dict[str, Any] = dict(found["certificateDescription"])
        arn = found["certificateDescription"].get("certificateArn", "")
        things = iot.list_principal_things(principal=arn).get("things", [])
        policies = [p.get("policyName", "") for p in
                    iot.list_attached_policies(target=arn).get("policies", [])]
    description["things"] = things
    description["policies"] = policies
    certificate_pem = description.pop("certificatePem", "")
    if as_json:
        _json({**description, "certificatePem": certificate_pem} if pem else description)
        return
    _fields(f"Certificate {certificate_id}", description)
    if pem:
        print(certificate_pem, flush=True)


def _set_status(certificate_id: str, status: str, endpoint_url: str | None,
                profile: str | None, region: str | None, ca_bundle: Path | None,
                data_dir: Path | None) -> None:
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        certificate_id = full_certificate_id(iot, certificate_id)
        iot.update_certificate(certificateId=certificate_id,
                               newStatus=status)  # type: ignore[arg-type]
    console.print(f"Certificate {certificate_id} is now [bold]{status}[/]; "
                  "its live connections are re-checked at once.")


@certs_app.command("revoke")
def certs_revoke(
    certificate_id: CertificateIdArgument,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a certificate (final)."""
    _set_status(certificate_id, "REVOKED", endpoint_url, profile, region, ca_bundle, data_dir)


@certs_app.command("deactivate")
def certs_deactivate(
    certificate_id: CertificateIdArgument,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Deactivate a certificate (it can be activated again)."""
    _set_status(certificate_id, "INACTIVE", endpoint_url, profile, region, ca_bundle, data_dir)


@certs_app.command("activate")
def certs_activate(
    certificate_id: CertificateIdArgument,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Activate a certificate."""
    _set_status(certificate_id, "ACTIVE", endpoint_url, profile, region, ca_bundle, data_dir)


# -- policies ---------------------------------------------------------------------------

policies_app = typer.Typer(no_args_is_help=True, help="IoT policies (through the API).")


def _target_arn(iot: IoTClient, target: str) -> str:
    """A certificate id (64 hex digits, or a unique prefix of one) becomes its ARN;
    anything else (an ARN) is used as is.

    :raises ApiProblem: a prefix that matches no certificate, or several.
    """
    if _is_hex(target):
        description = iot.describe_certificate(certificateId=full_certificate_id(iot, target))
        return description["certificateDescription"]["certificateArn"]
    return target


CERTIFICATE_ID_LENGTH: Final = 64
MIN_CERTIFICATE_PREFIX: Final = 4
"""The shortest certificate id prefix accepted (``git``'s habit)."""


def _is_hex(text: str) -> bool:
    return bool(text) and all(ch in "0123456789abcdef" for ch in text.lower())


def full_certificate_id(iot: IoTClient, given: str) -> str:
    """The certificate id ``given`` names: a full id (64 hex digits) as is, a shorter hex
    prefix expanded when exactly one certificate (or CA certificate) starts with it, as
    ``certs list`` and the banners show them; anything else unchanged (the API judges).

    :raises ApiProblem: the prefix is shorter than 4 digits, matches no certificate, or
        matches several (they are named).
    """
    given = given.strip()
    if not _is_hex(given) or len(given) >= CERTIFICATE_ID_LENGTH:
        return given.lower() if _is_hex(given) else given
    prefix = given.lower()
    if len(prefix) < MIN_CERTIFICATE_PREFIX:
        raise ApiProblem(f"certificate id prefix {given!r} is too short (at least "
                         f"{MIN_CERTIFICATE_PREFIX} hex digits)")
    matches: set[str] = set()
    for page in iot.get_paginator("list_certificates").paginate():
        matches.update(c["certificateId"] for c in page.get("certificates", [])
                       if c.get("certificateId", "").startswith(prefix))
    for ca_page in iot.get_paginator("list_ca_certificates").paginate():
        matches.update(c["certificateId"] for c in ca_page.get("certificates", [])
                       if c.get("certificateId", "").startswith(prefix))
    if not matches:
        raise ApiProblem(f"no certificate id starts with {given!r}")
    if len(matches) > 1:
        raise ApiProblem(f"certificate id prefix {given!r} is ambiguous: "
                         + ", ".join(sorted(matches)))
    return matches.pop()


@policies_app.command("list")
def policies_list(
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List policies."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    policies: list[dict[str, Any]] = []
    with api_errors():
        for page in iot.get_paginator("list_policies").paginate():
            policies.extend(dict(policy) for policy in page.get("policies", []))
    if as_json:
        _json(policies)
        return
    table = Table("Name", "ARN")
    for policy in policies:
        table.add_row(policy.get("policyName", ""), policy.get("policyArn", ""))
    console.print(table)
    console.print(f"{len(policies)} policies")


@policies_app.command("get")
def policies_get(
    name: str, as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show a policy and its default version's document."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        answer = iot.get_policy(policyName=name)
    policy: dict[str, Any] = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    if as_json:
        _json(policy)
        return
    document = str(policy.pop("policyDocument", ""))
    _fields(f"Policy {name}", policy)
    try:
        print(json.dumps(json.loads(document), indent=2), flush=True)
    except ValueError:
        print(document, flush=True)


@policies_app.command("create")
def policies_create(
    name: str,
    file: Annotated[Path, typer.Option("--file", help="The policy document (JSON).",
                                       exists=True, dir_okay=False, readable=True)],
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a policy from a JSON document."""
    document = file.read_text(encoding="utf-8")
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        created = iot.create_policy(policyName=name, policyDocument=document)
    console.print(f"Policy [bold]{name}[/] created (version "
                  f"{created.get('policyVersionId', '1')}): {created.get('policyArn', '')}")


@policies_app.command("attach")
def policies_attach(
    name: str,
    target: Annotated[str, typer.Option(
        "--target", help="Certificate id (or a unique prefix) or ARN, or thing group ARN.")],
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Attach a policy to a certificate or thing group."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        arn = _target_arn(iot, target)
        iot.attach_policy(policyName=name, target=arn)
    console.print(f"Policy [bold]{name}[/] attached to {arn}.")


@policies_app.command("detach")
def policies_detach(
    name: str,
    target: Annotated[str, typer.Option(
        "--target", help="Certificate id (or a unique prefix) or ARN, or thing group ARN.")],
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Detach a policy from a certificate or thing group."""
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        arn = _target_arn(iot, target)
        iot.detach_policy(policyName=name, target=arn)
    console.print(f"Policy [bold]{name}[/] detached from {arn}.")


# -- test-authorization -----------------------------------------------------------------

_ACTION_TYPES: Final = {"publish": "PUBLISH", "subscribe": "SUBSCRIBE", "receive": "RECEIVE",
                        "connect": "CONNECT"}


def test_authorization(
    cert_id: Annotated[str, typer.Option("--cert-id", help="The certificate (principal): its id, a unique prefix of it, or its ARN.")],
    action: Annotated[str, typer.Option(
        help="iot:Connect, iot:Publish, iot:Subscribe or iot:Receive.")],
    resource: Annotated[str, typer.Option(
        help="ARN, or its last part: topic/x, topicfilter/x/#, client/id.")],
    client_id: Annotated[str | None, typer.Option(help="The MQTT client id to assume.")
                         ] = None,
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Would this certificate's policies allow the action? Exit 0 allowed, 1 denied."""
    action_type = _ACTION_TYPES.get(action.lower().removeprefix("iot:"))
    if action_type is None:
        raise typer.BadParameter(f"unknown action {action!r}", param_hint="--action")
    iot = _client(endpoint_url, profile, region, ca_bundle, data_dir)
    with api_errors():
        arn = _target_arn(iot, cert_id)
        resource_arn = resource
        if not resource.startswith("arn:"):
            try:  # the server's: arn:aws:iot:<region>:<account>:cert/<id>
                cert = parse_arn(arn)
            except ValueError:  # not an ARN: the server refuses the principal itself
                cert = None
            if cert is not None:
                resource_arn = format_arn(resource.lstrip("/"), partition=cert.partition,
                                          service=cert.service, region=cert.region,
                                          account_id=cert.account_id)
        kwargs: dict[str, Any] = {
            "principal": arn,
            "authInfos": [{"actionType": action_type, "resources": [resource_arn]}],
        }
        if client_id:
            kwargs["clientId"] = client_id
        answer = iot.test_authorization(**kwargs)
    results = answer.get("authResults", [])
    result: dict[str, Any] = dict(results[0]) if results else {}
    decision = str(result.get("authDecision", "UNKNOWN"))
    if as_json:
        _json(result)
    else:
        colour = "green" if decision == "ALLOWED" else "red"
        console.print(f"{action} on {resource_arn}: [{colour} bold]{decision}[/]")
        table = Table("Decision", "Policy")
        allowed = result.get("allowed", {}).get("policies", [])
        denied = result.get("denied", {})
        for label, policies in (("allowed by", allowed),
                                ("denied by", denied.get("explicitDeny", {}).get("policies", [])),
                                ("no match in", denied.get("implicitDeny", {})
                                 .get("policies", []))):
            for policy in policies:
                table.add_row(label, policy.get("policyName", ""))
        if table.row_count:
            console.print(table)
    if decision != "ALLOWED":
        raise typer.Exit(1)


# -- bastion device create-many ---------------------------------------------------------


def device_create_many(
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many devices.")],
    prefix: Annotated[str, typer.Option(help="Name prefix; a number follows.")] = "device-",
    out: Annotated[Path, typer.Option(help="Where to write the files.")] = Path("devices"),
    start: Annotated[int, typer.Option(min=0, help="The first number.")] = 1,
    policy: Annotated[str | None, typer.Option(
        help="Attach this existing policy instead of the least-privilege one.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Register many devices (thing, certificate, policy each) with a progress bar; writes
    their files and a manifest.csv to --out."""
    datadir = DataDir(data_dir_path(data_dir))
    if not datadir.exists():
        err.print(f"[red]{datadir.path} is not initialised[/] (run `bastion init`)")
        raise typer.Exit(2)
    try:
        config = load_config(datadir.config_path)
    except ConfigError as exc:
        err.print(f"[red]bad configuration:[/] {exc}")
        raise typer.Exit(2) from None
    width = len(str(start + count - 1))
    names = [f"{prefix}{number:0{width}d}" for number in range(start, start + count)]
    out_dir = out.resolve()
    plane = open_control_plane(config, datadir)
    trail = DeviceTrail(plane, datadir, config)
    done: list[tuple[str, str, str, Path, Path]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("Registering devices", total=count)
            for name in names:
                trail.next_device()
                try:
                    files = provision_device(plane, datadir, name, out_dir,
                                             overwrite=overwrite, policy_name=policy,
                                             record=trail.record)
                except RegistryError as exc:
                    trail.refused(name, exc)
                    raise
                done.append((files.thing_name, files.certificate_id, files.certificate_arn,
                             files.cert_path, files.key_path))
                progress.advance(task)
    except (ValueError, FileExistsError) as exc:
        err.print(f"[red]{exc}[/] ({len(done)} of {count} devices registered)")
        raise typer.Exit(2) from None
    except RegistryError as exc:
        err.print(f"[red]{exc.aws_error_type}: {exc}[/] ({len(done)} of {count} devices registered)")
        raise typer.Exit(1) from None
    except KeystoreError as exc:
        err.print(f"[red]{exc}[/] ({len(done)} of {count} devices registered)")
        raise typer.Exit(1) from None
    finally:
        plane.close()
        if done:
            _write_manifest(out_dir / "manifest.csv", done)
    console.print(f"{count} devices registered ({names[0]} … {names[-1]}); files and "
                  f"manifest.csv in {out_dir}")


_NEXT_STEP: Final = {None: "CreateThing", "CreateThing": "CreateCertificateFromCsr",
                     "CreateCertificateFromCsr": "AttachThingPrincipal",
                     "AttachThingPrincipal": "AttachPolicy", "CreatePolicy": "AttachPolicy"}


class DeviceTrail:
    """Trails the registry changes of ``device create``/``create-many`` as the API calls
    that would have made them (service ``iot``, the local user), and a refused step as
    that call with its error, like the API trails a refusal."""

    def __init__(self, plane: ControlPlane, datadir: DataDir, config: Config) -> None:
        self._local = Local(datadir, config, plane.store)
        self._last: str | None = None

    def record(self, operation: str, parameters: Mapping[str, object]) -> None:
        """A :data:`bastion.controlplane.StepRecorder`.

        :raises bastion.pki.KeystoreError: no master key (the trail cannot be keyed).
        """
        record_local(self._local, operation, parameters, service="iot")
        self._last = operation

    def refused(self, name: str, exc: RegistryError) -> None:
        """The step after the last one recorded was refused with ``exc``."""
        record_local(self._local, _NEXT_STEP.get(self._last, "CreateThing"),
                     {"thingName": name}, outcome="error", error_code=exc.aws_error_type,
                     http_status=exc.http_status, service="iot")

    def next_device(self) -> None:
        self._last = None


def _write_manifest(path: Path, rows: list[tuple[str, str, str, Path, Path]]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["thing_name", "certificate_id", "certificate_arn", "cert_path",
                         "key_path"])
        for thing, cert_id, arn, cert_path, key_path in rows:
            writer.writerow([thing, cert_id, arn, str(cert_path), str(key_path)])


# `app.add_typer(operator_app)` merges these into the top level.
operator_app = typer.Typer()
operator_app.add_typer(things_app, name="things")
operator_app.add_typer(certs_app, name="certs")
operator_app.add_typer(policies_app, name="policies")
operator_app.command("test-authorization")(test_authorization)
