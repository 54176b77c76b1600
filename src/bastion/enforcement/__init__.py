"""Enforcement: the registry and the policy engine plugged into the broker."""

from __future__ import annotations

from ._bridge import SecurityEventBridge
from ._context import request_context
from ._gate import GatePermissions, RegistryGate

__all__ = ["GatePermissions", "RegistryGate", "SecurityEventBridge", "request_context"]
