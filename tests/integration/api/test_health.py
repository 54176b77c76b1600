"""The health probes: ``/_bastion/health/live`` and ``/ready`` answer without SigV4 and
leave no trail record; ``ready`` lists its checks. (In a cluster, ``ready`` fails while
NATS is away: tests/integration/cluster.)"""

from __future__ import annotations

from support.health import probe

from .conftest import ApiBastion


def _get(api: ApiBastion, path: str, method: str = "GET") -> tuple[int, dict[str, object]]:
    port = int(api.url.rsplit(":", 1)[1])
    return probe(port, api.verify if isinstance(api.verify, str) else "", path.rsplit("/", 1)[1],
                 method)


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
