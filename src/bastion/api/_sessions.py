"""Requests signed with temporary credentials: the security token, and what the trail
learns about who held them.

A request signed with temporary credentials carries the session token in the
``X-Amz-Security-Token`` header (or, in a presigned URL, the query parameter of that
name). The token is resolved through the :class:`~._auth.SessionSource` — it must open
for the request's access key id, must not have expired, and its device certificate
must still be active — before the signature is checked with the secret it carries. Such
a caller has the role of its role alias, and its :class:`~._auth.CallerSession` says
which device and alias; :func:`trail_parameters` adds them to what the trail records of
each call.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Final

from ._auth import Caller, CallerSession, SessionClaimsLike
from ._sigv4 import HttpRequest

SECURITY_TOKEN_HEADER: Final = "x-amz-security-token"
SECURITY_TOKEN_QUERY: Final = "X-Amz-Security-Token"
TRAIL_KEY: Final = "bastion:caller"
"""The key under which a call's trail parameters name the device behind temporary
credentials (no AWS operation has a member of that name)."""


def security_token(request: HttpRequest) -> str | None:
    """The request's session token, from the header or the query; ``None`` if absent."""
    token = request.header(SECURITY_TOKEN_HEADER)
    if token is not None:
        return token.strip()
    for item in request.raw_query.split("&"):
        key, sep, value = item.partition("=")
        if sep and urllib.parse.unquote(key) == SECURITY_TOKEN_QUERY:
            return urllib.parse.unquote(value)
    return None


def caller_session(claims: SessionClaimsLike) -> CallerSession:
    return CallerSession(claims.role_alias, claims.thing_name, claims.certificate_id)


def trail_parameters(caller: Caller | None, parameters: Mapping[str, object]
                     ) -> Mapping[str, object]:
    """What the trail records as a call's parameters: the request's, plus — for a caller
    with temporary credentials — the role alias, thing and certificate behind them."""
    session = caller.session if caller is not None else None
    if session is None:
        return parameters
    return {**parameters, TRAIL_KEY: {"roleAlias": session.role_alias,
                                      "thingName": session.thing_name,
                                      "certificateId": session.certificate_id}}
