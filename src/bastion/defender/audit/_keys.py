"""Key quality: is a certificate's public key weak or known to be compromised?

Theory of operation
-------------------
Detection of weak RSA moduli is done by ``badkeys`` (Hanno Böck's library made for it):
the ROCA fingerprint (CVE-2017-15361, Infineon RSALib primes), Fermat factorisation
(primes too close together), small prime factors, primes shared with known broken keys
(the datasets badkeys ships), polynomial patterns, Wiener's small private exponent, and
invalid exponents. Sizes are checked here: RSA below 2048 bits, elliptic curves below
256 bits.

Lists of *compromised* keys cannot be downloaded at run time, so an operator provides
them as files (a directory is loaded at start, every file in it):

* ``*.dat`` — badkeys' blocklist format: sorted 16-byte records, the first 15 bytes of
  SHA-256 of the key's public value (RSA modulus, EC x coordinate) then a list id;
* text files, one entry per line (``#`` comments):
  - 20 hex digits: Debian's ``openssl-blacklist`` format (the last 80 bits of SHA-1 of
    ``Modulus=<HEX>\\n``), i.e. the keys of the Debian OpenSSL bug (CVE-2008-0166);
  - 64 hex digits: SHA-256 of the key's SubjectPublicKeyInfo DER (any key type).

A key gets one verdict, the most serious: ROCA, Debian, other compromised list, Fermat,
small factors, other factorable, too short. Verdicts are cached per key (certificates
that share a key are assessed once).
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from badkeys.rsakeys import (  # type: ignore[import-untyped]
    fermat,
    roca,
    rsainvalid,
    rsapoly,
    sharedprimes,
    smalld,
    smallfactors,
)
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from ._catalog import (
    KEY_COMPROMISED,
    KEY_DEBIAN,
    KEY_FACTORABLE,
    KEY_FERMAT,
    KEY_ROCA,
    KEY_SMALL_FACTORS,
    KEY_TOO_SHORT,
)

log = logging.getLogger("bastion.defender.audit")

MIN_RSA_BITS: Final = 2048
MIN_EC_BITS: Final = 256
_CACHE_LIMIT: Final = 100_000
_HEX: Final = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    """Why a key is not acceptable.

    :ivar reason_code: the finding's reason code.
    :ivar detector: what found it (``roca``, ``debian-blocklist``, ``fermat``, …).
    :ivar detail: a short explanation for the finding.
    """

    reason_code: str
    detector: str
    detail: str


class WeakKeyLists:
    """Compromised-key lists loaded from operator-provided files (see the module doc)."""

    __slots__ = ("_badkeys", "debian", "spki_sha256")

    def __init__(self) -> None:
        self.debian: set[str] = set()
        self.spki_sha256: set[str] = set()
        self._badkeys: list[bytes] = []

    def __len__(self) -> int:
        return len(self.debian) + len(self.spki_sha256) + sum(len(b) // 16
                                                              for b in self._badkeys)

    @classmethod
    def from_directory(cls, path: Path) -> WeakKeyLists:
        """Load every regular file of ``path`` (a missing directory gives empty lists).

        :raises ValueError: a file is not in one of the formats.
        """
        lists = cls()
        if path.is_dir():
            for item in sorted(path.iterdir()):
                if item.is_file() and not item.name.startswith("."):
                    lists.load_file(item)
        return lists

    def load_file(self, path: Path) -> None:
        """:raises ValueError: not a badkeys ``.dat`` file nor a list of hex digests."""
        if path.suffix == ".dat":
            data = path.read_bytes()
            if len(data) % 16:
                raise ValueError(f"{path}: a badkeys blocklist has 16-byte records")
            self._badkeys.append(data)
            log.info("loaded %d compromised keys (badkeys format) from %s",
                     len(data) // 16, path)
            return
        debian = spki = 0
        for number, raw in enumerate(path.read_text("ascii").splitlines(), 1):
            line = raw.split("#", 1)[0].strip().lower()
            if not line:
                continue
            if not set(line) <= _HEX or len(line) not in (20, 64):
                raise ValueError(f"{path}:{number}: expected 20 hex digits (openssl-blacklist)"
                                 " or 64 (SHA-256 of a SubjectPublicKeyInfo)")
            if len(line) == 20:
                self.debian.add(line)
                debian += 1
            else:
                self.spki_sha256.add(line)
                spki += 1
        log.info("loaded %d Debian weak keys and %d compromised key digests from %s",
                 debian, spki, path)

    def in_badkeys_lists(self, public_value: bytes) -> bool:
        digest = hashlib.sha256(public_value).digest()[:15]
        for data in self._badkeys:
            records = len(data) // 16
            index = bisect.bisect_left(_Records(data), digest, 0, records)
            if index < records and data[index * 16:index * 16 + 15] == digest:
                return True
        return False


class _Records:
    """A read-only sequence view of the 15-byte keys of a sorted ``.dat`` blocklist."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __getitem__(self, index: int) -> bytes:
        return self._data[index * 16:index * 16 + 15]

    def __len__(self) -> int:
        return len(self._data) // 16


def debian_fingerprint(modulus: int) -> str:
    """The ``openssl-blacklist`` entry of an RSA modulus (last 20 hex digits of SHA-1 of
    ``Modulus=<HEX>\\n``)."""
    line = f"Modulus={modulus:X}\n".encode("ascii")
    return hashlib.sha1(line, usedforsecurity=False).hexdigest()[20:]


def spki_sha256(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


class KeyQualityAssessor:
    """Assess certificates' public keys (thread-compatible; one per audit run).

    :param lists: the operator's compromised-key lists.
    """

    __slots__ = ("_cache", "_lists")

    def __init__(self, lists: WeakKeyLists | None = None) -> None:
        self._lists = lists or WeakKeyLists()
        self._cache: dict[str, KeyVerdict | None] = {}

    def assess_pem(self, certificate_pem: str) -> KeyVerdict | None:
        """The verdict on the key of a PEM certificate (``None``: nothing found; an
        unreadable certificate or key gets no verdict, it cannot authenticate anyway)."""
        try:
            cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
            key = cert.public_key()
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
            return None
        return self.assess_key(key)

    def assess_key(self, key: Any) -> KeyVerdict | None:
        fingerprint = spki_sha256(key)
        if fingerprint in self._cache:
            return self._cache[fingerprint]
        verdict = self._assess(key, fingerprint)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[fingerprint] = verdict
        return verdict

    def _assess(self, key: Any, fingerprint: str) -> KeyVerdict | None:
        lists = self._lists
        if isinstance(key, rsa.RSAPublicKey):
            numbers = key.public_numbers()
            return self._rsa(numbers.n, numbers.e, fingerprint)
        public_value: bytes | None = None
        too_short: KeyVerdict | None = None
        if isinstance(key, ec.EllipticCurvePublicKey):
            x = key.public_numbers().x
            public_value = x.to_bytes((x.bit_length() + 7) // 8, "big")
            if key.curve.key_size < MIN_EC_BITS:
                too_short = KeyVerdict(KEY_TOO_SHORT, "key-size",
                                       f"EC key on {key.curve.name} ({key.curve.key_size} "
                                       f"bits); at least {MIN_EC_BITS} bits are required")
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_value = key.public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        elif isinstance(key, dsa.DSAPublicKey) and key.key_size < MIN_RSA_BITS:
            too_short = KeyVerdict(KEY_TOO_SHORT, "key-size",
                                   f"DSA key of {key.key_size} bits")
        if fingerprint in lists.spki_sha256 or (
                public_value is not None and lists.in_badkeys_lists(public_value)):
            return KeyVerdict(KEY_COMPROMISED, "blocklist",
                              "the key is on a list of compromised keys")
        return too_short

    def _rsa(self, n: int, e: int, fingerprint: str) -> KeyVerdict | None:
        lists = self._lists
        bits = n.bit_length()
        if roca(n, e):
            return KeyVerdict(KEY_ROCA, "roca", "the RSA modulus has the ROCA fingerprint "
                              "(Infineon RSALib, CVE-2017-15361): the key can be factored")
        if debian_fingerprint(n) in lists.debian:
            return KeyVerdict(KEY_DEBIAN, "debian-blocklist",
                              "the key was generated by Debian's broken OpenSSL "
                              "(CVE-2008-0166) and is publicly known")
        n_bytes = n.to_bytes((bits + 7) // 8, "big")
        if fingerprint in lists.spki_sha256 or lists.in_badkeys_lists(n_bytes):
            return KeyVerdict(KEY_COMPROMISED, "blocklist",
                              "the key is on a list of compromised keys")
        if fermat(n, e):
            return KeyVerdict(KEY_FERMAT, "fermat", "the RSA primes are too close together: "
                              "Fermat's method factors the modulus")
        if smallfactors(n, e):
            return KeyVerdict(KEY_SMALL_FACTORS, "smallfactors",
                              "the RSA modulus has a small prime factor")
        for name, detect in (("sharedprimes", sharedprimes), ("rsapoly", rsapoly),
                             ("smalld", smalld), ("rsainvalid", rsainvalid)):
            if detect(n, e):
                return KeyVerdict(KEY_FACTORABLE, name,
                                  f"the RSA key is breakable (badkeys {name} check)")
        if bits < MIN_RSA_BITS:
            return KeyVerdict(KEY_TOO_SHORT, "key-size",
                              f"RSA key of {bits} bits; at least {MIN_RSA_BITS} are required")
        return None
