"""AWS's own service models (botocore's ``service-2`` files) and request routing.

The API serves five rest-json services and one JSON-protocol service. Each is known by
its botocore name (``iot``, ``iot-data``, ``iot-jobs-data``, ``signer``, ``guardduty``,
``acm``) and by the SigV4 signing name a client puts in its credential scope (``iot``,
``iotdata``, ``iot-jobs-data``, ``signer``, ``guardduty``, ``acm``). ``iot`` and ``iot-data``
share paths (``/things/{thingName}/…``), so the service is chosen from the *signed*
scope, and only then the operation from the method and path.

A route comes from an operation's ``http.requestUri``: literal segments, labels
(``{thingName}``, one segment, percent-decoded) and at most one greedy label
(``{arn+}``, the rest of the path). A literal query part (``/x?y`` or ``/x?y=z``) must be
present in the request. When several routes match a path, the one with more literal
segments wins.

A JSON-protocol service (``acm``: ``awsJson1_1``) has one path, ``POST /``; the
operation is the ``X-Amz-Target`` header, ``<targetPrefix>.<Operation>``
(``CertificateManager.ImportCertificate``), and every input member is in the JSON body.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

from ._errors import ApiError

SERVICE_NAMES: Final = ("iot", "iot-data", "iot-jobs-data", "signer", "guardduty", "acm")


@dataclass(frozen=True, slots=True)
class _Segment:
    text: str          # the literal, or the label name
    is_label: bool
    greedy: bool = False


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    segments: tuple[_Segment, ...]
    query: tuple[tuple[str, str | None], ...]
    operation: OperationModel

    @property
    def specificity(self) -> tuple[int, int]:
        literals = sum(1 for s in self.segments if not s.is_label)
        greedy = any(s.greedy for s in self.segments)
        return (literals, 0 if greedy else 1)

    def match_path(self, raw_segments: list[str]) -> dict[str, str] | None:
        labels: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.greedy:
                rest = raw_segments[index:]
                if not rest or not all(rest):
                    return None
                labels[segment.text] = unquote("/".join(rest))
                return labels
            if index >= len(raw_segments):
                return None
            raw = raw_segments[index]
            if segment.is_label:
                if not raw:
                    return None
                labels[segment.text] = unquote(raw)
            elif raw != segment.text and unquote(raw) != segment.text:
                return None
        return labels if len(raw_segments) == len(self.segments) else None

    def match_query(self, query: Mapping[str, list[str]]) -> bool:
        for key, value in self.query:
            if key not in query:
                return False
            if value is not None and value not in query[key]:
                return False
        return True


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The operation a request addresses, with its path labels (decoded)."""

    operation: OperationModel
    labels: Mapping[str, str]


class Router:
    """Method + path → operation, for one service."""

    __slots__ = ("_routes", "_service")

    def __init__(self, service: str, operations: Iterable[OperationModel]) -> None:
        self._service = service
        routes = [_parse_route(op) for op in operations]
        routes.sort(key=lambda route: route.specificity, reverse=True)
        self._routes = tuple(routes)

    def match(self, method: str, raw_path: str, query: Mapping[str, list[str]]) -> RouteMatch:
        """The operation for ``method`` and ``raw_path`` (as sent, percent-encoded).

        :raises ApiError: 404 ``UnknownOperationException`` when no operation has this
            path; 405 ``MethodNotAllowedException`` when some do, with other methods.
        """
        raw_segments = _split(raw_path)
        path_matched = False
        for route in self._routes:
            labels = route.match_path(raw_segments)
            if labels is None or not route.match_query(query):
                continue
            if route.method != method.upper():
                path_matched = True
                continue
            return RouteMatch(route.operation, labels)
        if path_matched:
            raise ApiError("MethodNotAllowedException", 405,
                           f"The method {method} is not allowed on {raw_path}")
        raise ApiError("UnknownOperationException", 404,
                       f"No {self._service} operation matches {method} {raw_path}")


@dataclass(frozen=True, slots=True)
class ServiceApi:
    """One service: its model, its router, and its names."""

    name: str
    signing_name: str
    model: ServiceModel
    router: Router

    def operation(self, name: str) -> OperationModel:
        return self.model.operation_model(name)

    @property
    def json_protocol(self) -> bool:
        """Whether the service speaks AWS's JSON protocol (operation in ``X-Amz-Target``)."""
        return self.model.protocol == "json"

    def match(self, method: str, raw_path: str, query: Mapping[str, list[str]],
              target: str | None) -> RouteMatch:
        """The operation a request addresses: by method and path (rest-json), or by the
        ``X-Amz-Target`` header (JSON protocol).

        :raises ApiError: see :meth:`Router.match`; for the JSON protocol, 404
            ``UnknownOperationException`` for another path or an unknown target, 405
            ``MethodNotAllowedException`` for another method than POST.
        """
        if not self.json_protocol:
            return self.router.match(method, raw_path, query)
        if raw_path != "/":
            raise ApiError("UnknownOperationException", 404,
                           f"No {self.name} operation matches {method} {raw_path}")
        if method.upper() != "POST":
            raise ApiError("MethodNotAllowedException", 405,
                           f"The method {method} is not allowed on {raw_path}")
        prefix = self.model.metadata.get("targetPrefix", "")
        name = (target or "").removeprefix(f"{prefix}.")
        if not target or name == target or name not in self.model.operation_names:
            raise ApiError("UnknownOperationException", 404,
                           f"No {self.name} operation is named by X-Amz-Target {target!r}")
        return RouteMatch(self.model.operation_model(name), {})

    @property
    def operation_names(self) -> list[str]:
        return list(self.model.operation_names)


@dataclass(frozen=True, slots=True)
class Catalog:
    """The served services, by botocore name and by signing name."""

    services: Mapping[str, ServiceApi]

    def by_signing_name(self, signing_name: str) -> ServiceApi | None:
        for service in self.services.values():
            if service.signing_name == signing_name:
                return service
        return None

    @property
    def signing_names(self) -> tuple[str, ...]:
        return tuple(service.signing_name for service in self.services.values())


@functools.cache
def load_catalog() -> Catalog:
    """Load the botocore models of :data:`SERVICE_NAMES` (once per process).

    :raises botocore.exceptions.UnknownServiceError: botocore lacks one of them.
    """
    loader = Loader()
    services: dict[str, ServiceApi] = {}
    for name in SERVICE_NAMES:
        model = ServiceModel(loader.load_service_model(name, "service-2"), name)
        operations = [model.operation_model(op) for op in model.operation_names]
        services[name] = ServiceApi(name, model.signing_name, model, Router(name, operations))
    return Catalog(services)


def _split(raw_path: str) -> list[str]:
    path = raw_path.removeprefix("/")
    return path.split("/") if path else []


def _parse_route(operation: OperationModel) -> _Route:
    uri = operation.http["requestUri"]
    path, _, query_text = uri.partition("?")
    segments: list[_Segment] = []
    for part in _split(path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            greedy = name.endswith("+")
            segments.append(_Segment(name.rstrip("+"), True, greedy))
        else:
            segments.append(_Segment(part, False))
    query: list[tuple[str, str | None]] = []
    for item in query_text.split("&") if query_text else []:
        key, sep, value = item.partition("=")
        query.append((key, value if sep else None))
    return _Route(operation.http.get("method", "POST").upper(), tuple(segments),
                  tuple(query), operation)
