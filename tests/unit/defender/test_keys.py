"""Key quality: badkeys' detections on real weak moduli, size rules, and the operator's
compromised-key lists in each format."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bastion.defender.audit import KeyQualityAssessor, WeakKeyLists, debian_fingerprint
from support.audit_fleet import fermat_public_key, roca_public_key, small_factor_public_key

RNG = random.Random(11)


@pytest.fixture(scope="module")
def good_rsa() -> rsa.RSAPublicKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


def test_sound_keys_pass(good_rsa: rsa.RSAPublicKey) -> None:
    assessor = KeyQualityAssessor()
    assert assessor.assess_key(good_rsa) is None
    assert assessor.assess_key(ec.generate_private_key(ec.SECP256R1()).public_key()) is None


@pytest.mark.parametrize(("make", "reason", "detector"), [
    (roca_public_key, "CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361", "roca"),
    (fermat_public_key, "CERTIFICATE_KEY_FERMAT_FACTORABLE", "fermat"),
    (small_factor_public_key, "CERTIFICATE_KEY_HAS_SMALL_FACTORS", "smallfactors"),
], ids=["roca", "fermat", "small-factor"])
def test_weak_moduli(make, reason: str, detector: str) -> None:  # type: ignore[no-untyped-def]
    verdict = KeyQualityAssessor().assess_key(make(RNG))
    assert verdict is not None
    assert (verdict.reason_code, verdict.detector) == (reason, detector)


def test_short_keys() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    verdict = KeyQualityAssessor().assess_key(short)
    assert verdict is not None and verdict.reason_code == "CERTIFICATE_KEY_TOO_SHORT"
    curve = ec.generate_private_key(ec.SECP224R1()).public_key()
    verdict = KeyQualityAssessor().assess_key(curve)
    assert verdict is not None and verdict.reason_code == "CERTIFICATE_KEY_TOO_SHORT"


def test_debian_list_and_digest_list(tmp_path: Path, good_rsa: rsa.RSAPublicKey) -> None:
    leaked = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = hashlib.sha256(leaked.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    (tmp_path / "blacklist.RSA-2048").write_text(
        "# comment\n\n" + debian_fingerprint(good_rsa.public_numbers().n) + "\n")
    (tmp_path / "leaked.txt").write_text(spki.upper() + "  # from an incident\n")
    lists = WeakKeyLists.from_directory(tmp_path)
    assert len(lists) == 2
    assessor = KeyQualityAssessor(lists)
    verdict = assessor.assess_key(good_rsa)
    assert verdict is not None
    assert verdict.reason_code == "CERTIFICATE_KEY_VULNERABILITY_CVE-2008-0166"
    verdict = assessor.assess_key(leaked)
    assert verdict is not None and verdict.reason_code == "CERTIFICATE_KEY_ON_COMPROMISED_KEY_LIST"


def test_debian_fingerprint_matches_openssl_vulnkey_format() -> None:
    # sha1("Modulus=ABC\n") = ... ; the list keeps its last 20 hex digits.
    expected = hashlib.sha1(b"Modulus=ABC\n").hexdigest()[20:]
    assert debian_fingerprint(0xABC) == expected and len(expected) == 20


def test_badkeys_blocklist_format(tmp_path: Path, good_rsa: rsa.RSAPublicKey) -> None:
    n = good_rsa.public_numbers().n
    ours = hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).digest()[:15]
    others = sorted(hashlib.sha256(bytes([i])).digest()[:15] for i in range(50))
    records = b"".join(key + b"\x07" for key in sorted([*others, ours]))
    (tmp_path / "blocklist.dat").write_bytes(records)
    lists = WeakKeyLists.from_directory(tmp_path)
    assert len(lists) == 51
    verdict = KeyQualityAssessor(lists).assess_key(good_rsa)
    assert verdict is not None and verdict.reason_code == "CERTIFICATE_KEY_ON_COMPROMISED_KEY_LIST"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert KeyQualityAssessor(lists).assess_key(other) is None


def test_malformed_lists_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("not-a-digest\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        WeakKeyLists.from_directory(tmp_path)
    (tmp_path / "bad.txt").unlink()
    (tmp_path / "torn.dat").write_bytes(b"x" * 17)
    with pytest.raises(ValueError):
        WeakKeyLists.from_directory(tmp_path)
    assert len(WeakKeyLists.from_directory(tmp_path / "missing")) == 0
