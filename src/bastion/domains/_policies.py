"""AWS IoT's TLS security policies, as the TLS settings Bastion applies (a pure table).

AWS names predefined policies (``tlsConfig.securityPolicy`` of a domain configuration);
Bastion maps each name to the TLS versions and the TLS 1.2 cipher list of the server
context it builds for that domain:

===========================================  ============  ==========================
policy                                       TLS versions  TLS 1.2 suites
===========================================  ============  ==========================
``IoTSecurityPolicy_TLS13_1_3_2022_10``      1.3           none (1.2 refused)
``IoTSecurityPolicy_TLS13_1_2_2022_10``      1.2, 1.3      ECDHE AEAD and SHA-2 CBC
(AWS's default)
``IoTSecurityPolicy_TLS12_1_2_2022_10``      1.2, 1.3 *    ECDHE AEAD and SHA-2 CBC
``IoTSecurityPolicy_TLS12_1_0_2016_01``      1.2, 1.3 *    ECDHE AEAD and SHA-2 CBC
``IoTSecurityPolicy_TLS12_1_0_2015_01``      1.2, 1.3 *    ECDHE AEAD and SHA-2 CBC
===========================================  ============  ==========================

Where Bastion differs from AWS, it is never weaker: TLS 1.0 and 1.1 are not served
under any name (Bastion's floor is TLS 1.2); suites without forward secrecy or with
SHA-1 are not offered; and (*) a ``TLS12_*`` policy does not refuse a client that offers
TLS 1.3 (the version is agreed before the server name picks the domain, and Python's
``ssl`` cannot restrict TLS 1.3 afterwards). TLS 1.3's suites are OpenSSL's defaults
(AES-GCM and ChaCha20-Poly1305), as AWS's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bastion.pki import TLS12_CIPHERS


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """One predefined policy.

    :ivar name: AWS's name.
    :ivar tls12_ciphers: the OpenSSL cipher string for TLS 1.2; ``None`` when TLS 1.2 is
        refused (a TLS 1.3-only policy).
    """

    name: str
    tls12_ciphers: str | None

    @property
    def allows_tls12(self) -> bool:
        return self.tls12_ciphers is not None


DEFAULT_SECURITY_POLICY: Final = "IoTSecurityPolicy_TLS13_1_2_2022_10"

SECURITY_POLICIES: Final[dict[str, SecurityPolicy]] = {
    policy.name: policy for policy in (
        SecurityPolicy("IoTSecurityPolicy_TLS13_1_3_2022_10", None),
        SecurityPolicy(DEFAULT_SECURITY_POLICY, TLS12_CIPHERS),
        SecurityPolicy("IoTSecurityPolicy_TLS12_1_2_2022_10", TLS12_CIPHERS),
        SecurityPolicy("IoTSecurityPolicy_TLS12_1_0_2016_01", TLS12_CIPHERS),
        SecurityPolicy("IoTSecurityPolicy_TLS12_1_0_2015_01", TLS12_CIPHERS),
    )
}


def security_policy(name: str | None) -> SecurityPolicy | None:
    """The policy named ``name`` (``None`` → AWS's default); ``None`` when unknown."""
    return SECURITY_POLICIES.get(name or DEFAULT_SECURITY_POLICY)
