"""Job documents fetched from an HTTPS server at CreateJob (``documentSource`` naming no
Bastion file).

Theory of operation
-------------------
AWS IoT reads ``documentSource`` from S3; Bastion reads its own files (``s3://`` and
``https://…/_bastion/files/…`` URLs, :class:`~bastion.files.FileService`) and, through
:class:`RemoteDocumentFetcher`, any other ``https://`` URL it can reach. The document is
fetched once, when the job (or job template) is created, and kept with it; it is then
validated like an inline document. Decisions, each a refusal the API caller sees as
``InvalidRequestException``:

* **https only.** Plain ``http://`` is refused: a job document reaches every targeted
  device and may name firmware to install; nothing on the path may change it. The server
  certificate is verified (the system's CAs, or ``[jobs] document_source_cafile``) for
  the URL's host name.
* **No private addresses by default.** The caller chooses the URL and Bastion fetches it
  from inside the network it runs in (server-side request forgery): every address the
  host name resolves to must be globally routable, unless it lies in one of
  ``[jobs] document_source_networks`` (CIDRs the operator opens, e.g. an intranet
  document server). Bastion connects to the address it checked (no second resolution
  between check and connect).
* **Bounded.** One GET, no redirects (a redirect is refused, not followed), a deadline
  for the whole exchange (``document_source_timeout``), at most
  ``document_source_max_bytes`` read (AWS's job document limit, 32 KB, by default), a
  ``200`` status and UTF-8 text.
* No credentials are sent, and a URL with user information is refused.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from ._errors import InvalidFileError

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_MAX_BYTES: Final = 32 * 1024

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class RemoteDocumentFetcher:
    """Fetches ``https://`` job documents (see the module docstring).

    :param timeout: seconds for the whole exchange (connect, TLS, request, body).
    :param max_bytes: the largest document read.
    :param cafile: a CA bundle to verify servers with; empty: the system's.
    :param networks: networks (CIDR text) whose addresses may be fetched from although
        they are not globally routable.
    :param resolver: host, port → addresses (tests; default :func:`socket.getaddrinfo`).
    :raises ValueError: a bad timeout, size or network.
    """

    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    cafile: str = ""
    networks: tuple[str, ...] = ()
    resolver: Resolver = field(default=_resolve, repr=False)
    _allowed: tuple[Network, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        allowed = tuple(ipaddress.ip_network(n, strict=False) for n in self.networks)
        object.__setattr__(self, "_allowed", allowed)

    def fetch(self, url: str) -> str:
        """The document at ``url``.

        :raises InvalidFileError: the URL is refused (not https, user information, an
            address that is not allowed), the server cannot be reached or verified in
            time, answers anything but 200, or sends more than ``max_bytes`` or text that
            is not UTF-8.
        """
        host, port, target = self._parse(url)
        address = self._address(host, port)
        deadline = time.monotonic() + self.timeout
        try:
            body = self._get(host, port, target, address, deadline)
        except (OSError, http.client.HTTPException, ssl.SSLError) as error:
            raise InvalidFileError(
                f"documentSource {url!r} could not be fetched: {error}") from None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidFileError(f"The job document at {url!r} is not UTF-8") from None

    # -- steps ------------------------------------------------------------------------------

    @staticmethod
    def _parse(url: str) -> tuple[str, int, str]:
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError:
            raise InvalidFileError(f"documentSource {url!r} is not a valid URL") from None
        if parts.scheme == "http":
            raise InvalidFileError(
                "documentSource must be an https:// URL: plain http is refused (a job "
                "document must not be alterable on its way)")
        if parts.scheme != "https" or not parts.hostname:
            raise InvalidFileError(
                f"documentSource {url!r} is neither a Bastion file nor an https:// URL")
        if parts.username is not None or parts.password is not None:
            raise InvalidFileError("documentSource must not carry user information")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return parts.hostname, port, target

    def _address(self, host: str, port: int) -> str:
        try:
            addresses = list(self.resolver(host, port))
        except OSError as error:
            raise InvalidFileError(f"documentSource host {host!r} cannot be resolved: "
                                   f"{error}") from None
        if not addresses:
            raise InvalidFileError(f"documentSource host {host!r} cannot be resolved")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not address.is_global and not any(address in n for n in self._allowed):
                raise InvalidFileError(
                    f"documentSource host {host!r} resolves to {address}, which is not a "
                    "public address; Bastion fetches from private networks only when "
                    "[jobs] document_source_networks lists them")
        return addresses[0]

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _get(self, host: str, port: int, target: str, address: str, deadline: float) -> bytes:
        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer within {self.timeout} s")
            return left

        raw = socket.create_connection((address, port), timeout=remaining())
        try:
            sock = self._context().wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        connection = http.client.HTTPSConnection(host, port, timeout=remaining())
        connection.sock = sock  # connected to the checked address, verified for ``host``
        try:
            connection.request("GET", target, headers={"Accept": "application/json"})
            sock.settimeout(remaining())
            response = connection.getresponse()
            if response.status != 200:
                raise http.client.HTTPException(
                    f"HTTP {response.status} {response.reason}"
                    + (" (redirects are not followed)" if 300 <= response.status < 400
                       else ""))
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                raise InvalidFileError(
                    f"The job document is {length} bytes; at most {self.max_bytes} are read")
            chunks: list[bytes] = []
            size = 0
            while True:
                sock.settimeout(remaining())
                chunk = response.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise InvalidFileError(
                        f"The job document exceeds {self.max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            connection.close()
