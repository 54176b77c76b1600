"""The control plane's services over one store: what the API, the CLI and the broker's
enforcement share. Built by the composition root (:mod:`bastion.app`) and by CLI commands
that work on the data directory directly."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from .account import Account
from .config import Config
from .datadir import DataDir
from .events import EventSink
from .pki import generate_private_key, private_key_to_pem, write_file_atomically
from .registry import (
    CertificateAuthority,
    IdentityService,
    PolicyService,
    RegistryService,
    ResourceNotFoundError,
    RoleAliasService,
    TaggingService,
)
from .store import Store

DEVICE_POLICY_NAME = "bastion-device-least-privilege"
_DEVICE_NAME = re.compile(r"[A-Za-z0-9_:-]{1,64}")


def device_policy_document(account: Account) -> str:
    """The least-privilege policy ``bastion device create`` attaches.

    A device may connect only with its thing name as client id, and only while that thing
    is attached to its certificate; it may publish, receive and subscribe only under
    ``<thingName>/…`` and its own ``$aws/things/<thingName>/…`` (shadow, jobs, defender).
    One policy serves every device: the policy variables do the per-device part.
    """
    thing = "${iot:Connection.Thing.ThingName}"
    arn = account.arn
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": arn(f"client/{thing}"),
             "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
             "Resource": [arn(f"topic/{thing}/*"), arn(f"topic/$aws/things/{thing}/*")]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": [arn(f"topicfilter/{thing}/*"),
                          arn(f"topicfilter/$aws/things/{thing}/*")]},
        ],
    }, indent=2)


@dataclass(frozen=True, slots=True)
class ControlPlane:
    store: Store
    account: Account
    registry: RegistryService
    identity: IdentityService
    policies: PolicyService
    tags: TaggingService
    role_aliases: RoleAliasService

    def close(self) -> None:
        self.store.close()


DATABASE_URL_ENV: Final = "BASTION_DATABASE_URL"
"""Environment variable naming the store's database; when set it wins over ``[store]
database_url`` for every command (so a password can stay out of ``config.toml``)."""


def database_url(config: Config, datadir: DataDir) -> str:
    """The database every command and ``serve`` use: ``BASTION_DATABASE_URL``, else
    ``[store] database_url``, else the SQLite file in the data directory."""
    return (os.environ.get(DATABASE_URL_ENV) or config.store.database_url
            or f"sqlite:///{datadir.db_path}")


def open_control_plane(config: Config, datadir: DataDir,
                       publish: EventSink | None = None) -> ControlPlane:
    """Open the store (migrating it) and build the registry services over it (the CLI's
    offline commands; a running Bastion builds them in :func:`bastion.services.build_services`).

    :raises bastion.store.StoreError: the database cannot be opened or migrated.
    """
    return registry_services(config, datadir, Store.open(database_url(config, datadir)),
                             publish)


def registry_services(config: Config, datadir: DataDir, store: Store,
                      publish: EventSink | None = None) -> ControlPlane:
    """The registry services over an open ``store``, publishing their events to
    ``publish``; Bastion's own CA is registered as an ACTIVE CA certificate on first use.

    :raises bastion.store.StoreError: the store cannot be read or written.
    """
    account = config.account
    authority = CertificateAuthority.from_datadir(datadir)
    plane = control_plane(store, account, authority, publish)
    plane.identity.ensure_authority_registered()
    return plane


def control_plane(store: Store, account: Account, authority: CertificateAuthority,
                  publish: EventSink | None = None) -> ControlPlane:
    """The registry services of ``account`` over ``store`` (constructs objects only)."""
    return ControlPlane(
        store, account,
        RegistryService(store, account=account, publish=publish),
        IdentityService(store, authority=authority, account=account, publish=publish),
        PolicyService(store, account=account, publish=publish),
        TaggingService(store, account=account, publish=publish),
        RoleAliasService(store, account=account, publish=publish))


def ensure_device_policy(plane: ControlPlane) -> bool:
    """Create the shared least-privilege device policy (:data:`DEVICE_POLICY_NAME`) when
    missing; whether it was created now."""
    try:
        plane.policies.get_policy(DEVICE_POLICY_NAME)
    except ResourceNotFoundError:
        plane.policies.create_policy(DEVICE_POLICY_NAME, device_policy_document(plane.account))
        return True
    return False


@dataclass(frozen=True, slots=True)
class ProvisionedDevice:
    thing_name: str
    certificate_id: str
    certificate_arn: str
    policy_name: str
    cert_path: Path
    key_path: Path
    root_ca_path: Path


StepRecorder = Callable[[str, Mapping[str, object]], None]
"""Told each registry change :func:`provision_device` makes, as the API operation that
would have made it and its parameters (the CLI trails them)."""


def provision_device(plane: ControlPlane, datadir: DataDir, name: str, out_dir: Path, *,
                     overwrite: bool = False, policy_name: str | None = None,
                     record: StepRecorder | None = None) -> ProvisionedDevice:
    """Register a device end to end: the thing, a certificate from Bastion's CA for a key
    made here (written only to ``out_dir``, mode 0600), the thing attached to the
    certificate, and a policy attached to the certificate: ``policy_name`` when given (it
    must exist), else the shared least-privilege device policy.

    :param record: called after each registry change (``CreateThing``,
        ``CreatePolicy`` when the device policy is made, ``CreateCertificateFromCsr``,
        ``AttachThingPrincipal``, ``AttachPolicy``) with its parameters.
    :raises ValueError: ``name`` is not a valid thing name for a certificate CN.
    :raises FileExistsError: the device's files exist and ``overwrite`` is false.
    :raises bastion.registry.RegistryError: the registry refused a step (those before it
        were made and recorded).
    """
    def step(operation: str, **parameters: object) -> None:
        if record is not None:
            record(operation, parameters)

    if not _DEVICE_NAME.fullmatch(name):
        raise ValueError(f"device name {name!r} must be 1-64 characters of "
                         "A-Z a-z 0-9 _ - : (a thing name that also fits a certificate CN)")
    cert_path = out_dir / f"{name}.cert.pem"
    key_path = out_dir / f"{name}.key.pem"
    root_ca_path = out_dir / "root-ca.pem"
    if not overwrite:
        for existing in (cert_path, key_path):
            if existing.exists():
                raise FileExistsError(f"{existing} exists (use --overwrite to replace it)")
    key = generate_private_key("ec")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .sign(key, hashes.SHA256()))
    plane.registry.create_thing(name)
    step("CreateThing", thingName=name)
    issued = plane.identity.create_certificate_from_csr(
        csr.public_bytes(serialization.Encoding.PEM).decode(), set_as_active=True)
    step("CreateCertificateFromCsr", setAsActive=True, certificateId=issued.certificate_id)
    plane.registry.attach_thing_principal(name, issued.certificate_arn)
    step("AttachThingPrincipal", thingName=name, principal=issued.certificate_arn)
    if policy_name is None:
        policy = DEVICE_POLICY_NAME
        if ensure_device_policy(plane):
            step("CreatePolicy", policyName=policy)
    else:
        policy = policy_name
    plane.policies.attach_policy(policy, issued.certificate_arn)
    step("AttachPolicy", policyName=policy, target=issued.certificate_arn)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file_atomically(key_path, private_key_to_pem(key), mode=0o600)
    write_file_atomically(cert_path, issued.certificate_pem.encode(), mode=0o644)
    write_file_atomically(root_ca_path, datadir.ca_cert_path.read_bytes(), mode=0o644)
    return ProvisionedDevice(name, issued.certificate_id, issued.certificate_arn, policy,
                             cert_path, key_path, root_ca_path)
