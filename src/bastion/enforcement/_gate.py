"""The registry- and policy-backed authenticator/authorizer of the broker.

Theory of operation
-------------------
On CONNECT the broker calls :meth:`RegistryGate.bind` with the TLS-verified principal and
the client id. The gate reads the principal's record from the registry (one read
transaction, in a worker thread so the event loop never blocks on the database): the
certificate must be registered and ACTIVE, and its CA — when it was registered through
one — ACTIVE too. The effective policies (attached to the certificate, and inherited
through the thing groups of the thing named by the client id) are compiled once per
distinct set of (policy, version) and cached; the compiled set is then bound to this
connection's context (client id, thing, certificate fields, source IP), which resolves
every policy variable and condition once. Per-message checks are then pure in-memory
regex matches, cached per session by the broker.

A key principal (MQTT over WebSocket, upgrade signed with an access key; the URL was
verified before CONNECT, see :class:`bastion.api.PresignedUrlAuthenticator`) has no
certificate record: its policies are those attached to the key, or for temporary
credentials to their role alias (:meth:`IdentityService.resolve_key_policies`), compiled
and bound the same way, in a context without certificate or thing fields. Nothing else
about keys is cached: every CONNECT and re-bind reads the attachments.

When the registry changes, :class:`~bastion.enforcement.SecurityEventBridge` asks the
broker to drop or re-bind the affected sessions, which calls ``bind`` again.

JITP/JITR: when the certificate is unknown (or still ``PENDING_ACTIVATION``) and a
:attr:`RegistryGate.first_sight` plug is set, the gate awaits it — it may register the
certificate (and, with a JITP template, provision and activate it) — and then resolves
the principal again; the usual rules decide what follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cryptography import x509

from ..account import Account
from ..broker import Action, AuthenticationError, KeyIdentity, Principal
from ..clock import Clock, SystemClock
from ..mqtt import Connect, ReasonCode
from ..policy import (
    BoundPolicySet,
    CompiledPolicySet,
    RequestContext,
    bind,
    compile_policy_set,
)
from ..registry import (
    CaCertificateStatus,
    CertificateStatus,
    EffectivePolicy,
    IdentityService,
    PrincipalRecord,
)
from ._context import CertificateFields, request_context

log = logging.getLogger("bastion.enforcement")

FirstSight = Callable[[Principal], Awaitable[None]]
"""JITP/JITR plug: called for a certificate the registry does not know or that is still
``PENDING_ACTIVATION`` (see :class:`bastion.reserved.FirstConnectionRegistration`)."""

_RESOURCE_TYPE = {
    Action.CONNECT: "client",
    Action.PUBLISH: "topic",
    Action.RETAIN_PUBLISH: "topic",
    Action.RECEIVE: "topic",
    Action.SUBSCRIBE: "topicfilter",
}


@dataclass(frozen=True, slots=True)
class GatePermissions:
    """Permissions of one session: the bound policy set plus what selects the session
    when the registry changes (certificate, CA, thing, policy names; access key or role
    alias for a key principal)."""

    certificate_id: str
    ca_certificate_id: str | None
    thing_name: str | None
    policy_names: tuple[str, ...]
    bound: BoundPolicySet
    arn_prefix: str
    access_key_id: str = ""  # a key principal's (MQTT over WebSocket, SigV4)
    role_alias: str = ""     # … when the key is temporary credentials of this role alias

    def check(self, action: Action, resource: str) -> bool:
        arn = f"{self.arn_prefix}{_RESOURCE_TYPE[action]}/{resource}"
        return self.bound.is_allowed(action.value, arn)


class RegistryGate:
    """Authenticator and authorizer for the broker, backed by the registry.

    :param account: the region and account of the resource ARNs policies are checked on.
    :param clock: ages the cached principal records (its monotonic time).
    """

    def __init__(self, identity: IdentityService, account: Account,
                 *, compiled_cache_size: int = 1024, record_cache_size: int = 100_000,
                 record_ttl: float = 30.0, clock: Clock | None = None) -> None:
        self._identity = identity
        self._account = account
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._arn_prefix = account.arn("")
        self._compiled: OrderedDict[tuple[tuple[str, str], ...], CompiledPolicySet] = (
            OrderedDict())
        self._cache_size = compiled_cache_size
        # Records of ACTIVE certificates by (certificate, attached thing named by the client
        # id, or None; see ``_record``): a reconnect costs no
        # database read. Any registry change in this process clears the cache
        # (``invalidate``), the generation keeps a read that raced with a change from
        # being cached, and entries expire after ``record_ttl`` seconds so a change made
        # by another process (e.g. the CLI on the same database) is seen soon. Unknown
        # or inactive certificates are never cached: a device registered a moment ago
        # can connect at once.
        self._records: OrderedDict[tuple[str, str | None], tuple[float, PrincipalRecord]] = (
            OrderedDict())
        self._record_ttl = record_ttl
        self._records_size = record_cache_size
        self._generation = 0
        # Certificates never change, so their parsed fields need no invalidation.
        self._certificate_fields: OrderedDict[str, CertificateFields] = OrderedDict()
        self.first_sight: FirstSight | None = None  # JITP / JITR

    async def authenticate(self, principal: Principal, connect: Connect) -> Principal:
        if principal.key is not None:
            return principal  # the presigned upgrade URL was verified
        if not principal.certificate_der:
            raise AuthenticationError("no client certificate", ReasonCode.NOT_AUTHORIZED)
        return principal

    async def bind(self, principal: Principal, client_id: str, *,
                   first_sight: bool = True) -> GatePermissions:
        """Resolve, check and bind the permissions of ``principal`` as ``client_id``.

        :param first_sight: let JITP/JITR register a certificate seen for the first time
            (:attr:`first_sight`); other front doors than CONNECT (the credentials
            provider) pass ``False``: only an MQTT connection provisions a device.
        :raises AuthenticationError: the certificate is unknown, not ACTIVE, or its CA is
            not ACTIVE.
        """
        if principal.key is not None:
            return await self._bind_key(principal, principal.key, client_id)
        record = await self._record(principal.certificate_id, client_id)
        # -- JITP / JITR: a certificate seen for the first time ------------------------
        if first_sight and self.first_sight is not None and (
                record is None or record.status is CertificateStatus.PENDING_ACTIVATION):
            await self.first_sight(principal)
            record = await self._record(principal.certificate_id, client_id)
        if record is None:
            raise AuthenticationError(
                f"certificate {principal.certificate_id} is not registered")
        if record.status is not CertificateStatus.ACTIVE:
            raise AuthenticationError(
                f"certificate {principal.certificate_id} is {record.status.value}")
        if record.ca_certificate_id is not None and record.ca_status is not None and (
                record.ca_status is not CaCertificateStatus.ACTIVE):
            raise AuthenticationError(
                f"CA {record.ca_certificate_id} is {record.ca_status.value}")
        context = request_context(self._account, record, await self._fields(principal),
                                  client_id=client_id, source_ip=principal.source_ip)
        return GatePermissions(
            certificate_id=record.certificate_id,
            ca_certificate_id=record.ca_certificate_id,
            thing_name=record.thing.thing_name if record.thing else None,
            policy_names=tuple(p.policy_name for p in record.policies),
            bound=bind(self._compile(record.policies), context),
            arn_prefix=self._arn_prefix,
        )

    async def _bind_key(self, principal: Principal, key: KeyIdentity,
                        client_id: str) -> GatePermissions:
        policies = await asyncio.to_thread(self._identity.resolve_key_policies,
                                           key.access_key_id, key.role_alias)
        context = RequestContext(region=self._account.region,
                                 account=self._account.account_id, client_id=client_id,
                                 is_attached=False, source_ip=principal.source_ip)
        return GatePermissions(
            certificate_id="", ca_certificate_id=None, thing_name=None,
            policy_names=tuple(p.policy_name for p in policies),
            bound=bind(self._compile(policies), context), arn_prefix=self._arn_prefix,
            access_key_id=key.access_key_id, role_alias=key.role_alias)

    async def _fields(self, principal: Principal) -> CertificateFields:
        """The certificate's policy fields, parsed once per certificate (a fleet
        reconnecting after a network blip does not parse every certificate again). A
        connected principal no longer carries its certificate (``Principal.connected``):
        re-binding it after the cache let go reads the certificate from the registry."""
        cache = self._certificate_fields
        fields = cache.get(principal.certificate_id)
        if fields is None:
            if principal.certificate_der:
                certificate = x509.load_der_x509_certificate(principal.certificate_der)
            else:
                record = await asyncio.to_thread(self._identity.describe_certificate,
                                                 principal.certificate_id)
                certificate = x509.load_pem_x509_certificate(
                    record.certificate_pem.encode("ascii"))
            fields = CertificateFields.of(certificate)
            cache[principal.certificate_id] = fields
            if len(cache) > self._records_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(principal.certificate_id)
        return fields

    def invalidate(self) -> None:
        """Forget every cached principal record (the registry changed)."""
        self._generation += 1
        self._records.clear()

    async def _record(self, certificate_id: str, client_id: str) -> PrincipalRecord | None:
        # The certificate's own record serves every client id that is not the name of a
        # thing attached to it (then no thing and no group policies apply): a fleet of
        # client ids behind one certificate, or a device reconnecting under a new client
        # id, costs one read per certificate, not one per client id.
        record = await self._cached(certificate_id, None)
        if record is None or client_id not in record.thing_names:
            return record
        return await self._cached(certificate_id, client_id)

    async def _cached(self, certificate_id: str, client_id: str | None) -> PrincipalRecord | None:
        key = (certificate_id, client_id)
        records = self._records
        now = self._clock.monotonic()
        cached = records.get(key)
        if cached is not None and cached[0] > now:
            records.move_to_end(key)
            return cached[1]
        generation = self._generation
        record = await asyncio.to_thread(
            self._identity.resolve_principal, certificate_id, client_id=client_id)
        if (record is not None and record.status is CertificateStatus.ACTIVE
                and generation == self._generation):
            records[key] = (now + self._record_ttl, record)
            if len(records) > self._records_size:
                records.popitem(last=False)
        return record

    def _compile(self, policies: tuple[EffectivePolicy, ...]) -> CompiledPolicySet:
        key = tuple((p.policy_name, p.version_id) for p in policies)
        compiled = self._compiled.get(key)
        if compiled is not None:
            self._compiled.move_to_end(key)
            return compiled
        compiled = compile_policy_set(p.parse() for p in policies)
        self._compiled[key] = compiled
        if len(self._compiled) > self._cache_size:
            self._compiled.popitem(last=False)
        return compiled

    def forget_all(self) -> None:
        """Forget every cached record and compiled policy set (changes may have been
        missed: a cluster node that was cut off from the others' events)."""
        self.invalidate()
        self._compiled.clear()

    def forget_policy(self, policy_name: str) -> None:
        """Drop compiled sets that contain ``policy_name`` (a version was replaced)."""
        for key in [k for k in self._compiled if any(name == policy_name for name, _ in k)]:
            del self._compiled[key]
