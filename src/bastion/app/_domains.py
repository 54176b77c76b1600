"""Server names chosen by SNI on the MQTT listeners: domain configurations, followed live.

Theory of operation
-------------------
The listeners' own TLS context (the data directory's certificate, from the
:class:`~._trust.DeviceTrust`) gets an SNI callback (:meth:`DomainRouting.attach`). For
every ClientHello the callback looks the server name up in a table built from
:meth:`bastion.domains.DomainService.served_domains`:

* a name of an ENABLED domain: the handshake continues on that domain's context (its
  certificate and chain, its security policy's TLS 1.2 ciphers; trusting the same device
  CAs, followed live by the device trust);
* a name of a DISABLED domain: the handshake is refused with an ``access_denied`` alert
  (AWS: "devices connected to that domain receive an authentication error");
* any other name, or none: the default domain — the listeners' own context, or the
  default domain's policy context once ``iot:Data-ATS`` was given a security policy.

The table is replaced whole (one attribute assignment, read by the callback on the
event loop) after every :class:`~bastion.domains.ServedDomainsChanged`: new handshakes see
the change at once. Connections already open keep their certificate and policy, except
that the sessions of a domain that was disabled or deleted are dropped (the callback
remembers, weakly, which TLS connection came in under which domain; the broker closes
them as it closes a revoked certificate's: ``NOT_AUTHORIZED``, no will). The listeners' base context
allows TLS 1.2 and 1.3; a TLS 1.3-only policy holds on the domain's context through its
cipher list (see :mod:`bastion.pki._tls`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..domains import DomainService, ServedDomain, ServedDomainsChanged
from ..events import EventBus
from ..lifecycle import Component
from ._trust import DeviceTrust, Spawn

log = logging.getLogger("bastion")


DropConnections = Callable[[Callable[[object], bool], str], int]
"""Drop the sessions whose TLS connection (``ssl.SSLObject``) the first argument picks,
giving the second as the reason; returns how many (the broker's ``drop_sessions``)."""


@dataclass(frozen=True, slots=True)
class _Route:
    context: ssl.SSLContext | None   # None: the domain is disabled


class DomainRouting(Component):
    """The SNI callback of the MQTT listeners (see the module docstring). Start it after
    the device trust and before the listeners.

    :param alpn_protocols: what every domain context advertises (the listeners').
    :param session_tickets: likewise.
    :param drop: closes the sessions of a domain disabled or deleted (none: they stay).
    """

    name = "domain-routing"

    def __init__(self, domains: DomainService, trust: DeviceTrust, bus: EventBus,
                 spawn: Spawn, *, alpn_protocols: Sequence[str] | None,
                 session_tickets: int = 0, drop: DropConnections | None = None) -> None:
        self._domains = domains
        self._trust = trust
        self._bus = bus
        self._spawn = spawn
        self._alpn = alpn_protocols
        self._tickets = session_tickets
        self._routes: dict[str, _Route] = {}
        self._default: ssl.SSLContext | None = None
        self._owned: list[ssl.SSLContext] = []
        self._lock = asyncio.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._drop = drop
        self._came_in: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self.generation = 0
        """How many times the table was built (tests wait on it)."""

    async def start(self) -> None:
        self._unsubscribe = self._bus.subscribe(ServedDomainsChanged, self._changed)
        await self.reload()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for context in self._owned:
            self._trust.forget(context)
        self._owned, self._routes, self._default = [], {}, None

    def attach(self, context: ssl.SSLContext) -> None:
        """Route the handshakes of ``context`` (a listener's) by server name."""
        context.sni_callback = self._select

    async def reload(self) -> None:
        """Build the table again from the served domains and put it in place.

        :raises bastion.store.StoreError: the store cannot be read.
        """
        async with self._lock:
            served = await asyncio.to_thread(self._domains.served_domains)
            routes: dict[str, _Route] = {}
            default: ssl.SSLContext | None = None
            owned: list[ssl.SSLContext] = []
            for domain in served:
                try:
                    context = self._context(domain)
                except (ssl.SSLError, ValueError, TypeError, OSError) as error:
                    log.error("domain %s cannot be served: %s",
                              domain.domain_name or "iot:Data-ATS", error)
                    continue
                owned.append(context)
                if domain.domain_name is None:
                    default = context
                else:
                    routes[domain.domain_name] = _Route(context if domain.enabled else None)
            old, self._owned = self._owned, owned
            served_before = {name for name, route in self._routes.items()
                             if route.context is not None}
            self._routes, self._default = routes, default
            gone = {name for name in served_before
                    if name not in routes or routes[name].context is None}
            if gone and self._drop is not None:
                came_in = self._came_in
                dropped = self._drop(lambda tls: came_in.get(tls) in gone,
                                     "its domain was disabled or deleted")
                if dropped:
                    log.info("dropped %d session(s) of domain(s) %s", dropped,
                             ", ".join(sorted(gone)))
            for context in old:
                self._trust.forget(context)
            self.generation += 1
            log.info("serving %d domain(s) by SNI (%d disabled)", len(routes),
                     sum(1 for route in routes.values() if route.context is None))

    def _context(self, domain: ServedDomain) -> ssl.SSLContext:
        ciphers = domain.policy.tls12_ciphers
        if domain.certificate_chain_pem is None or domain.key is None:
            return self._trust.policy_context(alpn_protocols=self._alpn,
                                              session_tickets=self._tickets,
                                              tls12_ciphers=ciphers)
        return self._trust.domain_context(domain.certificate_chain_pem, domain.key,
                                          alpn_protocols=self._alpn,
                                          session_tickets=self._tickets,
                                          tls12_ciphers=ciphers)

    def _changed(self, event: ServedDomainsChanged) -> None:
        log.info("domains changed (%s)", event.reason)
        self._spawn(self.reload())

    def _select(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                context: ssl.SSLContext) -> int | None:
        del context
        name = server_name.lower().rstrip(".") if server_name else None
        route = self._routes.get(name) if name else None
        if name is None or route is None:
            if self._default is not None:
                connection.context = self._default
            return None
        if route.context is None:
            return ssl.ALERT_DESCRIPTION_ACCESS_DENIED
        connection.context = route.context
        self._came_in[connection] = name
        return None
