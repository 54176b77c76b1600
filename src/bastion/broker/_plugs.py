"""Plug points of the broker, filled by later layers (registry, policy, reserved topics).

The broker only knows these small protocols; the registry and policy packages
(``bastion.enforcement``) fill them without touching the broker. Secure by default: a
broker given neither refuses every CONNECT (:class:`RefuseAll`, :class:`DenyAll`). The
permissive ones, :class:`AcceptVerifiedCertificates` and :class:`AllowAll`, are opt-ins
for tests and benchmarks and say so in their names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ..mqtt import Connect, ReasonCode


class Action(str, Enum):
    """Data-plane actions, named as AWS IoT policies name them."""

    CONNECT = "iot:Connect"
    PUBLISH = "iot:Publish"
    RETAIN_PUBLISH = "iot:RetainPublish"
    SUBSCRIBE = "iot:Subscribe"
    RECEIVE = "iot:Receive"


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """An access key that signed a WebSocket upgrade (a SigV4-presigned URL).

    :ivar access_key_id: the key that signed: a long-lived access key (``AKIA…``) or
        temporary credentials (``ASIA…``).
    :ivar role_alias: for temporary credentials, the role alias they were issued for (the
        role session's policies are those attached to it); ``""`` for a long-lived key.
    """

    access_key_id: str
    role_alias: str = ""

    @property
    def identity(self) -> str:
        """What names this key's sessions (session takeover, durable sessions)."""
        return f"{KEY_IDENTITY_PREFIX}{self.access_key_id}"


KEY_IDENTITY_PREFIX = "key:"
""":attr:`Principal.identity` of a key principal starts with it (a certificate id never
does: it is 64 hex digits)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on the other end of a connection, as proven by the TLS handshake or, on a
    WebSocket listener, by a SigV4-presigned upgrade URL (:attr:`key`).

    ``certificate_id`` is the lowercase hex SHA-256 of the client certificate's DER (the
    AWS IoT certificate id); ``certificate_der`` the certificate itself until CONNECT is
    accepted (see :meth:`connected`; empty for a plaintext listener or a key principal,
    where ``certificate_id`` is ``""``).
    """

    certificate_id: str
    certificate_der: bytes
    source_ip: str
    source_port: int
    chain_der: tuple[bytes, ...] = ()
    key: KeyIdentity | None = None

    @property
    def identity(self) -> str:
        """The certificate id, or ``key:<access key id>`` for a key principal: a session
        is resumed only by a connection of the same identity."""
        return self.key.identity if self.key is not None else self.certificate_id

    @classmethod
    def of_identity(cls, identity: str, source_ip: str, source_port: int) -> Principal:
        """The principal a stored session was saved with (:attr:`identity`)."""
        if identity.startswith(KEY_IDENTITY_PREFIX):
            return cls("", b"", source_ip, source_port,
                       key=KeyIdentity(identity[len(KEY_IDENTITY_PREFIX):]))
        return cls(identity, b"", source_ip, source_port)

    @classmethod
    def from_certificate(
        cls, der: bytes, source_ip: str, source_port: int, chain_der: tuple[bytes, ...] = ()
    ) -> Principal:
        return cls(hashlib.sha256(der).hexdigest(), der, source_ip, source_port, chain_der)

    def connected(self) -> Principal:
        """This principal once its CONNECT is accepted: without the certificate's bytes,
        which a broker holding many idle devices need not keep (the registry has the
        certificate, keyed by ``certificate_id``)."""
        if not self.certificate_der and not self.chain_der:
            return self
        return Principal(self.certificate_id, b"", self.source_ip, self.source_port,
                         key=self.key)


class AuthenticationError(Exception):
    """The principal may not connect; ``reason_code`` goes into the CONNACK.

    :param message: for the log; never sent to the client.
    """

    def __init__(self, message: str, reason_code: ReasonCode = ReasonCode.NOT_AUTHORIZED) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class Authenticator(Protocol):
    """Turns a verified TLS peer into a principal, or refuses it."""

    def authenticate(self, principal: Principal, connect: Connect) -> Awaitable[Principal]:
        """Return the (possibly enriched) principal.

        :raises AuthenticationError: the certificate is unknown, inactive, revoked, …
        """
        ...


class SessionPermissions(Protocol):
    """Authorization bound to one session (principal + client id), decided in memory."""

    def check(self, action: Action, resource: str) -> bool:
        """Whether ``action`` on ``resource`` (a topic, filter or client id) is allowed."""
        ...


class TopicTally(Protocol):
    """Per-topic traffic counters a session may carry (Detect's TOPIC_FILTER dimensions).
    Called on the message path: must be cheap and never raise."""

    def sent(self, topic: str, size: int) -> None:
        """The client published ``size`` payload bytes on ``topic``."""

    def received(self, topic: str, size: int) -> None:
        """A message on ``topic`` was delivered to the client."""


LOG_DEBUG = 10
LOG_INFO = 20
LOG_WARN = 30
LOG_ERROR = 40
LOG_DISABLED = 100
"""IoT log levels as integers (Python's ``logging`` numbers; ``DISABLED`` above all): a
session's ``log_level`` is compared with them on the message path, nothing else."""


class MessageLog(Protocol):
    """Where a session's messages are logged (AWS IoT logs' ``Publish-In`` and
    ``Publish-Out``, :mod:`bastion.iotlogs`). Called on the message path only for a
    session whose ``log_level`` is ``LOG_INFO`` or more verbose: must be cheap, must not
    block, must not raise."""

    def publish_in(self, session: object, topic: str, qos: int) -> None:
        """The client's PUBLISH on ``topic`` was authorized."""

    def publish_out(self, session: object, topic: str, qos: int) -> None:
        """A message on ``topic`` goes to the client."""


class _NoMessageLog:
    def publish_in(self, session: object, topic: str, qos: int) -> None:
        return None

    def publish_out(self, session: object, topic: str, qos: int) -> None:
        return None


NO_MESSAGE_LOG: MessageLog = _NoMessageLog()
"""The message log of a session nobody logs (its level is ``LOG_DISABLED``)."""


class UpgradeRefused(Exception):
    """A WebSocket upgrade request is refused: the peer gets HTTP ``status`` and no
    connection (403: not authenticated, e.g. a bad or expired presigned URL).

    :param message: for the log and the response body; never a secret.
    """

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class UpgradeAuthenticator(Protocol):
    """Verifies the SigV4-presigned URL of a WebSocket upgrade (``GET /mqtt?X-Amz-…``)."""

    def authenticate_upgrade(self, target: str,
                             headers: tuple[tuple[str, str], ...]) -> Awaitable[KeyIdentity]:
        """The key that signed the request.

        :param target: the request target as sent (path and query, percent-encoded).
        :param headers: ``(name, value)`` pairs, names in lower case.
        :raises UpgradeRefused: not signed, malformed, expired, unknown key, bad signature.
        """
        ...


class Authorizer(Protocol):
    """Resolves what a principal may do; called once per CONNECT and after security events."""

    def bind(self, principal: Principal, client_id: str) -> Awaitable[SessionPermissions]:
        ...


class RefuseAll:
    """The default authenticator: nobody gets past CONNECT (NOT_AUTHORIZED)."""

    async def authenticate(self, principal: Principal, connect: Connect) -> Principal:
        raise AuthenticationError("the broker has no authenticator: every CONNECT is refused")


class _DenyAll:
    def check(self, action: Action, resource: str) -> bool:
        return False


class DenyAll:
    """The default authorizer: nothing is allowed, not even ``iot:Connect``."""

    _permissions = _DenyAll()

    async def bind(self, principal: Principal, client_id: str) -> SessionPermissions:
        return self._permissions


class AcceptVerifiedCertificates:
    """Opt-in authenticator: any certificate TLS verified against a trusted CA (or, on a
    plaintext listener, anyone at all). For tests and benchmarks."""

    async def authenticate(self, principal: Principal, connect: Connect) -> Principal:
        return principal


class _AllowAll:
    def check(self, action: Action, resource: str) -> bool:
        return True


class AllowAll:
    """Opt-in authorizer: every action is allowed. For tests and benchmarks."""

    _permissions = _AllowAll()

    async def bind(self, principal: Principal, client_id: str) -> SessionPermissions:
        return self._permissions
