"""Small values of the composition root."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BoundListener:
    name: str
    host: str
    port: int
    tls: bool
