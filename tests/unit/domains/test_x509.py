"""What ImportCertificate checks (:mod:`bastion.domains._x509`) and which names a
certificate covers, and the security policy table: pure, with ``now`` passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from bastion.domains import (
    DEFAULT_SECURITY_POLICY,
    SECURITY_POLICIES,
    CertificateInvalidError,
    covers,
    security_policy,
)
from bastion.domains._x509 import check_import, key_algorithm
from support.server_certs import OperatorCa

CA = OperatorCa()
NOW = datetime.now(UTC)


@pytest.mark.parametrize(("names", "server_name", "expected"), [
    (["a.example.test"], "a.example.test", True),
    (["a.example.test"], "A.Example.Test.", True),
    (["a.example.test"], "b.example.test", False),
    (["*.example.test"], "a.example.test", True),
    (["*.example.test"], "example.test", False),
    (["*.example.test"], "a.b.example.test", False),
    (["x.test", "*.example.test"], "z.example.test", True),
], ids=["exact", "case-and-dot", "other", "wildcard", "wildcard-not-apex",
        "wildcard-one-label", "second-name"])
def test_covers(names: list[str], server_name: str, expected: bool) -> None:
    issued = CA.issue(*names)
    certificate = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert covers(certificate, server_name) is expected


def test_a_good_import_parses_with_its_chain() -> None:
    issued = CA.issue("a.example.test")
    imported = check_import(issued.certificate_pem, issued.key_pem, issued.chain_pem, NOW)
    assert [c.subject.rfc4514_string() for c in imported.chain] == ["CN=Operator Test CA"]
    assert key_algorithm(imported.certificate) == "EC_prime256v1"


@pytest.mark.parametrize("case", ["garbage", "two-certificates", "key-mismatch",
                                  "expired", "foreign-chain", "bad-key"])
def test_refused_imports(case: str) -> None:
    issued, other = CA.issue("a.example.test"), CA.issue("b.example.test")
    certificate, key, chain = issued.certificate_pem, issued.key_pem, issued.chain_pem
    now = NOW
    if case == "garbage":
        certificate = b"garbage"
    elif case == "two-certificates":
        certificate += other.certificate_pem
    elif case == "key-mismatch":
        key = other.key_pem
    elif case == "expired":
        now = NOW + timedelta(days=365)
    elif case == "foreign-chain":
        chain = OperatorCa("Another CA").pem
    else:
        key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(CertificateInvalidError):
        check_import(certificate, key, chain, now)


def test_security_policies() -> None:
    default = security_policy(None)
    assert default is not None and default.name == DEFAULT_SECURITY_POLICY
    assert default.allows_tls12
    strict = SECURITY_POLICIES["IoTSecurityPolicy_TLS13_1_3_2022_10"]
    assert not strict.allows_tls12
    assert security_policy("IoTSecurityPolicy_TLS10") is None
    assert all(p.allows_tls12 for name, p in SECURITY_POLICIES.items()
               if "TLS13_1_3" not in name)
