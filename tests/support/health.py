"""Bastion's health probes, asked as a load balancer asks them (HTTPS, no credentials)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def probe(port: int, ca: Path | str, kind: str = "ready", method: str = "GET"
          ) -> tuple[int, dict[str, Any]]:
    """``/_bastion/health/<kind>`` on the API at ``port``: (status, JSON body)."""
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/_bastion/health/{kind}", method=method)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else {}
