"""What a handler sees: the caller, the registry services for the request's region, and
the running gateway (broker, logging options, settings).

In normal mode every request uses the control plane's services, whose ARNs name the
configured region and account. In emulator mode the region comes from each request's
SigV4 scope, as in AWS: a :class:`ServiceDirectory` keeps one set of services per region
over the same store (ARNs then name that region; the data is shared).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bastion.account import Account
from bastion.broker import Broker
from bastion.config import ApiConfig
from bastion.controlplane import ControlPlane
from bastion.datadir import DataDir
from bastion.registry import (
    CertificateAuthority,
    IdentityService,
    PolicyService,
    RegistryService,
)

from ._auth import Caller
from ._errors import ApiError
from ._logging_options import LoggingOptions

EventSink = Callable[[object], None]


@dataclass(frozen=True, slots=True)
class ServiceSet:
    """The registry services of one region and account."""

    account: Account
    registry: RegistryService
    identity: IdentityService
    policies: PolicyService


class ServiceDirectory:
    """The services for a request's region: always the plane's in normal mode; one set
    per region (same store, ARNs of that region) in emulator mode.

    :param publish: the event sink the plane's services use (live enforcement).
    :param datadir: where emulator-mode services find Bastion's CA (loaded once).
    """

    __slots__ = (
        "_authority",
        "_datadir",
        "_lock",
        "_per_region",
        "_plane",
        "_publish",
        "_sets",
    )

    def __init__(self, plane: ControlPlane, *, per_region: bool, datadir: DataDir,
                 publish: EventSink | None) -> None:
        self._plane = plane
        self._per_region = per_region
        self._datadir = datadir
        self._publish = publish
        self._lock = threading.Lock()
        self._authority: CertificateAuthority | None = None
        self._sets: dict[str, ServiceSet] = {}

    @property
    def default(self) -> ServiceSet:
        plane = self._plane
        return ServiceSet(plane.account, plane.registry, plane.identity, plane.policies)

    def for_region(self, region: str) -> ServiceSet:
        """The services whose ARNs name ``region`` (emulator mode) or the configured one.

        :raises ApiError: emulator mode and ``region`` is not an AWS region name.
        """
        if not self._per_region or region == self._plane.account.region:
            return self.default
        with self._lock:
            found = self._sets.get(region)
            if found is not None:
                return found
            try:
                account = Account(region, self._plane.account.account_id)
            except ValueError:
                raise ApiError("InvalidSignatureException", 403,
                               "Credential should be scoped to a valid region.") from None
            if self._authority is None:
                self._authority = CertificateAuthority.from_datadir(self._datadir)
            store = self._plane.store
            services = ServiceSet(
                account,
                RegistryService(store, account=account, publish=self._publish),
                IdentityService(store, authority=self._authority, account=account,
                                publish=self._publish),
                PolicyService(store, account=account, publish=self._publish),
            )
            self._sets[region] = services
            return services


@dataclass(frozen=True, slots=True)
class Gateway:
    """The running Bastion as the API's handlers use it.

    :ivar loop: the event loop the broker runs on (and the API with it).
    """

    broker: Broker
    loop: asyncio.AbstractEventLoop
    plane: ControlPlane
    datadir: DataDir
    config: ApiConfig
    logging_options: LoggingOptions


@dataclass(frozen=True, slots=True)
class OperationContext:
    """Everything a handler gets besides its parameters.

    :ivar host: the host name the client addressed (the ``Host`` header, without port).
    :ivar host_header: the ``Host`` header as sent (with the port, if any).
    """

    caller: Caller
    services: ServiceSet
    gateway: Gateway
    host: str
    host_header: str
