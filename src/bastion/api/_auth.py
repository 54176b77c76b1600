"""Who may call the API, and what is written down about each call.

Plug points (``typing.Protocol``), so that the access-key store and the hash-chained
trail can live elsewhere:

* :class:`CredentialSource` — access key id → (secret access key, :class:`Role`);
* :class:`SessionSource` — temporary credentials (access key id and session token, the
  ``x-amz-security-token`` header) → their claims: secret, role, role alias, thing;
* :class:`TrailSink` — receives one record per API call, whatever its outcome; the record
  of a call that changes something commits with the change, when the sink keeps its
  records in the same database (:meth:`TrailSink.record_with_change`).

Roles are coarse on purpose: ``auditor`` reads, ``operator`` runs the fleet, ``admin``
also manages Bastion itself (access keys, users). :func:`role_allows` is the one table
that says which operation each role may call.

:class:`StaticCredentials` and :class:`MemoryTrail` are small in-memory implementations
for tests and for embedding; :class:`LogTrail` writes each record to the log when no
real trail is plugged in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Final, Protocol

from ..access import Role  # one enum: its values are stored with each access key

__all__ = [
    "Caller",
    "CallerSession",
    "ChangeRecord",
    "CredentialSource",
    "LogTrail",
    "MemoryTrail",
    "Role",
    "SessionClaimsLike",
    "SessionSource",
    "StaticCredentials",
    "TrailRecord",
    "TrailSink",
    "is_read_only",
    "role_allows",
]


@dataclass(frozen=True, slots=True)
class CallerSession:
    """Who holds the temporary credentials a request was signed with: the device they
    were issued to by the credentials provider, and for which role alias."""

    role_alias: str
    thing_name: str | None
    certificate_id: str


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated identity behind one API request.

    :ivar access_key_id: the access key that signed the request.
    :ivar role: what that key may do.
    :ivar source_ip: the client's address.
    :ivar region: the region of the request's SigV4 credential scope.
    :ivar account_id: the account the request acts on (it appears in ARNs).
    :ivar emulated: the request came through emulator mode (any key, not verified).
    :ivar session: for temporary credentials, the device and role alias behind them.
    """

    access_key_id: str
    role: Role
    source_ip: str
    region: str
    account_id: str
    emulated: bool
    session: CallerSession | None = None


class CredentialSource(Protocol):
    """Where the API looks up access keys."""

    def lookup(self, access_key_id: str) -> tuple[str, Role] | None:
        """The key's secret access key and role; ``None`` when the key is unknown or
        disabled. Called from a worker thread, once per request."""
        ...


class SessionClaimsLike(Protocol):
    """What the API reads of resolved temporary credentials."""

    @property
    def secret_access_key(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def role_alias(self) -> str: ...
    @property
    def thing_name(self) -> str | None: ...
    @property
    def certificate_id(self) -> str: ...


class SessionSource(Protocol):
    """Where the API resolves temporary credentials (a request with a security token)."""

    def resolve(self, access_key_id: str, session_token: str) -> SessionClaimsLike:
        """The claims of current temporary credentials. Called from a worker thread.

        :raises bastion.errors.ServiceError: the token is invalid
            (``UnrecognizedClientException``) or expired (``ExpiredTokenException``).
        """
        ...


class TrailSink(Protocol):
    """Where the API records every call (allowed, denied or failed)."""

    def record(
        self,
        *,
        caller: Caller | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> None:
        """Record one call.

        :param caller: the authenticated caller; ``None`` when authentication failed.
        :param access_key_id: the access key the request named (may be empty).
        :param service: ``iot``, ``iot-data``, ``iot-jobs-data`` or ``bastion``.
        :param operation: the AWS operation name (``CreateThing``); empty when the request
            matched no operation.
        :param parameters: the bound request parameters; they may hold secrets (a CSR,
            a payload), which the sink must redact before storing.
        :param outcome: ``"allowed"`` (the operation ran and succeeded), ``"denied"``
            (authentication or authorization refused it) or ``"error"`` (it was refused
            or failed after authorization).
        :param error_code: the AWS error code answered, if any.
        :param http_status: the HTTP status answered.
        """
        ...

    def record_with_change(
        self,
        *,
        caller: Caller | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> AbstractContextManager[ChangeRecord]:
        """A block in which the call runs, so that its change carries its record: the
        first database transaction that the block's thread commits — the change the call
        makes — appends the record too, in that transaction, so that a crash leaves both
        or neither. The fields are those of :meth:`record`, given before the call runs:
        the answer it gets when it succeeds.

        The block's value says whether the record has committed. When it has not (the
        call changed nothing, or the sink keeps no database to join), the caller records
        the call with :meth:`record` once its outcome is known; when it has, but the call
        then ends otherwise than the record says, the caller records that answer too.
        """
        ...


class ChangeRecord(Protocol):
    """The block value of :meth:`TrailSink.record_with_change`."""

    @property
    def committed(self) -> bool:
        """Whether the record has committed, with the call's change."""
        ...


@dataclass(frozen=True, slots=True)
class _Unjoined:
    """The change record of a sink that joins no transaction: never committed."""

    committed: bool = False


_UNJOINED: Final = _Unjoined()


OUTCOME_ALLOWED: Final = "allowed"
OUTCOME_DENIED: Final = "denied"
OUTCOME_ERROR: Final = "error"

ADMIN_SERVICE: Final = "bastion"
"""The service name of Bastion's own administration operations (keys, users, trail)."""

_READ_PREFIXES: Final = ("Describe", "List", "Get")
_READ_OPERATIONS: Final = frozenset({
    "TestAuthorization",
    "TestInvokeAuthorizer",
    "ValidateSecurityProfileBehaviors",
    "SearchIndex",
    "GetStatistics",
    "GetCardinality",
    "GetPercentiles",
    "GetBucketsAggregation",
    "VerifyTrail",  # Bastion's: recomputes the trail's links, changes nothing
})
# Get* operations that change state (they create what they return).
_MUTATING_GETS: Final = frozenset({"GetRegistrationCode"})


def is_read_only(operation: str) -> bool:
    """Whether ``operation`` only reads state (``Describe*``, ``List*``, ``Get*``, and a
    few evaluations such as ``TestAuthorization``)."""
    if operation in _READ_OPERATIONS:
        return True
    return operation.startswith(_READ_PREFIXES) and operation not in _MUTATING_GETS


def role_allows(role: Role, service: str, operation: str) -> bool:
    """Whether ``role`` may call ``operation`` of ``service``.

    * ``admin``: everything;
    * ``operator``: every operation of the AWS services (``iot``, ``iot-data``,
      ``iot-jobs-data``); of Bastion's own administration (service ``bastion``: access
      keys, users) only the read-only ones;
    * ``auditor``: read-only operations of every service.

    :raises TypeError: ``role`` is not a :class:`Role`.
    """
    if not isinstance(role, Role):
        raise TypeError(f"role must be a Role, not {type(role).__name__}")
    if role is Role.ADMIN:
        return True
    if role is Role.OPERATOR and service != ADMIN_SERVICE:
        return True
    return is_read_only(operation)


class StaticCredentials:
    """A fixed map of access keys: ``{access_key_id: (secret_access_key, role)}``.

    :raises TypeError: a value is not a ``(str, Role)`` pair.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, tuple[str, Role]]) -> None:
        checked: dict[str, tuple[str, Role]] = {}
        for key_id, value in keys.items():
            if (not isinstance(key_id, str) or not isinstance(value, tuple) or len(value) != 2
                    or not isinstance(value[0], str) or not isinstance(value[1], Role)):
                raise TypeError("keys must map str to (secret: str, role: Role)")
            checked[key_id] = value
        self._keys = checked

    def __repr__(self) -> str:
        return f"<StaticCredentials {len(self._keys)} keys>"

    def lookup(self, access_key_id: str) -> tuple[str, Role] | None:
        return self._keys.get(access_key_id)


@dataclass(frozen=True, slots=True)
class TrailRecord:
    """One call as :class:`MemoryTrail` keeps it (the arguments of ``record``)."""

    caller: Caller | None
    access_key_id: str
    source_ip: str
    service: str
    operation: str
    parameters: Mapping[str, object] = field(repr=False)
    outcome: str
    error_code: str | None
    http_status: int


class _RecordedAfterwards:
    """A trail with no database to join: ``record_with_change`` joins nothing, and every
    call is recorded afterwards, with ``record``."""

    __slots__ = ()

    def record_with_change(
        self,
        *,
        caller: Caller | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> AbstractContextManager[ChangeRecord]:
        """No database to join: every call is recorded afterwards, with :meth:`record`."""
        return nullcontext(_UNJOINED)


class MemoryTrail(_RecordedAfterwards):
    """Keeps every record in a list (thread-safe); for tests."""

    __slots__ = ("_lock", "_records")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[TrailRecord] = []

    @property
    def records(self) -> list[TrailRecord]:
        """A snapshot of the records so far, oldest first."""
        with self._lock:
            return list(self._records)

    def record(
        self,
        *,
        caller: Caller | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> None:
        entry = TrailRecord(caller, access_key_id, source_ip, service, operation,
                            dict(parameters), outcome, error_code, http_status)
        with self._lock:
            self._records.append(entry)


class LogTrail(_RecordedAfterwards):
    """Writes one line per call to the ``bastion.api.trail`` logger, without parameters
    (so nothing secret reaches the log). The stand-in until a real trail is plugged in."""

    __slots__ = ("_log",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("bastion.api.trail")

    def record(
        self,
        *,
        caller: Caller | None,
        access_key_id: str,
        source_ip: str,
        service: str,
        operation: str,
        parameters: Mapping[str, object],
        outcome: str,
        error_code: str | None,
        http_status: int,
    ) -> None:
        role = caller.role.value if caller is not None else "-"
        self._log.info("%s %s:%s key=%s role=%s from=%s -> %d %s", outcome, service,
                       operation or "-", access_key_id or "-", role, source_ip,
                       http_status, error_code or "")
