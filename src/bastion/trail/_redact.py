"""Redaction: what of a request's parameters may be written to the trail.

Theory of operation: :func:`redact` returns a JSON-safe copy of the parameters in which

* the value of every key whose name looks secret is replaced by ``"[REDACTED]"`` —
  whatever it holds, a string, a blob or a whole structure. A name looks secret when,
  lowercased and stripped of everything but letters and digits, it contains
  ``privatekey``, ``secret``, ``password``, ``passwd``, ``passphrase``, ``token``,
  ``keypair``, ``authorization``, ``cookie``, ``apikey``, ``keystore``, ``sessionkey``
  or ``credentials``. Pagination's ``nextToken`` is kept (it is a cursor, not a
  credential). This covers the AWS models' members (``tokenSignature``, ``secretKey``,
  ``mqttContext.password``, ``salesforce.token``, …) and free-form maps (a Kafka
  action's ``sasl.plain.password``, an HTTP header ``Authorization``);
* in a ``{"key"|"name": …, "value": …}`` pair (HTTP action headers), the value is
  redacted when the key looks secret;
* a certificate signing request (``certificateSigningRequest``, or any string holding a
  PEM ``CERTIFICATE REQUEST``) is replaced by its length and SHA-256 fingerprint;
* any string holding a PEM ``PRIVATE KEY`` block is redacted wherever it appears;
* ``TestInvokeAuthorizer`` keeps only ``authorizerName`` and ``tlsContext``: its other
  inputs are the credentials a custom authorizer checks;
* bytes (e.g. an ``iot-data`` payload) are replaced by their length and fingerprint;
  datetimes become ISO 8601 text; objects JSON does not know become their type name;
  strings are cut at 16 KiB and lists at 1,000 items, so one request cannot bloat the
  trail.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any, Final

REDACTED: Final = "[REDACTED]"

MAX_STRING: Final = 16 * 1024
MAX_ITEMS: Final = 1000
MAX_DEPTH: Final = 32

_SECRET_WORDS: Final = (
    "privatekey",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "keypair",
    "authorization",
    "cookie",
    "apikey",
    "keystore",
    "sessionkey",
    "credentials",
)
_NOT_SECRET: Final = frozenset({"nexttoken"})
_CSR_NAMES: Final = frozenset({"certificatesigningrequest", "csr"})
_PAIR_KEYS: Final = ("key", "name")

_PRIVATE_KEY_PEM: Final = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----")
_CSR_PEM: Final = re.compile(r"-----BEGIN (NEW )?CERTIFICATE REQUEST-----")

# Operations whose inputs are credentials by nature: only these members are kept.
_KEEP_ONLY: Final[Mapping[tuple[str, str], frozenset[str]]] = {
    ("iot", "TestInvokeAuthorizer"): frozenset({"authorizerName", "tlsContext"}),
}


def redact(service: str, operation: str, parameters: Mapping[str, object]) -> dict[str, Any]:
    """A JSON-safe copy of ``parameters`` with secrets removed (see the module docstring).

    :param service: ``iot``, ``iot-data``, ``iot-jobs-data`` or ``bastion``.
    :param operation: the operation name, e.g. ``CreateCertificateFromCsr``.
    :raises TypeError: ``parameters`` is not a mapping.
    """
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping, not {type(parameters).__name__}")
    keep_only = _KEEP_ONLY.get((service, operation))
    result: dict[str, Any] = {}
    for key, value in parameters.items():
        name = str(key)
        if keep_only is not None and name not in keep_only:
            result[name] = REDACTED
        else:
            result[name] = _member(name, value, 1)
    return _pairs(result)


def is_secret_name(name: str) -> bool:
    """Whether a member or map key named ``name`` holds a secret."""
    normalized = _normalize(name)
    if normalized in _NOT_SECRET:
        return False
    return any(word in normalized for word in _SECRET_WORDS)


def _normalize(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _member(name: str, value: object, depth: int) -> Any:
    if is_secret_name(name):
        return REDACTED
    if _normalize(name) in _CSR_NAMES and value is not None:
        return _fingerprint("CSR", value)
    return _value(value, depth)


def _value(value: object, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return "[TOO DEEP]"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Enum):
        return _value(value.value, depth + 1)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _fingerprint("bytes", bytes(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        items = list(value.items())
        mapped = {str(k): _member(str(k), v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            mapped["[TRUNCATED]"] = f"{len(items) - MAX_ITEMS} more entries"
        return _pairs(mapped)
    if isinstance(value, list | tuple | set | frozenset):
        listed = list(value)
        out = [_value(item, depth + 1) for item in listed[:MAX_ITEMS]]
        if len(listed) > MAX_ITEMS:
            out.append(f"[TRUNCATED: {len(listed) - MAX_ITEMS} more items]")
        return out
    return f"<{type(value).__name__}>"


def _string(text: str) -> str:
    if _PRIVATE_KEY_PEM.search(text):
        return REDACTED
    if _CSR_PEM.search(text):
        return _fingerprint("CSR", text)
    if len(text) > MAX_STRING:
        return text[:MAX_STRING] + f"[TRUNCATED: {len(text) - MAX_STRING} more characters]"
    return text


def _pairs(mapping: dict[str, Any]) -> dict[str, Any]:
    """Redact the value of a ``{"key": <secret name>, "value": …}`` pair."""
    if "value" in mapping:
        for pair_key in _PAIR_KEYS:
            label = mapping.get(pair_key)
            if isinstance(label, str) and is_secret_name(label):
                mapping["value"] = REDACTED
                break
    return mapping


def _fingerprint(kind: str, value: object) -> str:
    if isinstance(value, str):
        data, unit = value.encode("utf-8", "surrogatepass"), "characters"
        size = len(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        data, unit = bytes(value), "bytes"
        size = len(data)
    else:
        return REDACTED
    return f"[{kind}: {size} {unit}, sha256 {hashlib.sha256(data).hexdigest()}]"
