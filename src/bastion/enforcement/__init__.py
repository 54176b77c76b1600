"""Enforcement: the registry and the policy engine plugged into the broker."""

from __future__ import annotations

from ._bridge import SECURITY_EVENTS, SecurityEventBridge
from ._context import request_context
from ._gate import GatePermissions, RegistryGate
from ._journal import ConnectionJournal
from ._what_if import authorization_decisions

__all__ = ["SECURITY_EVENTS", "ConnectionJournal", "GatePermissions", "RegistryGate",
           "SecurityEventBridge", "authorization_decisions", "request_context"]
