"""RemoteDocumentFetcher's refusals that need no HTTPS server: addresses, URLs, deadline."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bastion.files import InvalidFileError, RemoteDocumentFetcher


def resolving_to(*addresses: str) -> RemoteDocumentFetcher:
    return RemoteDocumentFetcher(resolver=lambda host, port: list(addresses))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidFileError, match="not a public address"):
        resolving_to(address).fetch("https://docs.example.com/job.json")


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(InvalidFileError, match="not a public address"):
        resolving_to("93.184.216.34", "10.0.0.1").fetch("https://docs.example.com/job.json")


@pytest.mark.parametrize(("url", "words"), [
    ("http://docs.example.com/job.json", "plain http is refused"),
    ("ftp://docs.example.com/job.json", "neither a Bastion file nor an https"),
    ("https://u:p@docs.example.com/job.json", "user information"),
    ("https://docs.example.com:99999/job.json", "not a valid URL"),
])
def test_bad_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(InvalidFileError, match=words):
        resolving_to("93.184.216.34").fetch(url)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener on loopback that accepts and never answers (no TLS handshake)."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_the_deadline_bounds_a_server_that_never_answers(silent_server: int) -> None:
    fetcher = RemoteDocumentFetcher(timeout=0.5, networks=("127.0.0.0/8",),
                                    resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(InvalidFileError, match="could not be fetched"):  # a hang fails by
        fetcher.fetch(f"https://docs.internal:{silent_server}/job.json")  # pytest's timeout


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RemoteDocumentFetcher(timeout=0)
    with pytest.raises(ValueError):
        RemoteDocumentFetcher(networks=("not a network",))
