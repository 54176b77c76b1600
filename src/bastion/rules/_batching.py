"""Batches of the http action (``enableBatching``): results gathered into one POST.

A batch is open per rule, action, rendered URL and headers (and topic, unless
``batchAcrossTopics``). A result joins the open batch; the batch is sent when it holds
``maxBatchSize`` results, when the next result would take its JSON array past
``maxBatchSizeBytes``, or ``maxBatchOpenMs`` after its first result, whichever comes first.
A binary result (``SELECT *`` on a non-JSON payload) cannot be an array element: it is sent
alone. Sending hands the batch to the engine, which delivers it like any action (retries,
then the error action for each of its messages).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._actions import HttpSpec
from ._evaluate import MessageContext, RuleOutput


@dataclass(slots=True)
class Batch:
    """Results waiting to leave together, with what the POST needs."""

    rule: Any  # the CompiledRule whose action this is
    spec: HttpSpec
    url: str
    headers: tuple[tuple[str, str], ...]
    entries: list[tuple[RuleOutput, MessageContext, Any]] = field(default_factory=list)
    size: int = 2  # the JSON array's bytes so far: "[" and "]", commas, each result
    timer: threading.Timer | None = None

    def body(self) -> bytes:
        return b"[" + b",".join(output.payload() for output, _, _ in self.entries) + b"]"


class HttpBatcher:
    """Gathers results into batches; ``send`` gets each batch when it is due (from the
    adding thread, or from a timer's)."""

    def __init__(self, send: Callable[[Batch], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._open: dict[tuple[Any, ...], Batch] = {}
        self._closed = False

    def add(self, rule: Any, index: int, spec: HttpSpec, output: RuleOutput,
            ctx: MessageContext, message: Any) -> bool:
        """Add one result; False when it cannot be batched (binary, or closed)."""
        settings = spec.batch
        if settings is None or output.raw is not None:
            return False
        url = spec.url.render(ctx)
        headers = tuple((key, template.render(ctx)) for key, template in spec.headers)
        key = (rule.name, index, url, headers,
               None if settings.across_topics else ctx.topic)
        length = len(output.payload())
        due: list[Batch] = []
        with self._lock:
            if self._closed:
                return False
            batch = self._open.get(key)
            if batch is not None and batch.size + length + 1 > settings.max_bytes:
                due.append(self._take(key))
                batch = None
            if batch is None:
                batch = self._open[key] = Batch(rule, spec, url, headers)
                batch.timer = threading.Timer(settings.max_open_ms / 1000, self._expire,
                                              (key, batch))
                batch.timer.daemon = True
                batch.timer.start()
            batch.entries.append((output, ctx, message))
            batch.size += length + (1 if len(batch.entries) > 1 else 0)
            if len(batch.entries) >= settings.max_size or batch.size >= settings.max_bytes:
                due.append(self._take(key))
        for ready in due:
            self._send(ready)
        return True

    def _take(self, key: tuple[Any, ...]) -> Batch:
        batch = self._open.pop(key)
        if batch.timer is not None:
            batch.timer.cancel()
        return batch

    def _expire(self, key: tuple[Any, ...], batch: Batch) -> None:
        with self._lock:
            if self._open.get(key) is not batch:
                return  # sent already
            self._take(key)
        self._send(batch)

    def close(self) -> list[Batch]:
        """Stop batching; the batches still open (the engine sends or drops them)."""
        with self._lock:
            self._closed = True
            keys = list(self._open)
            return [self._take(key) for key in keys]
