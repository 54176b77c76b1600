"""What a handler sees: the caller, the registry services for the request's region, and
the running gateway (broker, logging options, settings).

In normal mode every request uses the control plane's services, whose ARNs name the
configured region and account. In emulator mode the region comes from each request's
SigV4 scope, as in AWS: a :class:`ServiceDirectory` keeps one set of services per region
over the same store (ARNs then name that region, and ARNs a request gives must name it;
the data is shared): the registry (:attr:`OperationContext.services`) and the other
services that deal in ARNs (:attr:`OperationContext.regional`: jobs, rules, provisioning,
streams, mitigation actions).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bastion.broker import Broker
from bastion.config import ApiConfig
from bastion.controlplane import ControlPlane
from bastion.datadir import DataDir
from bastion.logging_options import LoggingOptions
from bastion.services import RegionalServices, Services

from ._auth import Caller
from ._errors import ApiError

ServiceSet = ControlPlane
"""The registry services of one region and account."""


class ServiceDirectory:
    """The services for a request's region: always the configured one's in normal mode;
    in emulator mode, the registry services whose ARNs name the SigV4 scope's region
    (:class:`bastion.services.Regions`).
    """

    __slots__ = ("_per_region", "_services")

    def __init__(self, services: Services, *, per_region: bool) -> None:
        self._services = services
        self._per_region = per_region

    @property
    def default(self) -> ServiceSet:
        return self._services.plane

    @property
    def default_regional(self) -> RegionalServices:
        return self._services.regions.services_for(self._services.plane.account.region)

    def regional_for(self, region: str) -> RegionalServices:
        """The regional services of ``region`` (emulator mode) or the configured region's.

        :raises ApiError: emulator mode and ``region`` is not an AWS region name.
        """
        if not self._per_region:
            return self.default_regional
        try:
            return self._services.regions.services_for(region)
        except ValueError:
            raise ApiError("InvalidSignatureException", 403,
                           "Credential should be scoped to a valid region.") from None

    def for_region(self, region: str) -> ServiceSet:
        """The services whose ARNs name ``region`` (emulator mode) or the configured one.

        :raises ApiError: emulator mode and ``region`` is not an AWS region name.
        """
        if not self._per_region:
            return self.default
        try:
            return self._services.regions.plane_for(region)
        except ValueError:
            raise ApiError("InvalidSignatureException", 403,
                           "Credential should be scoped to a valid region.") from None


@dataclass(frozen=True, slots=True)
class Gateway:
    """The running Bastion as the API's handlers use it.

    :ivar broker: the message path (iot-data publish, retained messages, sessions).
    :ivar loop: the event loop the broker runs on (and the API with it).
    :ivar services: every domain service (the one directory the composition root built).
    """

    broker: Broker
    loop: asyncio.AbstractEventLoop
    services: Services
    config: ApiConfig

    @property
    def plane(self) -> ControlPlane:
        return self.services.plane

    @property
    def datadir(self) -> DataDir:
        return self.services.datadir

    @property
    def logging_options(self) -> LoggingOptions:
        return self.services.logging_options


@dataclass(frozen=True, slots=True)
class OperationContext:
    """Everything a handler gets besides its parameters.

    :ivar services: the registry services of the request's region.
    :ivar host: the host name the client addressed (the ``Host`` header, without port).
    :ivar host_header: the ``Host`` header as sent (with the port, if any).
    :ivar regional: the other services of the request's region (jobs, rules, …).
    """

    caller: Caller
    services: ServiceSet
    gateway: Gateway
    host: str
    host_header: str
    regional: RegionalServices
