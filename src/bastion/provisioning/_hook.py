"""Pre-provisioning hooks: an HTTP(S) endpoint asked before every RegisterThing.

Theory of operation
-------------------
Where AWS IoT calls a Lambda function, Bastion POSTs the same input object
(:func:`hook_input`: ``claimCertificateId``, ``certificateId``, ``certificatePem``,
``templateArn``, ``clientId``, ``parameters``) as JSON to the URL a template names in
``preProvisioningHook.targetArn``, and reads back AWS's output object
(``{"allowProvisioning": true, "parameterOverrides": {…}}``).

The decision (:func:`decide`) is **deny by default**: the request is allowed only when the
hook answered in time with a 2xx status and a JSON object whose ``allowProvisioning`` is
``true`` (the JSON boolean, or the string ``"true"`` that AWS also documents). No answer,
a connection error, a timeout (5 s by default, as AWS), a non-2xx status, a body that is
not such an object, or overrides that are not string values all deny.

:class:`HttpHookClient` does the POST with the standard library: HTTPS verifies the
server's certificate and host name (system trust store, or a CA bundle), redirects are
not followed, the answer is read up to 64 KiB, and the whole exchange has one deadline
(the call runs in a small worker pool and is abandoned when the deadline passes).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from ._errors import InvalidRequestError

log = logging.getLogger("bastion.provisioning")

HOOK_TIMEOUT: Final = 5.0
"""Seconds a hook has to answer (AWS's Lambda limit for pre-provisioning hooks)."""

DEFAULT_PAYLOAD_VERSION: Final = "2020-04-01"
MAX_ANSWER_BYTES: Final = 64 * 1024
_PAYLOAD_VERSION: Final = re.compile(r"[0-9-]{10,32}")


@dataclass(frozen=True, slots=True)
class PreProvisioningHook:
    """A template's hook. ``target_arn`` holds the hook's ``http(s)://`` URL (AWS's field
    name is kept so that boto3 and the CLI send it unchanged)."""

    target_arn: str
    payload_version: str = DEFAULT_PAYLOAD_VERSION

    def as_aws(self) -> dict[str, str]:
        return {"targetArn": self.target_arn, "payloadVersion": self.payload_version}


def parse_hook(value: object) -> PreProvisioningHook:
    """Validate a ``preProvisioningHook`` given as AWS's mapping or a
    :class:`PreProvisioningHook`.

    :raises InvalidRequestError: no ``targetArn``, not an ``http``/``https`` URL with a
        host, or a ``payloadVersion`` that is not 10-32 of ``[0-9-]``.
    """
    target: object
    version: object
    if isinstance(value, PreProvisioningHook):
        target, version = value.target_arn, value.payload_version
    elif isinstance(value, Mapping):
        target = value.get("targetArn")
        version = value.get("payloadVersion") or DEFAULT_PAYLOAD_VERSION
    else:
        raise InvalidRequestError("preProvisioningHook must be an object with targetArn")
    if not isinstance(target, str) or not target:
        raise InvalidRequestError("preProvisioningHook.targetArn is required")
    if len(target) > 2048:
        raise InvalidRequestError("preProvisioningHook.targetArn is longer than 2048 characters")
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(
            "preProvisioningHook.targetArn must be the http:// or https:// URL of the hook "
            "(Bastion calls an HTTP endpoint where AWS calls a Lambda function)")
    if not isinstance(version, str) or not _PAYLOAD_VERSION.fullmatch(version):
        raise InvalidRequestError("preProvisioningHook.payloadVersion must be 10 to 32 of "
                                  "0-9 and -, like 2020-04-01")
    return PreProvisioningHook(target, version)


def hook_input(*, claim_certificate_id: str, certificate_id: str, certificate_pem: str,
               template_arn: str, client_id: str, parameters: Mapping[str, str]
               ) -> dict[str, Any]:
    """The object AWS IoT sends to a pre-provisioning hook."""
    return {
        "claimCertificateId": claim_certificate_id,
        "certificateId": certificate_id,
        "certificatePem": certificate_pem,
        "templateArn": template_arn,
        "clientId": client_id,
        "parameters": dict(parameters),
    }


@dataclass(frozen=True, slots=True)
class HookDecision:
    """The outcome of asking a hook. ``reason`` is for the log (never sent to devices)."""

    allowed: bool
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""


def deny(reason: str) -> HookDecision:
    return HookDecision(False, {}, reason)


def decide(status: int, body: bytes) -> HookDecision:
    """Read a hook's HTTP answer; anything but a clear allow is a deny (pure).

    :param status: the HTTP status of the answer.
    :param body: its body (already size-limited).
    """
    if not 200 <= status < 300:
        return deny(f"the hook answered HTTP {status}")
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return deny("the hook's answer is not JSON")
    if not isinstance(answer, dict):
        return deny("the hook's answer is not a JSON object")
    allow = answer.get("allowProvisioning")
    if not (allow is True or isinstance(allow, str) and allow.lower() == "true"):
        return deny("the hook did not allow provisioning")
    overrides = answer.get("parameterOverrides")
    if overrides is None:
        return HookDecision(True, {}, "allowed")
    if not isinstance(overrides, dict) or not all(
            isinstance(key, str) and key and isinstance(value, str)
            for key, value in overrides.items()):
        return deny("the hook's parameterOverrides are not an object of string values")
    return HookDecision(True, dict(overrides), "allowed")


class HookCallError(Exception):
    """The hook could not be asked or did not answer (connection, TLS, timeout)."""


class HookClient(Protocol):
    """Posts a hook input and returns the HTTP status and body of the answer."""

    def post(self, url: str, payload: bytes, timeout: float) -> tuple[int, bytes]:
        """:raises HookCallError: no answer within ``timeout`` seconds, or no answer at all."""
        ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        return None  # a 3xx is answered as is (and denies)


class HttpHookClient:
    """The standard-library HTTP(S) client of hooks.

    :param cafile: a CA bundle to verify HTTPS hooks with (default: the system's).
    :param max_workers: concurrent hook calls; further calls wait for a worker within
        their own deadline.
    """

    def __init__(self, *, cafile: str | None = None, max_workers: int = 16) -> None:
        self._tls = ssl.create_default_context(cafile=cafile)
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self._tls), _NoRedirects())
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="bastion-hook")

    def post(self, url: str, payload: bytes, timeout: float) -> tuple[int, bytes]:
        future = self._pool.submit(self._post, url, payload, timeout)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise HookCallError(f"no answer within {timeout:g} s") from None

    def _post(self, url: str, payload: bytes, timeout: float) -> tuple[int, bytes]:
        request = urllib.request.Request(
            url, data=payload, method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "User-Agent": "Bastion-PreProvisioningHook/1"})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return int(response.status), response.read(MAX_ANSWER_BYTES + 1)[
                    :MAX_ANSWER_BYTES]
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code), b""
        except (OSError, ValueError, urllib.error.URLError) as exc:
            raise HookCallError(str(getattr(exc, "reason", exc))) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def ask_hook(client: HookClient, hook: PreProvisioningHook, payload: Mapping[str, Any],
             timeout: float) -> HookDecision:
    """POST ``payload`` to ``hook`` and decide; every failure denies."""
    body = json.dumps(payload).encode("utf-8")
    try:
        status, answer = client.post(hook.target_arn, body, timeout)
    except HookCallError as exc:
        decision = deny(f"the hook did not answer: {exc}")
    except Exception as exc:
        log.exception("pre-provisioning hook client failed")
        decision = deny(f"the hook client failed: {type(exc).__name__}")
    else:
        decision = decide(status, answer)
    return decision
