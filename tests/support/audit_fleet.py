"""A fixture fleet for the Device Defender audit: a clean fleet, and the same fleet with
one planted violation per check (:func:`build_fleet`).

Rows are written straight into the store (as a long-lived installation would hold them):
several violations — an expired certificate, a 1024-bit key, a certificate created 400
days ago — are refused by today's registration rules, which is exactly why an audit
looks for them. Weak keys are made for real: a ROCA-structured modulus (primes of the
form ``k·M + 65537^a mod M``), primes too close together (Fermat), a small factor, a key
put on an operator's Debian weak-key list and one on a compromised-key list.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gmpy2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bastion.account import Account
from bastion.controlplane import device_policy_document
from bastion.defender.audit import debian_fingerprint
from bastion.pki import certificate_id
from bastion.store import (
    CaCertificateRow,
    CertificateRow,
    ConnectionSessionRow,
    PolicyTarget,
    ProvisioningTemplateRow,
    Store,
    TemplateVersionRow,
    ThingRow,
)

ACCOUNT = Account("us-east-1", "123456789012")
ARN = f"arn:aws:iot:{ACCOUNT.region}:{ACCOUNT.account_id}"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _serial(rng: random.Random) -> int:
    return rng.getrandbits(64) | 1


@dataclass
class Authority:
    """A CA: its certificate and key (to issue certificates and CRLs)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def ident(self) -> str:
        return certificate_id(self.cert)


def make_ca(common_name: str, *, issuer: Authority | None = None, rng: random.Random,
            not_before: datetime, not_after: datetime, public_key: object = None,
            ) -> Authority:
    """A CA certificate, self-signed or issued by ``issuer``. ``public_key`` replaces the
    CA's own key in the certificate (a weak key the issuer certifies)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name))
               .issuer_name(issuer.cert.subject if issuer else _name(common_name))
               .public_key(public_key or key.public_key())  # type: ignore[arg-type]
               .serial_number(_serial(rng))
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Authority(cert, key)


def issue(ca: Authority, common_name: str, public_key: object, *, rng: random.Random,
          not_before: datetime, not_after: datetime, serial: int | None = None
          ) -> x509.Certificate:
    return (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(serial or _serial(rng))
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(ca.key, hashes.SHA256()))


def crl_pem(ca: Authority, revoked: list[int], *, now: datetime) -> bytes:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(now - timedelta(hours=1)).next_update(now + timedelta(days=7)))
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(now - timedelta(days=1)).build())
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


# -- weak RSA public keys ------------------------------------------------------------------


def _primorial(count: int) -> int:
    product, prime = 1, 2
    for _ in range(count):
        product *= prime
        prime = int(gmpy2.next_prime(prime))
    return product


def roca_public_key(rng: random.Random) -> rsa.RSAPublicKey:
    """A 2048-bit modulus built like Infineon RSALib's (CVE-2017-15361)."""
    m = _primorial(126)
    primes = []
    while len(primes) < 2:
        k = rng.getrandbits(1024 - m.bit_length() - 1) | (1 << (1024 - m.bit_length() - 2))
        candidate = k * m + pow(65537, rng.getrandbits(40), m)
        if gmpy2.is_prime(candidate):
            primes.append(candidate)
    return rsa.RSAPublicNumbers(65537, primes[0] * primes[1]).public_key()


def fermat_public_key(rng: random.Random) -> rsa.RSAPublicKey:
    """Primes next to each other: Fermat's method factors the modulus at once."""
    p = int(gmpy2.next_prime(rng.getrandbits(1024) | (1 << 1023)))
    q = int(gmpy2.next_prime(p))
    return rsa.RSAPublicNumbers(65537, p * q).public_key()


def small_factor_public_key(rng: random.Random) -> rsa.RSAPublicKey:
    q = int(gmpy2.next_prime(rng.getrandbits(2041) | (1 << 2040)))
    return rsa.RSAPublicNumbers(65537, 101 * q).public_key()


# -- the fleet --------------------------------------------------------------------------------


@dataclass
class Planted:
    """Where each planted violation is, for the assertions."""

    shared_certificate: str = ""
    conflicting_client: str = ""
    expiring_certificate: str = ""
    expired_certificate: str = ""
    old_certificate: str = ""
    expiring_ca: str = ""
    weak_keys: dict[str, str] = field(default_factory=dict)  # reason code -> certificate id
    weak_ca: str = ""
    revoked_certificate: str = ""
    revoked_ca: str = ""
    under_revoked_intermediate: str = ""
    broad_policy: str = ""
    wildcard_deny_policy: str = ""
    bypassable_deny_policy: str = ""
    all_actions_policy: str = ""
    multi_thing_certificate: str = ""
    claim_template: str = ""


@dataclass
class Fleet:
    root: Authority
    intermediate: Authority
    device_certificates: list[str]
    crl_files: dict[str, Path]
    weak_key_dir: Path
    planted: Planted
    things: list[str]


class _Writer:
    def __init__(self, store: Store, now: datetime) -> None:
        self.store = store
        self.now = now

    def ca(self, authority: Authority, *, status: str = "ACTIVE", created: datetime) -> str:
        cert = authority.cert
        with self.store.transaction() as uow:
            uow.ca_certificates.insert(CaCertificateRow(
                authority.ident, status, "DISABLE", "DEFAULT", authority.pem,
                hashlib.sha256(cert.subject.public_bytes()).hexdigest(), ACCOUNT.account_id, 1,
                str(uuid.uuid4()), cert.not_valid_before_utc, cert.not_valid_after_utc, None,
                created, created))
        return authority.ident

    def certificate(self, cert: x509.Certificate, ca: Authority | None, *,
                    status: str = "ACTIVE", created: datetime) -> str:
        ident = certificate_id(cert)
        with self.store.transaction() as uow:
            uow.certificates.insert(CertificateRow(
                ident, None if ca is None else ca.ident, status, "DEFAULT",
                cert.public_bytes(serialization.Encoding.PEM).decode(), ACCOUNT.account_id,
                None, 1, str(uuid.uuid4()), cert.not_valid_before_utc,
                cert.not_valid_after_utc, created, created))
        return ident

    def thing(self, name: str, *certificates: str) -> None:
        with self.store.transaction() as uow:
            uow.things.insert(ThingRow(name, str(uuid.uuid4()), None, {}, 1, self.now,
                                       self.now), searchable=())
            for ident in certificates:
                uow.thing_principals.attach(name, "cert", ident, self.now)

    def policy(self, name: str, document: dict[str, object] | str, *targets: str) -> None:
        text = document if isinstance(document, str) else json.dumps(document)
        with self.store.transaction() as uow:
            uow.policies.insert(name, text, self.now)
            for ident in targets:
                uow.policies.attach(name, PolicyTarget("cert", ident), self.now)

    def session(self, client_id: str, certificate: str, start: datetime,
                end: datetime | None, reason: str | None = "CLIENT_INITIATED_DISCONNECT",
                source_ip: str = "198.51.100.7") -> None:
        with self.store.transaction() as uow:
            uow.connections.opened(ConnectionSessionRow(
                str(uuid.uuid4()), str(uuid.uuid4()), client_id, certificate, source_ip,
                "node-1", start, end, None if end is None else reason))

    def template(self, name: str, *, hook: bool) -> None:
        with self.store.transaction() as uow:
            uow.provisioning.insert_template(
                ProvisioningTemplateRow(
                    name, str(uuid.uuid4()), "FLEET_PROVISIONING", None, True,
                    "arn:aws:iam::123456789012:role/provisioning",
                    {"targetArn": "arn:aws:lambda:us-east-1:123456789012:function:vet",
                     "payloadVersion": "2020-04-01"} if hook else None,
                    (), 1, 1, self.now, self.now),
                TemplateVersionRow(name, 1, json.dumps({"Resources": {}}), self.now))

    def logging(self, *, disabled: bool) -> None:
        state = {"v1": None, "v2": {"roleArn": "arn:aws:iam::123456789012:role/log",
                                    "defaultLogLevel": "INFO", "disableAllLogs": disabled},
                 "levels": []}
        with self.store.transaction() as uow:
            uow.settings.put("api.logging_options", json.dumps(state), self.now)


def _allow(action: str | list[str], resource: str | list[str], **condition: object
           ) -> dict[str, object]:
    statement: dict[str, object] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _deny(action: str | list[str], resource: str | list[str]) -> dict[str, object]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def _doc(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def build_fleet(store: Store, tmp: Path, *, violations: bool, devices: int = 6,
                now: datetime = NOW, seed: int = 7) -> Fleet:
    """Write a fleet into ``store`` (see the module docstring); CRL files and the weak-key
    list directory go under ``tmp``."""
    rng = random.Random(seed)
    w = _Writer(store, now)
    year = timedelta(days=365)
    root = make_ca("Fleet Root CA", rng=rng, not_before=now - 2 * year,
                   not_after=now + 8 * year)
    intermediate = make_ca("Fleet Issuing CA", issuer=root, rng=rng,
                           not_before=now - year, not_after=now + 5 * year)
    w.ca(root, created=now - 2 * year)
    w.ca(intermediate, created=now - year)
    planted = Planted()
    certificates: list[str] = []
    things: list[str] = []
    thing_thing = "${iot:Connection.Thing.ThingName}"
    w.policy("device-least-privilege", device_policy_document(ACCOUNT))
    w.policy("fleet-broadcast", _doc(_allow("iot:Subscribe", f"{ARN}:topicfilter/fleet/broadcast"),
                                     _allow("iot:Receive", f"{ARN}:topic/fleet/broadcast")))
    w.policy("deny-done-right", _doc(
        _allow("iot:Publish", f"{ARN}:topic/{thing_thing}/*"),
        _deny("iot:Publish", f"{ARN}:topic/{thing_thing}/admin/*")))
    for index in range(devices):
        key = ec.generate_private_key(ec.SECP256R1())
        name = f"sensor-{index:03d}"
        cert = issue(intermediate if index % 2 else root, name, key.public_key(), rng=rng,
                     not_before=now - timedelta(days=30), not_after=now + 2 * year)
        ident = w.certificate(cert, intermediate if index % 2 else root,
                              created=now - timedelta(days=30))
        w.thing(name, ident)
        certificates.append(ident)
        things.append(name)
        with store.transaction() as uow:
            uow.policies.attach("device-least-privilege", PolicyTarget("cert", ident), now)
        start = now - timedelta(days=3, hours=index)
        w.session(name, ident, start, start + timedelta(hours=1))
        w.session(name, ident, start + timedelta(hours=1), start + timedelta(hours=2),
                  reason="CONNECTION_LOST")
    crl_files = {
        root.ident: tmp / "root.crl",
        intermediate.ident: tmp / "intermediate.crl",
    }
    root_revoked = [0x1234]  # a serial of no certificate of ours
    intermediate_revoked: list[int] = []
    weak_dir = tmp / "weak-keys"
    weak_dir.mkdir(parents=True, exist_ok=True)
    debian_lines = ["# openssl-blacklist style: keys of the Debian OpenSSL bug",
                    debian_fingerprint(int("c0ffee" * 40, 16) | 1)]
    spki_lines = ["# SHA-256 of SubjectPublicKeyInfo of leaked keys", "00" * 32]
    w.template("vetted-claims", hook=True)
    w.logging(disabled=False)

    if violations:
        def device(name: str, public_key: object, *, ca: Authority = intermediate,
                   not_after: datetime = now + 2 * year, created: datetime | None = None,
                   serial: int | None = None) -> str:
            created = created or now - timedelta(days=30)
            cert = issue(ca, name, public_key, rng=rng, not_before=created - timedelta(days=1),
                         not_after=not_after, serial=serial)
            ident = w.certificate(cert, ca, created=created)
            w.thing(name, ident)
            return ident

        def ec_key() -> object:
            return ec.generate_private_key(ec.SECP256R1()).public_key()

        # DEVICE_CERTIFICATE_SHARED_CHECK: two client ids on one certificate at once.
        shared = device("shared-device", ec_key())
        start = now - timedelta(days=2)
        w.session("shared-a", shared, start, start + timedelta(hours=3))
        w.session("shared-b", shared, start + timedelta(hours=1), start + timedelta(hours=4),
                  source_ip="203.0.113.99")
        planted.shared_certificate = shared
        # CONFLICTING_CLIENT_IDS_CHECK: two certificates kicking each other off.
        first, second = device("twin-one", ec_key()), device("twin-two", ec_key())
        kick = now - timedelta(days=1)
        w.session("twin", first, kick - timedelta(hours=1), kick, reason="DUPLICATE_CLIENTID")
        w.session("twin", second, kick, kick + timedelta(hours=1))
        planted.conflicting_client = "twin"
        # Expiring and expired device certificates.
        planted.expiring_certificate = device("expiring", ec_key(),
                                              not_after=now + timedelta(days=10))
        planted.expired_certificate = device("expired", ec_key(),
                                             not_after=now - timedelta(days=2))
        # DEVICE_CERTIFICATE_AGE_CHECK.
        planted.old_certificate = device("veteran", ec_key(), created=now - timedelta(days=400))
        # CA_CERTIFICATE_EXPIRING_CHECK.
        expiring_ca = make_ca("Retiring CA", issuer=root, rng=rng, not_before=now - year,
                              not_after=now + timedelta(days=12))
        planted.expiring_ca = w.ca(expiring_ca, created=now - year)
        # DEVICE_CERTIFICATE_KEY_QUALITY_CHECK: one certificate per kind of weakness.
        debian_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        debian_lines.append(debian_fingerprint(debian_key.public_numbers().n))
        leaked_key = ec.generate_private_key(ec.SECP384R1()).public_key()
        spki_lines.append(hashlib.sha256(leaked_key.public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest())
        short_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
        planted.weak_keys = {
            "CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361": device("roca", roca_public_key(rng)),
            "CERTIFICATE_KEY_VULNERABILITY_CVE-2008-0166": device("debian", debian_key),
            "CERTIFICATE_KEY_ON_COMPROMISED_KEY_LIST": device("leaked", leaked_key),
            "CERTIFICATE_KEY_FERMAT_FACTORABLE": device("fermat", fermat_public_key(rng)),
            "CERTIFICATE_KEY_HAS_SMALL_FACTORS": device("small-factor",
                                                        small_factor_public_key(rng)),
            "CERTIFICATE_KEY_TOO_SHORT": device("short-key", short_key),
        }
        # CA_CERTIFICATE_KEY_QUALITY_CHECK: a CA whose certified key is Fermat-factorable.
        weak_ca = make_ca("Weak Key CA", issuer=root, rng=rng, not_before=now - year,
                          not_after=now + 3 * year, public_key=fermat_public_key(rng))
        planted.weak_ca = w.ca(weak_ca, created=now - year)
        # REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK.
        revoked_serial = 0xDEAD01
        planted.revoked_certificate = device("revoked", ec_key(), serial=revoked_serial)
        intermediate_revoked.append(revoked_serial)
        # REVOKED_CA_ and INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK.
        revoked_ca = make_ca("Compromised Issuing CA", issuer=root, rng=rng,
                             not_before=now - year, not_after=now + 3 * year)
        planted.revoked_ca = w.ca(revoked_ca, created=now - year)
        root_revoked.append(revoked_ca.cert.serial_number)
        planted.under_revoked_intermediate = device("orphan", ec_key(), ca=revoked_ca)
        # Policies.
        planted.broad_policy = "broad-connect"
        w.policy("broad-connect", _doc(_allow("iot:Connect", f"{ARN}:client/*"),
                                       _allow("iot:Publish", f"{ARN}:topic/devices/*")))
        planted.wildcard_deny_policy = "deny-with-wildcards"
        w.policy("deny-with-wildcards", _doc(
            _allow("iot:Publish", f"{ARN}:topic/{thing_thing}/*"),
            _deny("iot:Publish", f"{ARN}:topic/{thing_thing}/secret/#")))
        planted.bypassable_deny_policy = "deny-bypassable"
        w.policy("deny-bypassable", _doc(
            _allow("iot:Subscribe", f"{ARN}:topicfilter/{thing_thing}/*"),
            _allow("iot:Receive", f"{ARN}:topic/{thing_thing}/*"),
            _deny("iot:Subscribe", f"{ARN}:topicfilter/{thing_thing}/secret")))
        planted.all_actions_policy = "everything"
        w.policy("everything", _doc(_allow("iot:*", "*")))
        # LOGGING_DISABLED_CHECK.
        w.logging(disabled=True)
        # DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK.
        multi = device("hub-a", ec_key())
        w.thing("hub-b", multi)
        planted.multi_thing_certificate = multi
        # CLAIM_PROVISIONING_TEMPLATE_WITHOUT_HOOK_CHECK.
        w.template("open-claims", hook=False)
        planted.claim_template = "open-claims"

    crl_files[root.ident].write_bytes(crl_pem(root, root_revoked, now=now))
    crl_files[intermediate.ident].write_bytes(crl_pem(intermediate, intermediate_revoked,
                                                      now=now))
    (weak_dir / "debian-openssl-blacklist.txt").write_text("\n".join(debian_lines) + "\n")
    (weak_dir / "leaked-keys.txt").write_text("\n".join(spki_lines) + "\n")
    return Fleet(root, intermediate, certificates, crl_files, weak_dir, planted, things)
