"""TLS contexts for the broker (mutual TLS) and for its clients (tests, bench, CLI).

Theory of operation
-------------------
The server context requires a client certificate that chains to one of the *trusted CA
certificates* handed in as PEM (from memory, not from files: they come from the registry).
``VERIFY_X509_PARTIAL_CHAIN`` is set so that, as in AWS IoT, a registered *intermediate*
CA is a trust anchor by itself; only the certificates given are anchors.

Session tickets are off by default. A ticket lets whoever holds it resume the session
without the device's private key (for hours, by OpenSSL's default lifetime), which undoes
keeping that key in a secure element; and OpenSSL 3.0 spends about 0.35 ms of CPU on each
ticket, as much as a third of a whole handshake. ``session_tickets`` turns them on for
fleets that want resumption (the broker still checks the certificate's and CA's status
at every CONNECT, resumed or not). TLS 1.2 session-id resumption, which lives in this
process's cache, is not disabled: Python's ``ssl`` module has no switch for it.

Only TLS 1.2 and 1.3 are offered; TLS 1.2 suites are ECDHE (forward secret) AEAD or
SHA-2 CBC suites. Compression and renegotiation are disabled; each handshake uses a
fresh ECDH key.

ALPN: the server advertises ``x-amzn-mqtt-ca`` and ``mqtt`` (AWS IoT SDKs send
``x-amzn-mqtt-ca`` to speak MQTT on port 443). CPython's ALPN callback answers
``SSL_TLSEXT_ERR_NOACK`` when nothing overlaps, so a client that offers no ALPN, or only
protocols we do not know, still completes the handshake (no ALPN is selected, and
``selected_alpn_protocol()`` returns ``None``). The broker may then decide what to do.

Per-domain contexts (``bastion.domains``): the certificate chain may be given as PEM
bytes rather than a path, and the TLS 1.2 cipher list replaced (``tls12_ciphers``).
``tls12_ciphers=None`` leaves the context with :data:`NO_TLS12_CIPHERS`: a PSK suite
that a server without a PSK callback never selects, so a TLS 1.2 ClientHello finds no
shared cipher and the handshake fails (``handshake_failure``), while TLS 1.3 (whose
suites that list does not touch) is served. That is how a TLS 1.3-only policy holds
even on a context reached through the SNI callback, after the version was negotiated
with the listener's own context.

Encrypted server keys: :meth:`ssl.SSLContext.load_cert_chain` takes the PEM password
(``key_password``, i.e. :attr:`Keystore.private_key_password`). A key object is loaded by
writing it, encrypted under a one-time random password, to a 0600 temporary file that is
deleted at once; the plaintext key never touches the disk.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator, Sequence

from cryptography import x509

from ._keys import PrivateKey, check_private_key
from ._pem import cert_to_pem, load_pem_certificates, private_key_to_pem

DEFAULT_ALPN_PROTOCOLS: tuple[str, ...] = ("x-amzn-mqtt-ca", "mqtt")
"""ALPN protocols the broker advertises: AWS IoT's MQTT-over-443 id, then plain MQTT."""

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!SHA1:!AESCCM"
"""OpenSSL cipher string for TLS 1.2: ECDHE only (forward secrecy), no SHA-1 suites."""

NO_TLS12_CIPHERS = "PSK-AES128-GCM-SHA256"
"""A TLS 1.2 "cipher list" no ClientHello can be served with (see the module docstring)."""

StrPath = str | os.PathLike[str]


def server_ssl_context(
    cert_chain_pem_path: StrPath | bytes,
    key: StrPath | PrivateKey,
    *,
    trusted_ca_pems: Sequence[bytes | str],
    alpn_protocols: Sequence[str] | None = DEFAULT_ALPN_PROTOCOLS,
    key_password: bytes | None = None,
    session_tickets: int = 0,
    tls12_ciphers: str | None = TLS12_CIPHERS,
) -> ssl.SSLContext:
    """Build the broker's mutual-TLS server context.

    :param cert_chain_pem_path: PEM file with the server certificate, then its chain; or
        that PEM itself (bytes), with ``key`` a key object.
    :param key: path of the PEM private key (encrypted or not), or a private key object.
    :param trusted_ca_pems: PEM certificates (or bundles) of the CAs whose certificates
        may connect; at least one.
    :param alpn_protocols: protocols to advertise, most preferred first; ``None`` or empty
        to disable ALPN.
    :param key_password: password of an encrypted key file (ignored for key objects).
    :param session_tickets: TLS 1.3 session tickets sent after each full handshake; 0
        (the default) sends none and refuses TLS 1.2 tickets, so every connection proves
        possession of the device's private key (see the module docstring).
    :param tls12_ciphers: the OpenSSL cipher string for TLS 1.2; ``None`` refuses TLS 1.2
        (see the module docstring).
    :raises TypeError: ``key`` is neither a path nor an EC/RSA private key, or PEM bytes
        come with a key path.
    :raises ValueError: no trusted CA, or a trusted CA PEM that does not parse.
    :raises ssl.SSLError: the certificate chain or key cannot be loaded (wrong password,
        key does not match the certificate).
    :raises OSError: a file cannot be read.
    """
    if isinstance(trusted_ca_pems, bytes | str):
        raise TypeError("trusted_ca_pems must be a sequence of PEM documents, not one document")
    anchors = [cert for pem in trusted_ca_pems for cert in load_pem_certificates(pem)]
    if not anchors:
        raise ValueError("at least one trusted CA certificate is required")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context)
    context.set_ciphers(tls12_ciphers if tls12_ciphers is not None else NO_TLS12_CIPHERS)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.num_tickets = session_tickets
    if not session_tickets:
        context.options |= ssl.OP_NO_TICKET
    context.load_verify_locations(cadata=_pem_text(anchors))
    if alpn_protocols:
        context.set_alpn_protocols(list(alpn_protocols))

    if isinstance(cert_chain_pem_path, bytes):
        if isinstance(key, str | os.PathLike):
            raise TypeError("a certificate chain given as PEM bytes needs a key object")
        with _temporary_file(cert_chain_pem_path) as chain_path:
            _load_cert_chain_with_key_object(context, chain_path, check_private_key(key))
    elif isinstance(key, str | os.PathLike):
        context.load_cert_chain(cert_chain_pem_path, key, password=key_password)
    else:
        _load_cert_chain_with_key_object(context, cert_chain_pem_path, check_private_key(key))
    return context


def client_ssl_context(
    ca_pem: bytes | str,
    cert_path: StrPath | None = None,
    key_path: StrPath | None = None,
    *,
    key_password: bytes | None = None,
    alpn_protocols: Sequence[str] | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """Build a client context that trusts ``ca_pem`` and presents a device certificate.

    :param ca_pem: PEM certificate(s) of the CA that issued the server certificate.
    :param cert_path: the device certificate PEM file; ``None`` for no client certificate.
    :param key_path: the device key PEM file; defaults to ``cert_path`` (combined file).
    :param alpn_protocols: protocols to offer (e.g. ``["x-amzn-mqtt-ca"]``); ``None`` for none.
    :param check_hostname: verify the server name given to ``wrap_socket``.
    :raises ValueError: ``ca_pem`` does not parse; ``key_path`` without ``cert_path``.
    :raises ssl.SSLError: the certificate or key cannot be loaded.
    :raises OSError: a file cannot be read.
    """
    anchors = load_pem_certificates(ca_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(context)
    context.check_hostname = check_hostname
    context.load_verify_locations(cadata=_pem_text(anchors))
    if cert_path is not None:
        context.load_cert_chain(cert_path, key_path, password=key_password)
    elif key_path is not None:
        raise ValueError("key_path given without cert_path")
    if alpn_protocols:
        context.set_alpn_protocols(list(alpn_protocols))
    return context


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> x509.Certificate | None:
    """The certificate the peer presented, or ``None`` if it presented none.

    With asyncio, pass ``transport.get_extra_info("ssl_object")``.

    :raises ValueError: the handshake has not completed.
    """
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        return None
    return x509.load_der_x509_certificate(der)


def _harden(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_ECDH_USE
    context.set_ciphers(TLS12_CIPHERS)


def _pem_text(certs: Sequence[x509.Certificate]) -> str:
    return "".join(cert_to_pem(cert).decode("ascii") for cert in certs)


@contextlib.contextmanager
def _temporary_file(data: bytes) -> Iterator[str]:
    """A 0600 temporary file holding ``data`` (public material: a certificate chain),
    deleted when the block ends."""
    fd, name = tempfile.mkstemp(prefix=".bastion-chain-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _load_cert_chain_with_key_object(
    context: ssl.SSLContext, cert_chain_pem_path: StrPath, key: PrivateKey
) -> None:
    password = secrets.token_hex(32).encode("ascii")
    fd, name = tempfile.mkstemp(prefix=".bastion-key-", suffix=".pem")  # created 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(private_key_to_pem(key, password))
        context.load_cert_chain(cert_chain_pem_path, name, password=password)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
