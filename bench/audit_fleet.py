"""Benchmark: a full Device Defender audit of a large fleet.

    .venv/bin/python bench/audit_fleet.py                    # 100,000 things, 1,000 policies
    .venv/bin/python bench/audit_fleet.py --things 10000     # smaller
    .venv/bin/python bench/audit_fleet.py --database-url postgresql+psycopg://…/bench

Phase 1 writes the fleet into a fresh database: ``--things`` things, each with its own
device certificate (half RSA-2048 with distinct moduli, half EC P-256, all signed by one
CA, real PEM), a connection in the journal, and one of ``--policies`` policies attached
(least-privilege variants, with a few broad ones); plus a few planted violations.
Phase 2 runs in a fresh process (so its peak memory is its own): it enables every check
and runs one on-demand audit of all of them in that process, then prints the seconds,
the findings per check and the peak resident memory (``ru_maxrss``).

Not part of ``make test``; it takes minutes at full size.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime.now(UTC).replace(microsecond=0)
BATCH = 5000


def _generate(url: str, things: int, policies: int, seed: int) -> None:
    import hashlib

    import gmpy2
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    from bastion.pki import certificate_id
    from bastion.store import Store, metadata

    rng = random.Random(seed)
    started = time.perf_counter()
    store = Store.open(url)
    tables = metadata.tables
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Fleet CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(1)
               .not_valid_before(NOW - timedelta(days=400))
               .not_valid_after(NOW + timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    ca_id = certificate_id(ca_cert)
    arn = "arn:aws:iot:us-east-1:123456789012"
    with store.engine.begin() as conn:
        conn.execute(tables["ca_certificates"].insert(), [{
            "ca_certificate_id": ca_id, "status": "ACTIVE", "auto_registration_status": "DISABLE",
            "certificate_mode": "DEFAULT",
            "certificate_pem": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
            "subject_hash": hashlib.sha256(ca_name.public_bytes()).hexdigest(),
            "owned_by": "123456789012", "customer_version": 1, "generation_id": str(uuid.uuid4()),
            "not_before": ca_cert.not_valid_before_utc, "not_after": ca_cert.not_valid_after_utc,
            "registration_config": None, "creation_date": NOW, "last_modified_date": NOW}])
        thing = "${iot:Connection.Thing.ThingName}"
        rows = []
        for index in range(policies):
            statements: list[dict[str, Any]] = [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}",
                 "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
                {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
                 "Resource": [f"{arn}:topic/{thing}/*", f"{arn}:topic/fleet-{index}/status"]},
                {"Effect": "Allow", "Action": "iot:Subscribe",
                 "Resource": f"{arn}:topicfilter/{thing}/*"}]
            if index % 100 == 0:  # a few broad ones
                statements.append({"Effect": "Allow", "Action": "iot:Subscribe",
                                   "Resource": f"{arn}:topicfilter/fleet/#"})
                statements.append({"Effect": "Allow", "Action": "iot:Receive",
                                   "Resource": f"{arn}:topic/*"})
            rows.append({"name": f"bench-policy-{index:04d}", "document": json.dumps(
                {"Version": "2012-10-17", "Statement": statements})})
        conn.execute(tables["policies"].insert(), [
            {"name": r["name"], "default_version_id": 1, "last_version_id": 1,
             "generation_id": str(uuid.uuid4()), "creation_date": NOW,
             "last_modified_date": NOW} for r in rows])
        conn.execute(tables["policy_versions"].insert(), [
            {"policy_name": r["name"], "version_id": 1, "document": r["document"],
             "creation_date": NOW} for r in rows])
    # 500 primes make 124,750 distinct RSA-2048 moduli (keys differ, assessments too).
    primes = [int(gmpy2.next_prime(rng.getrandbits(1024) | (3 << 1022))) for _ in range(500)]
    pairs = ((primes[i], primes[j]) for i in range(len(primes))
             for j in range(i + 1, len(primes)))
    print(f"  fleet: CA, {policies} policies, {len(primes)} primes "
          f"({time.perf_counter() - started:.1f}s)", flush=True)
    certificates: list[dict[str, Any]] = []
    thing_rows: list[dict[str, Any]] = []
    principals: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []

    def flush() -> None:
        with store.engine.begin() as conn:
            for name, batch in (("certificates", certificates), ("things", thing_rows),
                                ("thing_principals", principals),
                                ("policy_targets", targets),
                                ("connection_sessions", sessions)):
                if batch:
                    conn.execute(tables[name].insert(), batch)
                    batch.clear()

    for index in range(things):
        name = f"bench-{index:06d}"
        if index % 2:
            p, q = next(pairs)
            public_key: Any = rsa.RSAPublicNumbers(65537, p * q).public_key()
        else:
            public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        created = NOW - timedelta(days=rng.randrange(1, 300))
        not_after = NOW + timedelta(days=rng.randrange(60, 1500))
        if index % 20000 == 7:  # planted: expiring soon
            not_after = NOW + timedelta(days=5)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(public_key)
                .serial_number(rng.getrandbits(63) | 1)
                .not_valid_before(created - timedelta(days=1)).not_valid_after(not_after)
                .sign(ca_key, hashes.SHA256()))
        ident = certificate_id(cert)
        certificates.append({
            "certificate_id": ident, "ca_certificate_id": ca_id, "status": "ACTIVE",
            "certificate_mode": "DEFAULT",
            "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "owned_by": "123456789012", "previous_owned_by": None, "customer_version": 1,
            "generation_id": str(uuid.uuid4()), "not_before": cert.not_valid_before_utc,
            "not_after": not_after, "creation_date": created, "last_modified_date": created})
        thing_rows.append({"name": name, "thing_id": str(uuid.uuid4()), "thing_type_name": None,
                           "version": 1, "creation_date": created,
                           "last_modified_date": created})
        principals.append({"thing_name": name, "principal_type": "cert", "principal_id": ident,
                           "creation_date": created})
        targets.append({"policy_name": f"bench-policy-{index % policies:04d}",
                        "target_type": "cert", "target_id": ident, "creation_date": created})
        start = NOW - timedelta(days=rng.randrange(1, 25), minutes=rng.randrange(1440))
        end = start + timedelta(minutes=rng.randrange(5, 600))
        sessions.append({"connection_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
                         "client_id": name, "certificate_id": ident, "source_ip": "10.0.0.1",
                         "node": "bench", "connected_at": start, "disconnected_at": end,
                         "disconnect_reason": "CLIENT_INITIATED_DISCONNECT"})
        if index % 25000 == 11:  # planted: a second client on the same certificate
            sessions.append({"connection_id": str(uuid.uuid4()),
                             "session_id": str(uuid.uuid4()), "client_id": f"{name}-clone",
                             "certificate_id": ident, "source_ip": "10.9.9.9", "node": "bench",
                             "connected_at": start + timedelta(minutes=1),
                             "disconnected_at": end,
                             "disconnect_reason": "CLIENT_INITIATED_DISCONNECT"})
        if len(certificates) >= BATCH:
            flush()
            print(f"  fleet: {index + 1} things ({time.perf_counter() - started:.1f}s)",
                  flush=True)
    flush()
    store.close()
    print(f"generated {things} things and certificates, {policies} policies in "
          f"{time.perf_counter() - started:.1f}s", flush=True)


def _audit(url: str) -> None:
    from bastion.account import Account
    from bastion.defender.audit import (
        CHECKS,
        AuditService,
        CrlRegistry,
        StoredLoggingOptions,
        WeakKeyLists,
    )
    from bastion.store import Store

    store = Store.open(url)
    service = AuditService(store, account=Account(), crls=CrlRegistry(store),
                           logging=StoredLoggingOptions(store), key_lists=WeakKeyLists(),
                           executor=lambda job: job())
    service.update_account_audit_configuration(check_configurations={
        name: {"enabled": True} for name in CHECKS})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    task_id = service.start_on_demand_audit_task(sorted(CHECKS))
    seconds = time.perf_counter() - started
    task = service.describe_audit_task(task_id)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"audit {task.status.value} in {seconds:.1f} s; peak memory {peak / 1024:.0f} MiB "
          f"(before the audit {before / 1024:.0f} MiB)")
    for name, details in sorted(task.details.items()):
        print(f"  {name:<62} {details.run_status.value:<24} "
              f"resources {details.total_resources or 0:>7}  "
              f"non-compliant {details.non_compliant_resources or 0:>5}")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--things", type=int, default=100_000)
    parser.add_argument("--policies", type=int, default=1_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phase", choices=("all", "generate", "audit"), default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-audit-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.phase in ("all", "generate"):
            _generate(url, args.things, args.policies, args.seed)
        if args.phase == "audit":
            _audit(url)
        elif args.phase == "all":
            subprocess.run([sys.executable, __file__, "--phase", "audit", "--database-url", url],
                           check=True)


if __name__ == "__main__":
    main()
