"""The handler table: ``(service, operation) → handler``.

A handler is ``handler(ctx, params) -> result``: ``params`` are the bound, validated
input members (keyed like boto3's keyword arguments), ``result`` the output members
(keyed like boto3's response). Handlers are synchronous. Most call the registry
services, which do blocking I/O, and run in a worker thread; those marked ``on_loop``
touch the broker's single-threaded state and run on the event loop (they must not
block, and may return an awaitable of their result to answer later).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._context import OperationContext

Params = dict[str, Any]
Result = Mapping[str, Any]
Handler = Callable[[OperationContext, Params], Result | Awaitable[Result]]
"""A handler returns its result; one running on the loop may return an awaitable of it
instead (it answers once something on the loop is done, e.g. a publish is durable)."""


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    handler: Handler
    on_loop: bool


class HandlerTable:
    """Registered handlers. ``@table.register("iot", "CreateThing")``."""

    __slots__ = ("_specs",)

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], HandlerSpec] = {}

    def register(self, service: str, operation: str, *,
                 on_loop: bool = False) -> Callable[[Handler], Handler]:
        """Decorator registering a handler.

        :raises ValueError: the operation already has one.
        """
        def decorate(handler: Handler) -> Handler:
            key = (service, operation)
            if key in self._specs:
                raise ValueError(f"{service}:{operation} already has a handler")
            self._specs[key] = HandlerSpec(handler, on_loop)
            return handler
        return decorate

    def get(self, service: str, operation: str) -> HandlerSpec | None:
        return self._specs.get((service, operation))

    def operations(self, service: str) -> frozenset[str]:
        """The operations of ``service`` that have a handler."""
        return frozenset(op for svc, op in self._specs if svc == service)


TABLE = HandlerTable()
"""The table every handler module registers into."""
