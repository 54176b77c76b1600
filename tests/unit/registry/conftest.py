"""Registry services on both database backends, a fake clock, an event recorder, and
certificate material (generated once per session: key generation is the slow part)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bastion.account import Account
from bastion.pki import PrivateKey, cert_to_pem, create_root_ca, issue_device_certificate
from bastion.registry import (
    CertificateAuthority,
    CertificateRecord,
    IdentityService,
    PolicyService,
    RegistryService,
)
from bastion.store import Store
from support.clock import ManualClock
from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]


@dataclass
class EventLog:
    """The publish sink: records events, optionally failing on the first N."""

    events: list[object] = field(default_factory=list)

    def __call__(self, event: object) -> None:
        self.events.append(event)

    def of_type(self, kind: type) -> list[object]:
        return [event for event in self.events if isinstance(event, kind)]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def account() -> Account:
    return Account(region="eu-west-1", account_id="111122223333")


@pytest.fixture(scope="session")
def authority() -> CertificateAuthority:
    cert, key = create_root_ca("Bastion Test Root CA")
    return CertificateAuthority(cert, key)


@pytest.fixture
def registry(store: Store, account: Account, events: EventLog, clock: ManualClock
             ) -> RegistryService:
    return RegistryService(store, account=account, publish=events, clock=clock)


@pytest.fixture
def identity(store: Store, account: Account, events: EventLog, clock: ManualClock,
             authority: CertificateAuthority) -> IdentityService:
    return IdentityService(store, authority=authority, account=account, publish=events,
                           clock=clock)


@pytest.fixture
def policies(store: Store, account: Account, events: EventLog, clock: ManualClock
             ) -> PolicyService:
    return PolicyService(store, account=account, publish=events, clock=clock)


# -- keys and certificates -------------------------------------------------------------


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def rsa2048_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa1024_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def csr_pem(key: PrivateKey, common_name: str = "device-1") -> str:
    """A PEM CSR for ``key`` (signed with SHA-256)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture
def make_csr() -> Callable[..., str]:
    return csr_pem


@dataclass(frozen=True)
class ExternalCa:
    """A CA outside Bastion (a customer's), able to sign device and verification certs."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> str:
        return cert_to_pem(self.cert).decode("ascii")

    def issue(self, common_name: str = "external-device", **kwargs: object) -> str:
        cert, _ = issue_device_certificate(self.cert, self.key, common_name=common_name,
                                           **kwargs)  # type: ignore[call-overload]
        return cert_to_pem(cert).decode("ascii")


@pytest.fixture(scope="session")
def external_ca() -> ExternalCa:
    return ExternalCa(*create_root_ca("Customer CA"))


@pytest.fixture(scope="session")
def other_ca() -> ExternalCa:
    return ExternalCa(*create_root_ca("Other CA"))


@pytest.fixture
def new_certificate(identity: IdentityService, ec_key: ec.EllipticCurvePrivateKey
                    ) -> Callable[..., CertificateRecord]:
    """Issue a fresh certificate (a new serial each time) from Bastion's CA."""

    def make(active: bool = True) -> CertificateRecord:
        return identity.create_certificate_from_csr(csr_pem(ec_key), set_as_active=active)

    return make
