"""AWS Signature Version 4 verification (header form, ``AWS4-HMAC-SHA256``).

Theory of operation
-------------------
A signed request carries ``Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<date>/
<region>/<service>/aws4_request, SignedHeaders=<h1;h2…>, Signature=<hex>`` and the time
it was signed in ``X-Amz-Date`` (or ``Date``). The server rebuilds what the client signed
and checks the HMAC:

1. **Canonical request** — method; the path as sent, with dot segments and empty
   segments removed, percent-encoded *again* (every non-S3 service double-encodes: a
   ``%2F`` inside a label is signed as ``%252F``); the query pairs, each key and value
   decoded then RFC 3986-encoded, sorted; each signed header as ``name:value`` (values of
   repeated headers joined with ``,``, runs of spaces collapsed); the signed header names;
   the hex SHA-256 of the body (``x-amz-content-sha256`` when present, which must then
   equal the body's hash: a tampered body is refused either way).
2. **String to sign** — algorithm, timestamp, credential scope, hex SHA-256 of (1).
3. **Signing key** — HMAC-SHA256 chain ``"AWS4"+secret`` → date → region → service →
   ``aws4_request``; the signature is HMAC-SHA256 of (2) under it, compared in constant
   time.

**Presigned URLs** (query form, :func:`parse_presigned`) carry the same parts as query
parameters: ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders`` and ``X-Amz-Signature``. The canonical query is every parameter
but ``X-Amz-Signature`` — and, for services that append it after signing as AWS IoT's
device gateway does (``iotdevicegateway``, MQTT over WebSocket), but
``X-Amz-Security-Token`` — and the payload is the empty body. Such a URL is good from its
``X-Amz-Date`` (not more than five minutes ahead of the server's clock) for
``X-Amz-Expires`` seconds; without ``X-Amz-Expires`` (the AWS IoT Device SDKs send none)
it is good, like a signed header, within five minutes of ``X-Amz-Date``.

The timestamp must lie within five minutes of the server's clock, and the credential
scope's date must be the timestamp's date. ``Host`` must be signed. Errors carry the
codes AWS answers with (403 ``MissingAuthenticationTokenException``,
``IncompleteSignatureException``, ``InvalidSignatureException``,
``UnrecognizedClientException``); their messages never echo a signature or a secret.

This module is pure: the clock is a parameter, the secret is looked up by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import quote, unquote

from ._errors import ApiError

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"

_AMZ_DATE: Final = re.compile(r"\d{8}T\d{6}Z")
_SCOPE_DATE: Final = re.compile(r"\d{8}")
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME: Final = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")

SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)


class SignatureError(ApiError):
    """The request's SigV4 authentication is missing, malformed or wrong (HTTP 403)."""

    def __init__(self, aws_error_type: str, message: str) -> None:
        super().__init__(aws_error_type, 403, message)


def missing_token() -> SignatureError:
    return SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")


def incomplete(message: str) -> SignatureError:
    return SignatureError("IncompleteSignatureException", message)


def invalid(message: str) -> SignatureError:
    return SignatureError("InvalidSignatureException", message)


def unrecognized_client() -> SignatureError:
    return SignatureError("UnrecognizedClientException",
                          "The security token included in the request is invalid.")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP request as it arrived.

    :ivar raw_path: the path exactly as sent (percent-encoded), without the query.
    :ivar raw_query: the query string exactly as sent, without ``?``.
    :ivar headers: ``(name, value)`` pairs in arrival order, names in lower case.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        """The values of header ``name`` (lower case) joined with ``,``; ``None`` if
        absent."""
        values = [value for key, value in self.headers if key == name]
        return ",".join(values) if values else None


@dataclass(frozen=True, slots=True)
class CredentialScope:
    """``<access key id>/<date>/<region>/<service>/aws4_request``."""

    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        """The scope without the key id, as it appears in the string to sign."""
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True, slots=True)
class SigV4Authorization:
    """A parsed ``Authorization`` header with the request's signing time."""

    credential: CredentialScope
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)
    amz_date: str
    timestamp: datetime


def parse_authorization(request: HttpRequest) -> SigV4Authorization:
    """Parse the ``Authorization`` header and the signing time; check their structure.

    :raises SignatureError: no ``Authorization`` header (MissingAuthenticationToken), a
        malformed one or no date (IncompleteSignature), a credential scope whose date is
        not the signing date, or ``Host`` not signed (InvalidSignature).
    """
    header = request.header("authorization")
    if header is None:
        raise missing_token()
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete(f"Unsupported Authorization Type; only {ALGORITHM} is accepted")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts[key] = value.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in parts:
            raise incomplete(f"Authorization header requires '{required}' parameter.")
    credential = _parse_credential(parts["Credential"])
    signed = tuple(parts["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(name) for name in signed):
        raise incomplete("Authorization header has a malformed 'SignedHeaders' parameter.")
    if "host" not in signed:
        raise invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                      "Authorization.")
    signature = parts["Signature"]
    if not _SIGNATURE.fullmatch(signature):
        raise incomplete("Authorization header has a malformed 'Signature' parameter.")
    amz_date, timestamp = _signing_time(request)
    if credential.date != amz_date[:8]:
        raise invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                      f"version of date from HTTP: '{credential.date}' != "
                      f"'{amz_date[:8]}', from '{amz_date}'.")
    return SigV4Authorization(credential, signed, signature, amz_date, timestamp)


PRESIGNED_MAX_EXPIRES: Final = 604800
"""The longest ``X-Amz-Expires`` AWS accepts (seven days)."""

_PRESIGNED_REQUIRED: Final = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                              "X-Amz-SignedHeaders", "X-Amz-Signature")


@dataclass(frozen=True, slots=True)
class PresignedAuthorization:
    """A parsed presigned URL (the query form of SigV4).

    :ivar auth: what was signed, as for a signed header; verify it with
        :func:`verify_signature` on :attr:`signed_request`.
    :ivar expires: ``X-Amz-Expires``, seconds; ``None`` when absent.
    :ivar security_token: ``X-Amz-Security-Token`` (temporary credentials), or ``None``.
    :ivar signed_request: the request as the signer saw it: without ``X-Amz-Signature``
        (nor, when appended after signing, ``X-Amz-Security-Token``) and without a body.
    """

    auth: SigV4Authorization
    expires: int | None
    security_token: str | None = field(repr=False)
    signed_request: HttpRequest = field(repr=False)

    @property
    def expires_at(self) -> datetime | None:
        if self.expires is None:
            return None
        return self.auth.timestamp + timedelta(seconds=self.expires)


def parse_presigned(request: HttpRequest, *, token_signed: bool = True
                    ) -> PresignedAuthorization:
    """Parse the SigV4 query parameters of a presigned URL; check their structure.

    :param token_signed: whether ``X-Amz-Security-Token`` is part of what was signed
        (most services); ``False`` for AWS IoT's device gateway, whose clients append it
        after signing.
    :raises SignatureError: no ``X-Amz-Signature`` (MissingAuthenticationToken); a
        missing, repeated or malformed parameter (IncompleteSignature); ``Host`` not
        signed, or a credential date that is not the signing date (InvalidSignature).
    """
    params: dict[str, list[str]] = {}
    kept: list[str] = []
    for item in request.raw_query.split("&") if request.raw_query else ():
        raw_key, _, raw_value = item.partition("=")
        key = unquote(raw_key)
        params.setdefault(key, []).append(unquote(raw_value))
        if key == "X-Amz-Signature" or (key == "X-Amz-Security-Token" and not token_signed):
            continue
        kept.append(item)
    if "X-Amz-Signature" not in params:
        raise missing_token()
    for name in _PRESIGNED_REQUIRED:
        if len(params.get(name, ())) != 1:
            raise incomplete(f"AWS query-string parameters must include '{name}' once.")
    if params["X-Amz-Algorithm"][0] != ALGORITHM:
        raise incomplete(f"Unsupported algorithm; only {ALGORITHM} is accepted")
    credential = _parse_credential(params["X-Amz-Credential"][0])
    signed = tuple(params["X-Amz-SignedHeaders"][0].split(";"))
    if not all(_HEADER_NAME.fullmatch(name) for name in signed):
        raise incomplete("'X-Amz-SignedHeaders' is malformed.")
    if "host" not in signed:
        raise invalid("'Host' must be a signed header of a presigned URL.")
    signature = params["X-Amz-Signature"][0]
    if not _SIGNATURE.fullmatch(signature):
        raise incomplete("'X-Amz-Signature' is malformed.")
    expires_values = params.get("X-Amz-Expires", [])
    if len(expires_values) > 1:
        raise incomplete("AWS query-string parameters must include 'X-Amz-Expires' at most "
                         "once.")
    expires: int | None = None
    if expires_values:
        text = expires_values[0]
        if not text.isdigit() or not 1 <= int(text) <= PRESIGNED_MAX_EXPIRES:
            raise incomplete("X-Amz-Expires must be a whole number of seconds from 1 to "
                             f"{PRESIGNED_MAX_EXPIRES}.")
        expires = int(text)
    amz_date = params["X-Amz-Date"][0]
    if not _AMZ_DATE.fullmatch(amz_date):
        raise incomplete("X-Amz-Date must be in the ISO-8601 basic format YYYYMMDDTHHMMSSZ.")
    try:
        timestamp = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise incomplete("X-Amz-Date is not a valid date.") from None
    if credential.date != amz_date[:8]:
        raise invalid("Date in Credential scope does not match YYYYMMDD from X-Amz-Date: "
                      f"'{credential.date}' != '{amz_date[:8]}'.")
    token = params.get("X-Amz-Security-Token")
    if token is not None and len(token) != 1:
        raise incomplete("AWS query-string parameters must include "
                         "'X-Amz-Security-Token' at most once.")
    headers = tuple((name, value) for name, value in request.headers
                    if name != "x-amz-content-sha256")
    signed_request = HttpRequest(request.method, request.raw_path, "&".join(kept), headers,
                                 b"")
    return PresignedAuthorization(
        SigV4Authorization(credential, signed, signature, amz_date, timestamp),
        expires, token[0] if token else None, signed_request)


def check_presigned_clock(presigned: PresignedAuthorization, now: datetime,
                          skew: timedelta = MAX_CLOCK_SKEW) -> None:
    """Refuse a presigned URL used after ``X-Amz-Date`` + ``X-Amz-Expires`` (without
    ``X-Amz-Expires``: more than ``skew`` after ``X-Amz-Date``), or signed more than
    ``skew`` in the future.

    :raises SignatureError: AccessDenied-like InvalidSignature ("Request has expired" /
        "not yet current").
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    auth = presigned.auth
    expires_at = presigned.expires_at
    if expires_at is None:
        check_clock(auth, now, skew)
        return
    if now > expires_at:
        raise invalid(f"Request has expired: signed at {auth.amz_date} for "
                      f"{presigned.expires} seconds")
    if auth.timestamp > now + skew:
        raise invalid(f"Signature not yet current: {auth.amz_date} is later than "
                      f"{(now + skew).astimezone(UTC).strftime(AMZ_DATE_FORMAT)}")


def check_clock(auth: SigV4Authorization, now: datetime,
                skew: timedelta = MAX_CLOCK_SKEW) -> None:
    """Refuse a request signed more than ``skew`` before or after ``now``.

    :raises SignatureError: InvalidSignature ("Signature expired" / "not yet current").
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    shown_now = now.astimezone(UTC).strftime(AMZ_DATE_FORMAT)
    minutes = int(skew.total_seconds() // 60)
    if auth.timestamp < now - skew:
        earliest = (now - skew).astimezone(UTC).strftime(AMZ_DATE_FORMAT)
        raise invalid(f"Signature expired: {auth.amz_date} is now earlier than {earliest} "
                      f"({shown_now} - {minutes} min.)")
    if auth.timestamp > now + skew:
        latest = (now + skew).astimezone(UTC).strftime(AMZ_DATE_FORMAT)
        raise invalid(f"Signature not yet current: {auth.amz_date} is still later than "
                      f"{latest} ({shown_now} + {minutes} min.)")


def payload_hash(request: HttpRequest) -> str:
    """The hex SHA-256 of the body, the value the signature covers.

    :raises SignatureError: ``x-amz-content-sha256`` is present but is not the body's
        hash (``UNSIGNED-PAYLOAD`` is not accepted either).
    """
    computed = hashlib.sha256(request.body).hexdigest()
    claimed = request.header("x-amz-content-sha256")
    if claimed is not None and claimed.strip().lower() != computed:
        if claimed.strip() == UNSIGNED_PAYLOAD:
            raise invalid("Unsigned payloads are not accepted; sign the request body")
        raise invalid("The provided 'x-amz-content-sha256' header does not match what was "
                      "computed.")
    return computed


def canonical_path(raw_path: str) -> str:
    """The canonical URI of a non-S3 request: dot and empty segments removed, then
    percent-encoded again (``%2F`` → ``%252F``)."""
    return quote(_remove_dot_segments(raw_path or "/"), safe="/~")


def canonical_query(raw_query: str) -> str:
    """The canonical query string: pairs decoded, RFC 3986-encoded, sorted."""
    if not raw_query:
        return ""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        key, _, value = item.partition("=")
        pairs.append((_encode(unquote(key)), _encode(unquote(value))))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def canonical_request(request: HttpRequest, signed_headers: Sequence[str],
                      body_hash: str) -> str:
    """The canonical request (step 1 of the theory of operation)."""
    lines = [request.method.upper(), canonical_path(request.raw_path),
             canonical_query(request.raw_query)]
    for name in signed_headers:
        values = [" ".join(value.split()) for key, value in request.headers if key == name]
        lines.append(f"{name}:{','.join(values)}")
    lines.append("")
    lines.append(";".join(signed_headers))
    lines.append(body_hash)
    return "\n".join(lines)


def string_to_sign(auth: SigV4Authorization, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{auth.amz_date}\n{auth.credential.scope}\n{digest}"


def signing_key(secret_access_key: str, scope: CredentialScope) -> bytes:
    """The derived key for ``scope`` (step 3)."""
    key = _hmac(f"AWS4{secret_access_key}".encode(), scope.date)
    for part in (scope.region, scope.service, TERMINATOR):
        key = _hmac(key, part)
    return key


def expected_signature(request: HttpRequest, auth: SigV4Authorization,
                       secret_access_key: str, *, streamed_body: bool = False) -> str:
    """The signature ``request`` should carry if signed with ``secret_access_key``.
    With ``streamed_body`` the body is not there yet: the signature covers the hash in
    ``x-amz-content-sha256``, which the receiver checks against the bytes once they are
    in (a body that is not that one is then refused).

    :raises SignatureError: a bad ``x-amz-content-sha256`` header (or none, streamed).
    """
    if streamed_body:
        claimed = (request.header("x-amz-content-sha256") or "").strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", claimed):
            raise invalid("A streamed upload must sign its body's SHA-256 in "
                          "'x-amz-content-sha256'")
        payload = claimed
    else:
        payload = payload_hash(request)
    canonical = canonical_request(request, auth.signed_headers, payload)
    key = signing_key(secret_access_key, auth.credential)
    return hmac.new(key, string_to_sign(auth, canonical).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def verify_signature(request: HttpRequest, auth: SigV4Authorization,
                     secret_access_key: str, *, streamed_body: bool = False) -> None:
    """Check the signature (constant-time comparison); ``streamed_body``: see
    :func:`expected_signature`.

    :raises SignatureError: InvalidSignature when it does not match (or a bad
        ``x-amz-content-sha256`` header).
    """
    expected = expected_signature(request, auth, secret_access_key,
                                  streamed_body=streamed_body)
    if not hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("ascii")):
        raise invalid(SIGNATURE_MISMATCH)


# -- internals ------------------------------------------------------------------------


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, plus removal of empty segments (``//``), as AWS canonicalizes."""
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


def _parse_credential(value: str) -> CredentialScope:
    parts = value.split("/")
    if len(parts) != 5 or not parts[0]:
        raise incomplete("Authorization header has a malformed 'Credential' parameter: "
                         "expected <access key id>/<date>/<region>/<service>/aws4_request.")
    key_id, date, region, service, terminator = parts
    if not _SCOPE_DATE.fullmatch(date):
        raise incomplete("Credential should be scoped to a valid date (YYYYMMDD).")
    if not region:
        raise incomplete("Credential should be scoped to a valid region.")
    if not service:
        raise incomplete("Credential should be scoped to a valid service.")
    if terminator != TERMINATOR:
        raise incomplete("Credential should be scoped with a valid terminator: "
                         f"'{TERMINATOR}', not '{terminator}'.")
    return CredentialScope(key_id, date, region, service)


def _signing_time(request: HttpRequest) -> tuple[str, datetime]:
    amz = request.header("x-amz-date")
    if amz is not None:
        amz = amz.strip()
        if not _AMZ_DATE.fullmatch(amz):
            raise incomplete("X-Amz-Date must be in the ISO-8601 basic format "
                             "YYYYMMDDTHHMMSSZ.")
        try:
            stamp = datetime.strptime(amz, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise incomplete("X-Amz-Date is not a valid date.") from None
        return amz, stamp
    date = request.header("date")
    if date is None:
        raise incomplete("Authorization header requires existence of either a "
                         "'X-Amz-Date' or a 'Date' header.")
    try:
        stamp = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise incomplete("The Date header is not a valid HTTP date.") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    stamp = stamp.astimezone(UTC)
    return stamp.strftime(AMZ_DATE_FORMAT), stamp
