"""The device certificates TLS trusts, one set for every device-facing listener.

Theory of operation
-------------------
Device certificates are checked in the TLS handshake against Bastion's CA and every
ACTIVE CA in the registry. :class:`DeviceTrust` reads those CAs once when it starts,
builds each listener's server context from them (:meth:`DeviceTrust.server_context`: the
MQTT listeners', the credentials provider's), and follows the registry: a CA that
becomes ACTIVE later is added to every context it built (new handshakes see it at once).
A CA that leaves ACTIVE stays in the TLS stores, but its devices are refused by the
registry checks behind TLS (CONNECT, the credentials provider) and dropped live: the
registry is the authority, TLS only a first gate.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..controlplane import ControlPlane
from ..datadir import DataDir, server_ssl_context_for
from ..events import EventBus
from ..lifecycle import Component
from ..pki import TLS12_CIPHERS, PrivateKey, server_ssl_context
from ..registry import CaCertificateRegistered, CaCertificateStatus, CaCertificateStatusChanged

log = logging.getLogger("bastion")

Spawn = Callable[[Coroutine[Any, Any, None]], object]
"""Runs a coroutine in the background on the running loop (the broker's ``spawn``)."""


class DeviceTrust(Component):
    """The CAs device certificates may chain to, followed live (see the module docstring).
    Start it before the listeners that ask it for contexts."""

    name = "device-trust"

    def __init__(self, datadir: DataDir, plane: ControlPlane, bus: EventBus,
                 spawn: Spawn) -> None:
        self._datadir = datadir
        self._plane = plane
        self._bus = bus
        self._spawn = spawn
        self._pems: list[str] | None = None
        self._contexts: list[ssl.SSLContext] = []
        self._unsubscribe: list[Callable[[], None]] = []

    async def start(self) -> None:
        self._unsubscribe = [
            self._bus.subscribe(CaCertificateRegistered, self._trust_changed),
            self._bus.subscribe(CaCertificateStatusChanged, self._trust_changed),
        ]
        self._pems = await self._active_ca_pems()

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._contexts.clear()

    def server_context(self, *, alpn_protocols: Sequence[str] | None,
                       session_tickets: int = 0) -> ssl.SSLContext:
        """A mutual-TLS server context with the data directory's server certificate that
        trusts the device CAs, now and as they become ACTIVE.

        :raises RuntimeError: not started.
        :raises bastion.pki.KeystoreError, ssl.SSLError: see
            :func:`bastion.datadir.server_ssl_context_for`.
        """
        if self._pems is None:
            raise RuntimeError("the device trust is not started")
        context = server_ssl_context_for(self._datadir, extra_trusted_ca_pems=self._pems,
                                         alpn_protocols=alpn_protocols,
                                         session_tickets=session_tickets)
        self._contexts.append(context)
        return context

    def domain_context(self, certificate_chain_pem: bytes, key: PrivateKey, *,
                       alpn_protocols: Sequence[str] | None, session_tickets: int = 0,
                       tls12_ciphers: str | None = TLS12_CIPHERS) -> ssl.SSLContext:
        """A mutual-TLS server context like :meth:`server_context`'s, with another server
        certificate (a domain configuration's) and TLS 1.2 cipher list (its security
        policy; ``None`` refuses TLS 1.2). Followed like the others until
        :meth:`forget`.

        :raises RuntimeError: not started.
        :raises ssl.SSLError: the key does not match the certificate.
        """
        if self._pems is None:
            raise RuntimeError("the device trust is not started")
        context = server_ssl_context(
            certificate_chain_pem, key,
            trusted_ca_pems=[self._datadir.ca_cert_path.read_bytes(), *self._pems],
            alpn_protocols=alpn_protocols, session_tickets=session_tickets,
            tls12_ciphers=tls12_ciphers)
        self._contexts.append(context)
        return context

    def policy_context(self, *, alpn_protocols: Sequence[str] | None,
                       session_tickets: int = 0,
                       tls12_ciphers: str | None = TLS12_CIPHERS) -> ssl.SSLContext:
        """:meth:`server_context` (the data directory's certificate) with another TLS 1.2
        cipher list: the default domain under a security policy of its own.

        :raises RuntimeError: not started.
        """
        if self._pems is None:
            raise RuntimeError("the device trust is not started")
        context = server_ssl_context_for(self._datadir, extra_trusted_ca_pems=self._pems,
                                         alpn_protocols=alpn_protocols,
                                         session_tickets=session_tickets,
                                         tls12_ciphers=tls12_ciphers)
        self._contexts.append(context)
        return context

    def forget(self, context: ssl.SSLContext) -> None:
        """Stop following ``context`` (a domain that is no longer served)."""
        self._contexts = [c for c in self._contexts if c is not context]

    def _trust_changed(self, event: CaCertificateRegistered | CaCertificateStatusChanged
                       ) -> None:
        status = event.status if isinstance(event, CaCertificateRegistered) else event.new
        # Before start() has read the CAs, every ACTIVE CA is collected by _active_ca_pems.
        if status is CaCertificateStatus.ACTIVE and self._pems is not None:
            self._spawn(self._trust_ca(event.ca_certificate_id))

    async def _trust_ca(self, ca_certificate_id: str) -> None:
        record = await asyncio.to_thread(self._plane.identity.describe_ca_certificate,
                                         ca_certificate_id)
        if self._pems is not None and record.status is CaCertificateStatus.ACTIVE:
            self._pems.append(record.certificate_pem)
            for context in self._contexts:
                context.load_verify_locations(cadata=record.certificate_pem)
            log.info("now trusting CA %s for device certificates", ca_certificate_id)

    async def _active_ca_pems(self) -> list[str]:
        identity = self._plane.identity

        def collect() -> list[str]:
            pems: list[str] = []
            token: str | None = None
            while True:
                page, token = identity.list_ca_certificates(next_token=token)
                pems.extend(r.certificate_pem for r in page
                            if r.status is CaCertificateStatus.ACTIVE)
                if not token:
                    return pems
        return await asyncio.to_thread(collect)
