"""Temporary credentials: issued to devices by the credentials provider, checked by the
API's SigV4 verification.

Theory of operation
-------------------
:meth:`TemporaryCredentialService.issue` makes a fresh ``ASIA…`` key id and secret and
seals them, with the role, the role alias, the thing and the device certificate, into
the session token (:mod:`._session_tokens`): nothing is stored, so every node of a
cluster that shares the master key accepts the credentials, and the database alone is
not enough to forge one.

:meth:`TemporaryCredentialService.resolve` is the API's lookup for a request carrying
``x-amz-security-token``. In order:

1. the token must open for the request's access key id — else
   ``UnrecognizedClientException`` (a tampered token, a token of another key, a token
   sealed under another master key);
2. it must not have expired (the service's clock) — else ``ExpiredTokenException``;
3. the device certificate it was issued to must still be ACTIVE, with its CA (when it
   has one) ACTIVE — else ``UnrecognizedClientException``. This is read from the
   registry at every request, so deactivating or revoking the certificate stops its
   credentials at once, on every node, before they expire.

Only then does the API check the signature with the secret the token carried. A role
alias deleted or changed after issue does not change credentials already issued (as in
AWS): they keep their role until they expire, or until the certificate goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from bastion.clock import Clock, SystemClock
from bastion.pki import Keystore

from ._errors import AccessError
from ._model import Role
from ._role_arns import ASSUMABLE_ROLES
from ._session_tokens import (
    SessionClaims,
    TokenError,
    new_session_key_id,
    new_session_secret,
    open_claims,
    seal_claims,
)

_log = logging.getLogger("bastion.access")

MIN_DURATION: Final = 900
MAX_DURATION: Final = 43200

CertificateCheck = Callable[[str], bool]
"""Whether the certificate with this id is ACTIVE (and its CA, if any, too)."""


class InvalidSessionTokenError(AccessError):
    """The security token does not open, or its certificate is no longer active."""

    aws_error_type = "UnrecognizedClientException"
    http_status = 403

    def __init__(self) -> None:
        super().__init__("The security token included in the request is invalid.")


class ExpiredSessionTokenError(AccessError):
    """The security token has expired."""

    aws_error_type = "ExpiredTokenException"
    http_status = 403

    def __init__(self) -> None:
        super().__init__("The security token included in the request is expired")


@dataclass(frozen=True, slots=True)
class TemporaryCredentials:
    """What the credentials provider answers."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


class TemporaryCredentialService:
    """Issues and resolves temporary credentials (see the module docstring). Thread-safe.

    :param keystore: seals the session tokens (the installation's master key).
    :param certificate_active: whether a device certificate may still use its
        credentials (read at every :meth:`resolve`).
    :param clock: when credentials are issued, and whether they have expired.
    :raises TypeError: ``keystore`` is not a Keystore, ``certificate_active`` not callable.
    """

    __slots__ = ("_certificate_active", "_clock", "_keystore")

    def __init__(self, keystore: Keystore, *, certificate_active: CertificateCheck,
                 clock: Clock | None = None) -> None:
        if not isinstance(keystore, Keystore):
            raise TypeError(f"keystore must be a Keystore, not {type(keystore).__name__}")
        if not callable(certificate_active):
            raise TypeError("certificate_active must be callable")
        self._keystore = keystore
        self._certificate_active = certificate_active
        self._clock: Clock = clock if clock is not None else SystemClock()

    def __repr__(self) -> str:
        return "<TemporaryCredentialService>"

    def issue(self, *, role: Role, role_alias: str, thing_name: str | None,
              certificate_id: str, duration_seconds: int) -> TemporaryCredentials:
        """Fresh credentials for the device with ``certificate_id``, valid from now for
        ``duration_seconds`` (the expiration is cut to the second, as AWS shows it).

        :raises TypeError: ``role`` is not a Role.
        :raises ValueError: ``role`` may not be assumed (admin), or the duration is
            outside 900–43200 seconds.
        """
        if not isinstance(role, Role):
            raise TypeError(f"role must be a Role, not {type(role).__name__}")
        if role not in ASSUMABLE_ROLES:
            raise ValueError(f"temporary credentials never carry the {role.value} role")
        if (isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int)
                or not MIN_DURATION <= duration_seconds <= MAX_DURATION):
            raise ValueError(f"duration_seconds must be {MIN_DURATION}-{MAX_DURATION}")
        now = self._clock.now().astimezone(UTC).replace(microsecond=0)
        claims = SessionClaims(
            access_key_id=new_session_key_id(), secret_access_key=new_session_secret(),
            role=role, role_alias=role_alias, thing_name=thing_name,
            certificate_id=certificate_id, issued=now,
            expiration=now + timedelta(seconds=duration_seconds))
        token = seal_claims(self._keystore, claims)
        _log.info("temporary credentials %s issued to certificate %s (thing %s, role alias "
                  "%s, role %s) until %s", claims.access_key_id, certificate_id,
                  thing_name or "-", role_alias, role.value, claims.expiration.isoformat())
        return TemporaryCredentials(claims.access_key_id, claims.secret_access_key, token,
                                    claims.expiration)

    def resolve(self, access_key_id: str, session_token: str) -> SessionClaims:
        """The claims of a request's temporary credentials, once they are proven current
        (steps 1–3 of the module docstring). Called from a worker thread.

        :raises InvalidSessionTokenError: the token does not open for this key id, or its
            certificate (or CA) is no longer ACTIVE.
        :raises ExpiredSessionTokenError: the credentials have expired.
        """
        try:
            claims = open_claims(self._keystore, access_key_id, session_token)
        except TokenError as error:
            _log.info("temporary credentials %s refused: %s", access_key_id[:32], error)
            raise InvalidSessionTokenError from None
        if claims.role not in ASSUMABLE_ROLES:  # only a forged token could say so
            raise InvalidSessionTokenError
        if self._clock.now() >= claims.expiration:
            raise ExpiredSessionTokenError
        if not self._certificate_active(claims.certificate_id):
            _log.info("temporary credentials %s refused: certificate %s is no longer active",
                      access_key_id, claims.certificate_id)
            raise InvalidSessionTokenError
        return claims
