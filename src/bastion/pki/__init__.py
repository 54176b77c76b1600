"""Bastion's public-key infrastructure: certificates, keys at rest, and TLS contexts.

* Issuing: :func:`create_root_ca`, :func:`issue_server_certificate`,
  :func:`issue_device_certificate`, :func:`issue_requested_certificate` (a CSR's
  subject and alternative names), :func:`create_code_signing_ca` and
  :func:`issue_code_signing_certificate` (firmware signing, apart from the device CA),
  and :func:`certificate_id` (AWS IoT's id: SHA-256 of
  the DER, lowercase hex).
* PEM: :func:`cert_to_pem`, :func:`load_pem_certificate`, :func:`load_pem_certificates`,
  :func:`private_key_to_pem`, :func:`load_pem_private_key`.
* TLS: :func:`server_ssl_context` (mutual TLS, TLS 1.2+), :func:`client_ssl_context`,
  :func:`peer_certificate`.
* The dangerous corner, :class:`Keystore`: the master key (``BASTION_MASTER_KEY`` or
  ``master.key``), private keys encrypted at rest, and AES-GCM sealing of other secrets.
  :func:`write_file_atomically` writes key files that are never partially written and
  never readable by others.
"""

from __future__ import annotations

from ._certs import (
    REQUESTED_ALTERNATIVE_NAME_TYPES,
    IPAddress,
    certificate_id,
    create_code_signing_ca,
    create_root_ca,
    issue_code_signing_certificate,
    issue_device_certificate,
    issue_requested_certificate,
    issue_server_certificate,
)
from ._errors import KeystoreError, PKIError, SecretTamperedError
from ._files import write_file_atomically
from ._keys import KeyType, PrivateKey, PublicKey, generate_private_key
from ._keystore import MASTER_KEY_ENV, Keystore
from ._pem import (
    cert_to_pem,
    load_pem_certificate,
    load_pem_certificates,
    load_pem_private_key,
    private_key_to_pem,
)
from ._tls import (
    DEFAULT_ALPN_PROTOCOLS,
    TLS12_CIPHERS,
    client_ssl_context,
    peer_certificate,
    server_ssl_context,
)

__all__ = [
    "DEFAULT_ALPN_PROTOCOLS",
    "MASTER_KEY_ENV",
    "REQUESTED_ALTERNATIVE_NAME_TYPES",
    "TLS12_CIPHERS",
    "IPAddress",
    "KeyType",
    "Keystore",
    "KeystoreError",
    "PKIError",
    "PrivateKey",
    "PublicKey",
    "SecretTamperedError",
    "cert_to_pem",
    "certificate_id",
    "client_ssl_context",
    "create_code_signing_ca",
    "create_root_ca",
    "generate_private_key",
    "issue_code_signing_certificate",
    "issue_device_certificate",
    "issue_requested_certificate",
    "issue_server_certificate",
    "load_pem_certificate",
    "load_pem_certificates",
    "load_pem_private_key",
    "peer_certificate",
    "private_key_to_pem",
    "server_ssl_context",
    "write_file_atomically",
]
