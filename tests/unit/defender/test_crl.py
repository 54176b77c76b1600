"""CRL sources: registered from a file or a URL, verified against the issuer, refreshed
on their schedule; a failed refresh keeps the previous CRL."""

from __future__ import annotations

import http.server
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.defender.audit import CrlRegistry, InvalidRequestError, ResourceNotFoundError
from bastion.store import Store
from support.audit_fleet import NOW, Authority, _Writer, crl_pem, make_ca
from support.clock import ManualClock

RNG = random.Random(3)


@pytest.fixture
def root(store: Store) -> Authority:
    ca = make_ca("CRL Root", rng=RNG, not_before=NOW - timedelta(days=10),
                 not_after=NOW + timedelta(days=900))
    _Writer(store, NOW).ca(ca, created=NOW)
    return ca


class _Served:
    def __init__(self) -> None:
        self.body = b""
        self.status = 200


@pytest.fixture
def served() -> Iterator[tuple[_Served, str]]:
    state = _Served()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/root.crl"
    finally:
        server.shutdown()
        server.server_close()


def test_file_source(store: Store, root: Authority, tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "root.crl"
    path.write_bytes(crl_pem(root, [5, 7], now=NOW))
    registry = CrlRegistry(store, clock=clock)
    source = registry.register(str(path), ca_certificate_id=root.ident)
    assert (source.revoked_count, source.last_error) == (2, None)
    index = registry.index()
    assert index.revoked_by(root.ident, 7) and not index.revoked_by(root.ident, 6)
    assert [s.issuer_certificate_id for s in registry.sources()] == [root.ident]
    registry.unregister(root.ident)
    assert not registry.index()
    with pytest.raises(ResourceNotFoundError):
        registry.unregister(root.ident)


def test_forged_or_foreign_crls_are_refused(store: Store, root: Authority, tmp_path: Path,
                                            clock: ManualClock) -> None:
    other = make_ca("CRL Root", rng=RNG, not_before=NOW - timedelta(days=1),
                    not_after=NOW + timedelta(days=9))  # same name, another key
    forged = tmp_path / "forged.crl"
    forged.write_bytes(crl_pem(other, [5], now=NOW))
    registry = CrlRegistry(store, clock=clock)
    with pytest.raises(InvalidRequestError, match="signature"):
        registry.register(str(forged), ca_certificate_id=root.ident)
    stranger = make_ca("Somebody Else", rng=RNG, not_before=NOW - timedelta(days=1),
                       not_after=NOW + timedelta(days=9))
    foreign = tmp_path / "foreign.crl"
    foreign.write_bytes(crl_pem(stranger, [5], now=NOW))
    with pytest.raises(InvalidRequestError, match="issued by"):
        registry.register(str(foreign), ca_certificate_id=root.ident)
    with pytest.raises(ResourceNotFoundError):
        registry.register(str(foreign), ca_certificate_id="ab" * 32)
    with pytest.raises(InvalidRequestError):
        registry.register(str(tmp_path / "missing.crl"), ca_certificate_id=root.ident)
    assert registry.sources() == []
    # An issuer Bastion does not hold: given by its certificate.
    source = registry.register(str(foreign), issuer_certificate_pem=stranger.pem)
    assert source.issuer_certificate_id == stranger.ident


def test_url_source_refreshed_on_schedule(store: Store, root: Authority,
                                          served: tuple[_Served, str],
                                          clock: ManualClock) -> None:
    state, url = served
    state.body = crl_pem(root, [1], now=NOW)
    registry = CrlRegistry(store, clock=clock, refresh_interval=timedelta(hours=1))
    registry.register(url, ca_certificate_id=root.ident)
    assert registry.next_due() == NOW + timedelta(hours=1)
    state.body = crl_pem(root, [1, 2], now=NOW)
    assert registry.refresh(only_due=True) == 0  # not due yet
    assert not registry.index().revoked_by(root.ident, 2)
    clock.set(NOW + timedelta(hours=1))
    assert registry.refresh(only_due=True) == 1
    assert registry.index().revoked_by(root.ident, 2)
    # The server fails: the previous CRL stays, the error is recorded.
    state.status, state.body = 404, b""
    clock.set(NOW + timedelta(hours=2))
    assert registry.refresh() == 0
    (source,) = registry.sources()
    assert source.last_error and "404" in source.last_error
    assert source.revoked_count == 2 and registry.index().revoked_by(root.ident, 2)
