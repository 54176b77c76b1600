"""``GET /metrics``: the Prometheus text exposition, for the holder of the scrape token.

The API's application hands this endpoint every ``GET /metrics`` before SigV4 (as it
does the health probes); the endpoint decides. Without an ``Authorization: Bearer``
header, or with another token, the answer is ``401`` with a ``WWW-Authenticate``
challenge and a one-line reason, and nothing of the fleet; the API trails it as a denied
``bastion:ScrapeMetrics``. With the token, the answer is every metric of
:class:`~._collector.FleetCollector` in the text format 0.0.4 (the one every Prometheus
version reads). A successful scrape is not trailed: a scraper calls every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import CollectorRegistry

from ._collector import FleetCollector
from ._token import ScrapeToken, ensure_scrape_token

METRICS_PATH: Final = "/metrics"
_CHALLENGE: Final = 'Bearer realm="bastion-metrics"'
_TEXT: Final = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ScrapeAnswer:
    """One answer to ``GET /metrics``.

    :ivar refusal: why the scrape was refused (``None``: served), for the trail.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    refusal: str | None = None


class MetricsEndpoint:
    """The scrape endpoint of one node.

    :param token_path: the scrape token's file (created by :meth:`load` when missing).
    :param collector: what a scrape reports.
    """

    path: Final = METRICS_PATH

    def __init__(self, token_path: Path, collector: FleetCollector) -> None:
        self.token_path = token_path
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(collector)
        self._token: ScrapeToken | None = None

    def load(self) -> None:
        """Read the scrape token, creating its file first when missing (blocking: call
        it from a worker thread before serving).

        :raises ScrapeTokenError: the file is exposed to others or holds no token.
        :raises OSError: the file cannot be read or created.
        """
        self._token, _ = ensure_scrape_token(self.token_path)

    def answer(self, authorization: str | None) -> ScrapeAnswer:
        """Answer one scrape given its ``Authorization`` header (on the event loop).

        Refused (401) when no token is loaded yet, the header is missing, or it does not
        present the token as a bearer token.
        """
        token = self._token
        if authorization is None:
            return _refused("no bearer token: send 'Authorization: Bearer <token>' with "
                            "the token of the server's metrics token file", _CHALLENGE)
        if token is None or not token.admits(authorization):
            return _refused("the bearer token is not this server's metrics token",
                            f'{_CHALLENGE}, error="invalid_token"')
        return ScrapeAnswer(200, (("content-type", CONTENT_TYPE_PLAIN_0_0_4),
                                  ("cache-control", "no-store")),
                            generate_latest(self._registry))


def _refused(reason: str, challenge: str) -> ScrapeAnswer:
    return ScrapeAnswer(401, (("content-type", _TEXT), ("www-authenticate", challenge),
                              ("cache-control", "no-store")),
                        f"401 Unauthorized: {reason} (docs/metrics.md)\n".encode(), reason)
