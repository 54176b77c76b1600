"""The health probes: ``/_bastion/health/live`` and ``/ready`` answer without SigV4 and
leave no trail record; ``ready`` lists its checks. (In a cluster, ``ready`` fails while
NATS is away: tests/integration/cluster.)"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from .conftest import ApiBastion


def _get(api: ApiBastion, path: str, method: str = "GET") -> tuple[int, dict[str, object]]:
    context = ssl.create_default_context(cafile=str(api.verify))
    request = urllib.request.Request(api.url + path, method=method)
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else {}


def test_live_and_ready_answer_without_credentials_or_trail(api_bastion: ApiBastion) -> None:
    before = len(api_bastion.trail.records)
    assert _get(api_bastion, "/_bastion/health/live") == (200, {"status": "live"})
    status, body = _get(api_bastion, "/_bastion/health/ready")
    assert status == 200
    assert body == {"status": "ready", "checks": {"database": "ok", "mqtt": "ok"}}
    assert len(api_bastion.trail.records) == before  # probes are not API calls


def test_other_health_paths_and_methods_are_refused(api_bastion: ApiBastion) -> None:
    assert _get(api_bastion, "/_bastion/health/secrets")[0] == 404
    # Anything but GET goes through SigV4 as any other request, and is refused unsigned.
    assert _get(api_bastion, "/_bastion/health/ready", method="POST")[0] == 403
