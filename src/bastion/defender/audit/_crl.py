"""Certificate revocation lists that operators register for a CA, refreshed on a schedule.

Theory of operation
-------------------
An operator registers one CRL *source* per issuing CA: a file path or an ``https://``
(or ``http://``, ``file://``) URL, and the issuer — a registered CA certificate (by id),
or the PEM of an issuer Bastion does not hold (the root above a registered intermediate).
Every fetch (at registration, when due, or on demand) reads the source, accepts DER or
PEM, and keeps the CRL only if it names the issuer's subject and carries a valid
signature by the issuer's key; otherwise the previous CRL stays and the error is
recorded. A source is due when its CRL's ``nextUpdate`` has passed or the refresh
interval has elapsed since the last fetch.

The checks read a :class:`RevocationIndex`: per issuer, its certificate and the revoked
serial numbers. A device certificate registered with CA ``X`` is revoked when its serial
is on ``X``'s CRL; a CA certificate is revoked when a registered CRL's issuer signed it
(issuer name and signature) and lists its serial.
"""

from __future__ import annotations

import logging
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from bastion.clock import Clock, SystemClock
from bastion.pki import certificate_id
from bastion.store import CrlRow, Store

from .._errors import InvalidRequestError, ResourceNotFoundError

log = logging.getLogger("bastion.defender.audit")

MAX_CRL_BYTES: Final = 64 * 1024 * 1024
FETCH_TIMEOUT: Final = 30.0
DEFAULT_REFRESH: Final = timedelta(hours=1)

Fetcher = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class CrlSource:
    """A registered CRL source and the state of its last fetch."""

    issuer_certificate_id: str
    issuer_subject: str
    source: str
    this_update: datetime | None
    next_update: datetime | None
    fetched_at: datetime | None
    last_error: str | None
    revoked_count: int


@dataclass(frozen=True, slots=True)
class IssuerRevocations:
    issuer_certificate_id: str
    issuer: x509.Certificate
    revoked_serials: frozenset[int]


class RevocationIndex:
    """Revoked serials per issuer, from the CRLs held at the start of an audit."""

    __slots__ = ("_by_id",)

    def __init__(self, issuers: list[IssuerRevocations]) -> None:
        self._by_id = {item.issuer_certificate_id: item for item in issuers}

    def __bool__(self) -> bool:
        return bool(self._by_id)

    @property
    def issuer_ids(self) -> list[str]:
        return sorted(self._by_id)

    def revoked_by(self, issuer_certificate_id: str, serial: int) -> bool:
        """Whether the CRL of issuer ``issuer_certificate_id`` lists ``serial``."""
        found = self._by_id.get(issuer_certificate_id)
        return found is not None and serial in found.revoked_serials

    def issuer_revoking(self, cert: x509.Certificate) -> IssuerRevocations | None:
        """The CRL issuer that signed ``cert`` and lists its serial, if any."""
        for item in self._by_id.values():
            if cert.serial_number not in item.revoked_serials:
                continue
            if item.issuer.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(item.issuer)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            return item
        return None


def default_fetch(source: str) -> bytes:
    """Read a CRL from a file path or a ``file``/``http``/``https`` URL.

    :raises OSError: unreadable, unreachable, or larger than :data:`MAX_CRL_BYTES`.
    """
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        context = ssl.create_default_context() if scheme == "https" else None
        request = urllib.request.Request(source, headers={"User-Agent": "bastion-audit"})
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT,
                                    context=context) as response:
            data: bytes = response.read(MAX_CRL_BYTES + 1)
    else:
        path = Path(urlsplit(source).path if scheme == "file" else source)
        with path.open("rb") as handle:
            data = handle.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise OSError(f"the CRL at {source} is larger than {MAX_CRL_BYTES} bytes")
    return data


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    """:raises ValueError: neither a PEM nor a DER CRL."""
    if b"-----BEGIN X509 CRL-----" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def verify_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
    """:raises ValueError: the CRL is not issued by ``issuer`` or its signature fails."""
    if crl.issuer != issuer.subject:
        raise ValueError(f"the CRL is issued by {crl.issuer.rfc4514_string()}, not by "
                         f"{issuer.subject.rfc4514_string()}")
    try:
        valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise ValueError("the CRL's signature is not valid for the issuer's key")


class CrlRegistry:
    """Register, refresh and read CRL sources.

    :param fetch: reads a source (tests may pass their own); default :func:`default_fetch`.
    :param refresh_interval: how often a source is fetched again at the latest.
    """

    __slots__ = ("_clock", "_fetch", "_refresh", "_store")

    def __init__(self, store: Store, *, clock: Clock | None = None,
                 fetch: Fetcher | None = None,
                 refresh_interval: timedelta = DEFAULT_REFRESH) -> None:
        self._store = store
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._fetch: Fetcher = fetch or default_fetch
        self._refresh = refresh_interval

    def register(self, source: str, *, ca_certificate_id: str | None = None,
                 issuer_certificate_pem: str | None = None) -> CrlSource:
        """Register (or replace) the CRL source of an issuer and fetch it once.

        :param ca_certificate_id: a registered CA certificate, the CRL's issuer; or
        :param issuer_certificate_pem: the issuer's certificate, when it is not registered.
        :raises InvalidRequestError: neither or both issuers given, a bad PEM, or the
            first fetch failed (nothing is registered then).
        :raises ResourceNotFoundError: no such CA certificate.
        """
        if (ca_certificate_id is None) == (issuer_certificate_pem is None):
            raise InvalidRequestError("give exactly one of ca_certificate_id and "
                                      "issuer_certificate_pem")
        if not isinstance(source, str) or not source.strip():
            raise InvalidRequestError("the CRL source must be a file path or URL")
        if ca_certificate_id is not None:
            with self._store.transaction(readonly=True) as uow:
                ca = uow.ca_certificates.get(ca_certificate_id)
            if ca is None:
                raise ResourceNotFoundError(f"CA certificate {ca_certificate_id} is not "
                                            "registered")
            issuer_certificate_pem = ca.certificate_pem
        assert issuer_certificate_pem is not None
        try:
            issuer = x509.load_pem_x509_certificate(issuer_certificate_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise InvalidRequestError("the issuer certificate is not a PEM certificate"
                                      ) from None
        ident = certificate_id(issuer)
        try:
            crl, data = self._load(source, issuer)
        except (OSError, ValueError) as error:
            raise InvalidRequestError(f"the CRL at {source} cannot be used: {error}"
                                      ) from None
        now = self._clock.now()
        row = CrlRow(ident, issuer_certificate_pem, source, data,
                     crl.last_update_utc, crl.next_update_utc, now, None, now)
        with self._store.transaction() as uow:
            uow.audit_crls.put(row)
        log.info("CRL of %s registered from %s (%d revoked)", ident, source, len(crl))
        return _source(row, issuer, len(crl))

    def unregister(self, issuer_certificate_id: str) -> None:
        """:raises ResourceNotFoundError: no source for that issuer."""
        with self._store.transaction() as uow:
            if not uow.audit_crls.delete(issuer_certificate_id):
                raise ResourceNotFoundError(
                    f"no CRL is registered for issuer {issuer_certificate_id}")

    def sources(self) -> list[CrlSource]:
        with self._store.transaction(readonly=True) as uow:
            rows = uow.audit_crls.all()
        result = []
        for row in rows:
            issuer = x509.load_pem_x509_certificate(row.issuer_certificate_pem.encode())
            count = len(parse_crl(row.crl_der)) if row.crl_der else 0
            result.append(_source(row, issuer, count))
        return result

    def refresh(self, issuer_certificate_id: str | None = None, *,
                only_due: bool = False) -> int:
        """Fetch the CRL of one issuer, or of every (due) source; a failed fetch keeps
        the previous CRL and records the error. Returns how many fetches succeeded."""
        now = self._clock.now()
        with self._store.transaction(readonly=True) as uow:
            rows = uow.audit_crls.all()
        succeeded = 0
        for row in rows:
            if issuer_certificate_id is not None and \
                    row.issuer_certificate_id != issuer_certificate_id:
                continue
            if only_due and not self._is_due(row, now):
                continue
            issuer = x509.load_pem_x509_certificate(row.issuer_certificate_pem.encode())
            try:
                crl, data = self._load(row.source, issuer)
            except (OSError, ValueError) as error:
                log.warning("refreshing the CRL of %s from %s failed: %s",
                            row.issuer_certificate_id, row.source, error)
                with self._store.transaction() as uow:
                    uow.audit_crls.record_fetch(row.issuer_certificate_id, crl_der=None,
                                                this_update=None, next_update=None,
                                                fetched_at=now, error=str(error))
                continue
            with self._store.transaction() as uow:
                uow.audit_crls.record_fetch(row.issuer_certificate_id, crl_der=data,
                                            this_update=crl.last_update_utc,
                                            next_update=crl.next_update_utc,
                                            fetched_at=now, error=None)
            succeeded += 1
        return succeeded

    def next_due(self) -> datetime | None:
        """When the next source falls due (``None``: no sources)."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.audit_crls.all()
        dues = [self._due_time(row) for row in rows]
        return min(dues) if dues else None

    def index(self) -> RevocationIndex:
        """The revoked serials of every CRL held now."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.audit_crls.all()
        issuers = []
        for row in rows:
            if not row.crl_der:
                continue
            issuer = x509.load_pem_x509_certificate(row.issuer_certificate_pem.encode())
            crl = parse_crl(row.crl_der)
            issuers.append(IssuerRevocations(row.issuer_certificate_id, issuer,
                                             frozenset(r.serial_number for r in crl)))
        return RevocationIndex(issuers)

    def _load(self, source: str, issuer: x509.Certificate
              ) -> tuple[x509.CertificateRevocationList, bytes]:
        crl = parse_crl(self._fetch(source))
        verify_crl(crl, issuer)
        return crl, crl.public_bytes(Encoding.DER)

    def _due_time(self, row: CrlRow) -> datetime:
        if row.fetched_at is None:
            return row.creation_date
        due = row.fetched_at + self._refresh
        if row.next_update is not None and row.next_update < due:
            due = max(row.next_update, row.fetched_at + timedelta(minutes=1))
        return due

    def _is_due(self, row: CrlRow, now: datetime) -> bool:
        return self._due_time(row) <= now


def _source(row: CrlRow, issuer: x509.Certificate, count: int) -> CrlSource:
    return CrlSource(row.issuer_certificate_id, issuer.subject.rfc4514_string(), row.source,
                     row.this_update, row.next_update, row.fetched_at, row.last_error, count)
