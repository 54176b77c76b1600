"""The SigV4-presigned URL of an MQTT-over-WebSocket upgrade, verified as AWS IoT does.

Theory of operation
-------------------
A client of AWS IoT's device gateway (the AWS IoT Device SDKs'
``websockets_with_default_aws_signing``, AWS's MQTT-over-WebSocket samples) opens
``wss://<endpoint>/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key>/<date>/
<region>/iotdevicegateway/aws4_request&X-Amz-Date=…&X-Amz-Expires=…&X-Amz-SignedHeaders=
host&X-Amz-Signature=…``, signing ``GET``, the path, the query, the ``Host`` header and the
empty body with an access key. Temporary credentials append
``&X-Amz-Security-Token=<token>`` *after* signing (the device gateway does not sign it).

:class:`PresignedUrlAuthenticator` checks, in this order: the query parameters' shape; the
credential scope (service ``iotdevicegateway``, this installation's region); the key — a
long-lived access key (:class:`~bastion.api.CredentialSource`; unknown or inactive:
refused) or, with a security token, temporary credentials
(:class:`~bastion.api.SessionSource`; invalid or expired: refused); the time (the URL is
good from ``X-Amz-Date`` for ``X-Amz-Expires`` seconds; a replay after that is refused);
the signature (the API's own SigV4 code, :mod:`._sigv4`). Each refusal becomes
:class:`~bastion.broker.UpgradeRefused` (HTTP 403, the SigV4 error's type in the body);
the message never echoes a secret. What the key may then do over MQTT is decided at
CONNECT by the IoT policies attached to it (:class:`~bastion.enforcement.RegistryGate`).

The URL is checked once, at the upgrade: like AWS IoT, the connection then lives until
it is closed (the SDKs presign again when they reconnect).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from ..broker import KeyIdentity, UpgradeRefused
from ..clock import Clock
from ..errors import ServiceError
from ._auth import CredentialSource, SessionSource
from ._sigv4 import (
    HttpRequest,
    check_presigned_clock,
    invalid,
    parse_presigned,
    unrecognized_client,
    verify_signature,
)

log = logging.getLogger("bastion.api")

DEVICE_GATEWAY_SERVICE: Final = "iotdevicegateway"
"""The SigV4 service name of AWS IoT's device gateway (MQTT over WebSocket)."""


class PresignedUrlAuthenticator:
    """Verifies WebSocket upgrades signed for ``iotdevicegateway`` in ``region`` (the
    broker's :class:`~bastion.broker.UpgradeAuthenticator`; see the module docstring).

    :param credentials: long-lived access keys; ``None``: none are accepted.
    :param sessions: temporary credentials; ``None``: none are accepted.
    """

    def __init__(self, region: str, credentials: CredentialSource | None,
                 sessions: SessionSource | None, clock: Clock) -> None:
        self._region = region
        self._credentials = credentials
        self._sessions = sessions
        self._clock = clock

    async def authenticate_upgrade(self, target: str,
                                   headers: tuple[tuple[str, str], ...]) -> KeyIdentity:
        """The key that presigned ``target``.

        :raises UpgradeRefused: (HTTP 403) see the module docstring.
        """
        path, _, query = target.partition("?")
        request = HttpRequest("GET", path, query, headers, b"")
        try:
            return await self._verify(request)
        except ServiceError as error:
            raise UpgradeRefused(f"{error.aws_error_type}: {error.message}") from None

    async def _verify(self, request: HttpRequest) -> KeyIdentity:
        presigned = parse_presigned(request, token_signed=False)
        credential = presigned.auth.credential
        if credential.service != DEVICE_GATEWAY_SERVICE:
            raise invalid("Credential should be scoped to correct service: "
                          f"'{DEVICE_GATEWAY_SERVICE}'.")
        if credential.region != self._region:
            raise invalid(f"Credential should be scoped to a valid region: '{self._region}'.")
        token = presigned.security_token
        if token is not None:
            if self._sessions is None:
                raise unrecognized_client()
            claims = await asyncio.to_thread(self._sessions.resolve,
                                             credential.access_key_id, token)
            secret, role_alias = claims.secret_access_key, claims.role_alias
        else:
            if self._credentials is None:
                raise unrecognized_client()
            found = await asyncio.to_thread(self._credentials.lookup,
                                            credential.access_key_id)
            if found is None:
                raise unrecognized_client()
            secret, role_alias = found[0], ""
        check_presigned_clock(presigned, self._clock.now())
        verify_signature(presigned.signed_request, presigned.auth, secret)
        return KeyIdentity(credential.access_key_id, role_alias)
