"""Enforcement: the registry and the policy engine plugged into the broker."""

from __future__ import annotations

from ._bridge import SecurityEventBridge
from ._context import request_context
from ._gate import GatePermissions, RegistryGate
from ._journal import ConnectionJournal

__all__ = ["ConnectionJournal", "GatePermissions", "RegistryGate", "SecurityEventBridge", "request_context"]
