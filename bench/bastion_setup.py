"""Provision the benchmark's device in a Bastion data directory (run as a script).

    .venv/bin/python bench/bastion_setup.py --data-dir DIR --out OUTDIR

``bastion device create`` attaches the least-privilege device policy, which lets a
certificate connect only with its thing name as client id. The load generator shares one
certificate among many connections with distinct client ids, so this script registers
the device with a bench policy instead, the counterpart of the private Mosquitto's ACL
file (``brokers.py``):

* connect with any client id starting ``bench-``;
* publish, receive and subscribe under ``bench/`` and under ``things/<client id>/``.

With ``BASTION_BENCH_POLICY=open`` in the environment the device gets a one-statement
allow-all policy instead (``iot:*`` on ``*``): comparing the two runs shows what policy
evaluation costs on the message path (a per-session cache makes it one dict lookup per
new topic after the first).

It writes the same files as ``bastion device create`` (``bench-device.cert.pem``,
``bench-device.key.pem``, ``root-ca.pem``) and exits 0, or prints why it could not
and exits 1. It runs in its own process so that the bench itself never imports
``bastion``: only this setup step depends on Bastion's control-plane API.

    .venv/bin/python bench/bastion_setup.py --data-dir DIR --durable normal|full
                                            [--max-queued N]

configures the data directory for the durability scenario instead: ``[sessions]
durable = true`` and ``synchronous`` in ``config.toml``, but only the keys this Bastion's
``bastion.config`` has (a Bastion from before durable sessions refuses an unknown
section), and the per-session queue cap: ``[limits] max_stored_messages`` (and
``max_queued_bytes``) where Bastion stores queues, else ``max_queued_messages``. It
checks the result with Bastion's own config loader and prints, as its last line, what it
set (JSON).

    .venv/bin/python bench/bastion_setup.py --data-dir DIR --no-drop

gives Bastion the limits the private Mosquitto runs with (``max_queued_messages
1000000``, ``max_queued_bytes 0``): queues that do not drop within a bench run. Each
subscriber's queue is its own in Bastion, so a subscriber slower than its publishers
drops at its cap instead of slowing them down, as Mosquitto does at its own; the fan-in
scenarios compare the two with caps that never bite. Same checks, same last line.

    .venv/bin/python bench/bastion_setup.py --data-dir DIR --out OUTDIR --devices N

registers ``N`` more devices with the bench policy, each with a certificate of its own
(``bench-revoke-<k>``, files in ``OUTDIR``), for the cluster's revocation scenario, which
revokes them one by one; its last line lists them as JSON (name, certificate id).

    .venv/bin/python bench/bastion_setup.py --data-dir DIR --rules N

creates ``N`` enabled topic rules (``bench-rule-<k>``), each matching every bench message
(:data:`RULE_SQL`) and appending its result to a log file of its own (the
``cloudwatchLogs`` action, files under ``DIR/rules/logs``), for the rules scenarios;
its last line says what it made (JSON).

    .venv/bin/python bench/bastion_setup.py --data-dir DIR --out OUTDIR --rotation N
                                            [--grace HOURS] [--valid-days D]

registers ``N`` rotating devices for the rotation scenario (``rotation.py``): things
``bench-rot-<k>`` in the thing group ``bench-rotation``, each with its own EC P-256
certificate from Bastion's CA valid for only ``D`` days (30), registered ACTIVE, and the
rotation device policy (the least-privilege device policy plus the CSR topics of
``docs/rotation.md``). The group gets a rotation policy that starts jobs and rotates
certificates within 2 x ``D`` days of their expiry, so the sweep that ``bastion serve``
runs when it starts (a fresh data directory was never swept) starts a rotation job for
every one of them, and no other certificate; the old certificate is deactivated
``HOURS`` (0) after the rotation is confirmed. Each device's key and certificate go to
``OUTDIR/<thing>.pem`` (one file, key first), the list to ``OUTDIR/devices.json``
(``[[thing, certificate id], ...]``); the last line says what it made (JSON).

    .venv/bin/python bench/bastion_setup.py --data-dir DIR --rotation-status DEVICES_JSON

reads, from the store (the server may be running), every rotation of those devices and
the status of their old and new certificates; its last line is the tally (JSON).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tomllib
from pathlib import Path

DEVICE = "bench-device"
POLICY = "bastion-bench"
RULE_SQL = ("SELECT encode(*, 'base64') AS data, topic(2) AS device, timestamp() AS at "
            "FROM 'bench/#'")
"""The bench's payloads are not JSON (zero bytes), so the rule encodes them, as a rule
archiving binary telemetry would."""


def bench_policy(region: str, account_id: str) -> str:
    """The bench policy document (AWS IoT policy language)."""
    arn = f"arn:aws:iot:{region}:{account_id}"
    client = "${iot:ClientId}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/bench-*"},
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive"],
                    "Resource": [f"{arn}:topic/bench/*", f"{arn}:topic/things/{client}/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": [
                        f"{arn}:topicfilter/bench/*",
                        f"{arn}:topicfilter/things/{client}/*",
                    ],
                },
            ],
        }
    )


def open_policy() -> str:
    """Allow everything: the baseline for measuring what the bench policy costs."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})


NO_DROP_LIMITS = {
    "max_queued_messages": 1_000_000,
    "max_queued_bytes": 0,                       # no byte cap (Mosquitto: 0)
    "max_write_buffer_bytes": 1 << 30,           # QoS 0 kept for a slow socket too
    "queue_memory_budget_bytes": 16 << 30,
}
"""Bastion's counterpart of the private Mosquitto's ``max_queued_messages 1000000`` and
``max_queued_bytes 0``."""


def configure_no_drop(data_dir: Path) -> dict[str, object]:
    """Set :data:`NO_DROP_LIMITS` (the keys this Bastion knows) in ``config.toml``.

    :raises ValueError: if Bastion's config loader refuses the result.
    """
    import tomli_w

    from bastion.config import Config, ConfigError, load_config

    path = data_dir / "config.toml"
    document = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    known = {f.name for f in dataclasses.fields(Config().limits)}
    limits = {k: v for k, v in NO_DROP_LIMITS.items() if k in known}
    document.setdefault("limits", {}).update(limits)
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        raise ValueError(f"Bastion refuses the limits: {exc}") from None
    return {"limits": limits}


def configure_durable(data_dir: Path, synchronous: str, max_queued: int) -> dict[str, object]:
    """Switch on durable sessions in ``data_dir/config.toml`` as far as this Bastion knows
    them; returns what was set (``sessions`` is ``None`` when it has no such section).

    :raises ImportError: if ``bastion.config`` is not what this function expects.
    :raises ValueError: if Bastion's config loader refuses the result.
    """
    import tomli_w

    from bastion.config import Config, ConfigError, load_config

    path = data_dir / "config.toml"
    document = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    sections = {f.name: getattr(Config(), f.name) for f in dataclasses.fields(Config)}

    def keys(section: str) -> set[str]:
        return {f.name for f in dataclasses.fields(sections[section])}

    sessions: dict[str, object] | None = None
    if "sessions" in sections:
        wanted = {"durable": True, "synchronous": synchronous}
        sessions = {k: v for k, v in wanted.items() if k in keys("sessions")}
        document.setdefault("sessions", {}).update(sessions)
    limits: dict[str, object] = {}
    if "max_stored_messages" in keys("limits"):
        # Memory keeps its default; the store takes the rest (the point of durability).
        limits["max_stored_messages"] = max_queued
        limits["max_queued_bytes"] = 1 << 40
    elif "max_queued_messages" in keys("limits"):
        limits["max_queued_messages"] = max_queued
    if limits:
        document.setdefault("limits", {}).update(limits)
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        raise ValueError(f"Bastion refuses the durable configuration: {exc}") from None
    return {"sessions": sessions, "limits": limits}


def create_rules(data_dir: Path, count: int) -> dict[str, object]:
    """Create ``count`` rules as the API's CreateTopicRule would (see the module)."""
    from bastion.clock import SystemClock
    from bastion.config import load_config
    from bastion.controlplane import database_url
    from bastion.datadir import DataDir
    from bastion.rules import RuleService
    from bastion.store import Store

    datadir = DataDir(data_dir)
    config = load_config(datadir.config_path)
    store = Store.open(database_url(config, datadir))
    try:
        service = RuleService(store, account=config.account, clock=SystemClock(),
                              publish=lambda event: None, confirm=lambda request: None)
        for k in range(count):
            service.create_topic_rule(f"bench_rule_{k}", {
                "sql": RULE_SQL, "awsIotSqlVersion": "2016-03-23",
                "actions": [{"cloudwatchLogs": {
                    "roleArn": "arn:aws:iam::123456789012:role/unused",
                    "logGroupName": f"bench-rule-{k}"}}]})
    finally:
        store.close()
    return {"rules": count, "sql": RULE_SQL, "action": "cloudwatchLogs"}


ROTATION_GROUP = "bench-rotation"
ROTATION_POLICY = "bastion-bench-rotation"
ROTATION_PREFIX = "bench-rot-"
CSR_TOPIC = "$aws/certificates/create-from-csr/json"


def rotation_device_policy(account: object) -> str:
    """The least-privilege device policy plus the CSR statements of ``docs/rotation.md``."""
    from bastion.controlplane import device_policy_document

    document = json.loads(device_policy_document(account))  # type: ignore[arg-type]
    arn = account.arn  # type: ignore[attr-defined]
    document["Statement"] += [
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [arn(f"topic/{CSR_TOPIC}"), arn(f"topic/{CSR_TOPIC}/*")]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [arn(f"topicfilter/{CSR_TOPIC}/*")]},
    ]
    return json.dumps(document)


def create_rotation_fleet(data_dir: Path, out: Path, count: int, grace_hours: int,
                          valid_days: int) -> dict[str, object]:
    """Register ``count`` rotating devices and their group's rotation policy (see the
    module docstring). Files are written without fsync: they are the bench's, in its
    temporary directory, and rewritten on every run."""
    from cryptography.hazmat.primitives import serialization

    from bastion.clock import SystemClock
    from bastion.config import load_config
    from bastion.controlplane import open_control_plane
    from bastion.datadir import DataDir, load_ca
    from bastion.pki import issue_device_certificate
    from bastion.registry import CertificateStatus
    from bastion.rotation import FleetPolicy, GroupPolicy, RotationPolicies

    datadir = DataDir(data_dir)
    config = load_config(datadir.config_path)
    plane = open_control_plane(config, datadir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "root-ca.pem").write_bytes(datadir.ca_cert_path.read_bytes())
    ca_cert, ca_key = load_ca(datadir)
    made: list[list[str]] = []
    try:
        plane.policies.create_policy(ROTATION_POLICY, rotation_device_policy(plane.account))
        plane.registry.create_thing_group(ROTATION_GROUP)
        for k in range(count):
            name = f"{ROTATION_PREFIX}{k}"
            cert, key = issue_device_certificate(ca_cert, ca_key, common_name=name,
                                                 valid_days=valid_days)
            pem = cert.public_bytes(serialization.Encoding.PEM)
            record = plane.identity.register_certificate(pem.decode("ascii"),
                                                         status=CertificateStatus.ACTIVE)
            plane.registry.create_thing(name)
            plane.registry.attach_thing_principal(name, record.certificate_arn)
            plane.policies.attach_policy(ROTATION_POLICY, record.certificate_arn)
            plane.registry.add_thing_to_thing_group(thing_group_name=ROTATION_GROUP,
                                                    thing_name=name)
            key_pem = key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            path = out / f"{name}.pem"
            path.write_bytes(key_pem + pem)
            path.chmod(0o600)
            made.append([name, record.certificate_id])
        r = config.rotation
        fleet = FleetPolicy(r.max_age_days, r.rotate_before_expiry_days,
                            r.deactivate_after_hours, r.revoke_after_hours, r.start_jobs,
                            r.alert_targets)
        window = min(2 * valid_days, 3652)
        policy = RotationPolicies(plane.store, fleet, clock=SystemClock()).put(GroupPolicy(
            ROTATION_GROUP, rotate_before_expiry_days=window,
            deactivate_after_hours=grace_hours,
            revoke_after_hours=max(grace_hours, fleet.revoke_after_hours), start_jobs=True))
    finally:
        plane.close()
    (out / "devices.json").write_text(json.dumps(made), encoding="utf-8")
    return {"devices": count, "group": ROTATION_GROUP, "policy": ROTATION_POLICY,
            "valid_days": valid_days, "rotate_before_expiry_days": window,
            "deactivate_after_hours": policy.deactivate_after_hours,
            "revoke_after_hours": policy.revoke_after_hours,
            "fleet_start_jobs": fleet.start_jobs}


def rotation_status(data_dir: Path, devices_file: Path) -> dict[str, object]:
    """Tally the rotations of the devices in ``devices_file`` and their certificates."""
    from collections import Counter

    from bastion.config import load_config
    from bastion.controlplane import open_control_plane
    from bastion.datadir import DataDir
    from bastion.registry import RegistryError

    devices = json.loads(devices_file.read_text(encoding="utf-8"))
    datadir = DataDir(data_dir)
    config = load_config(datadir.config_path)
    plane = open_control_plane(config, datadir)
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    old: Counter[str] = Counter()
    new: Counter[str] = Counter()

    def cert_status(certificate_id: str) -> str:
        try:
            return plane.identity.describe_certificate(certificate_id).status.value
        except RegistryError:
            return "GONE"

    try:
        for thing, certificate_id in devices:
            with plane.store.transaction(readonly=True) as uow:  # as `bastion rotation list`
                rows = uow.rotations.of_thing(thing)
            if not rows:
                statuses["NONE"] += 1
            for row in rows:
                statuses[row.status] += 1
                if row.reason:
                    reasons[row.reason[:200]] += 1
                if row.new_certificate_id:
                    new[cert_status(row.new_certificate_id)] += 1
            old[cert_status(certificate_id)] += 1
    finally:
        plane.close()
    return {"rotations": dict(statuses), "old_certificates": dict(old),
            "new_certificates": dict(new), "reasons": dict(reasons.most_common(10))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--durable", choices=("normal", "full"))
    parser.add_argument("--max-queued", type=int, default=1_000_000)
    parser.add_argument("--no-drop", action="store_true")
    parser.add_argument("--devices", type=int, default=0)
    parser.add_argument("--rules", type=int)
    parser.add_argument("--rotation", type=int)
    parser.add_argument("--grace", type=int, default=0)
    parser.add_argument("--valid-days", type=int, default=30)
    parser.add_argument("--rotation-status", type=Path)
    args = parser.parse_args()
    if args.rotation_status is not None:
        try:
            print(json.dumps(rotation_status(args.data_dir, args.rotation_status)))
        except (ImportError, ValueError, OSError) as exc:
            print(f"could not read the rotations: {exc}")
            return 1
        return 0
    if args.rotation is not None:
        if args.out is None:
            parser.error("--rotation needs --out")
        try:
            print(json.dumps(create_rotation_fleet(args.data_dir, args.out, args.rotation,
                                                   args.grace, args.valid_days)))
        except (ImportError, ValueError, OSError) as exc:
            print(f"could not register the rotating devices: {exc}")
            return 1
        return 0
    if args.rules is not None:
        try:
            print(json.dumps(create_rules(args.data_dir, args.rules)))
        except (ImportError, ValueError, OSError) as exc:
            print(f"could not create the rules: {exc}")
            return 1
        return 0
    if args.no_drop:
        try:
            print(json.dumps(configure_no_drop(args.data_dir)))
        except (ImportError, ValueError, OSError) as exc:
            print(f"could not configure the limits: {exc}")
            return 1
        return 0
    if args.durable:
        try:
            done = configure_durable(args.data_dir, args.durable, args.max_queued)
        except (ImportError, ValueError, OSError) as exc:
            print(f"could not configure durable sessions: {exc}")
            return 1
        print(json.dumps(done))
        return 0
    if args.out is None:
        parser.error("--out is required (unless --durable, --no-drop or --rules)")
    try:
        from bastion.config import load_config
        from bastion.controlplane import open_control_plane, provision_device
        from bastion.datadir import DataDir
    except ImportError as exc:
        print(f"Bastion's control-plane API is not what this script expects: {exc}")
        return 1
    datadir = DataDir(args.data_dir)
    config = load_config(datadir.config_path)
    plane = open_control_plane(config, datadir)
    try:
        document = (open_policy() if os.environ.get("BASTION_BENCH_POLICY") == "open"
                    else bench_policy(plane.account.region, plane.account.account_id))
        if args.devices:
            # The bench device's registration created the policy.
            made = [
                provision_device(plane, datadir, f"bench-revoke-{k}", args.out, policy_name=POLICY)
                for k in range(args.devices)
            ]
            print(json.dumps([[d.thing_name, d.certificate_id] for d in made]))
            return 0
        plane.policies.create_policy(POLICY, document)
        device = provision_device(plane, datadir, DEVICE, args.out, policy_name=POLICY)
    finally:
        plane.close()
    print(f"{DEVICE}: certificate {device.certificate_id}, policy {device.policy_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
