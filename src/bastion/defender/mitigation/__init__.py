"""Mitigation actions: the named, reusable changes Device Defender applies to findings
(audit) and violations (detect).

* :class:`MitigationActionService` — CreateMitigationAction, Describe, Update, Delete,
  List, with AWS's parameter rules;
* :class:`MitigationAction`, :class:`MitigationActionType`, :func:`action_type_of`;
* :class:`RegistryEffects` — the changes actions make, for audit and detect alike;
* :class:`ViolationResponse` — what a detect violation sets off: alerts, the profile's
  mitigation actions, deactivation for severe behaviours, each recorded in the trail.
"""

from __future__ import annotations

from ._actions import (
    BLANK_POLICY,
    PARAMS_MEMBERS,
    MitigationAction,
    MitigationActionService,
    MitigationActionType,
    action_type_of,
)
from ._effects import (
    BLANK_POLICY_DOCUMENT,
    LoggingSwitch,
    MitigationEffects,
    RegistryEffects,
    TargetNotifier,
)
from ._violations import ViolationResponse, violation_message

__all__ = [
    "BLANK_POLICY",
    "BLANK_POLICY_DOCUMENT",
    "PARAMS_MEMBERS",
    "LoggingSwitch",
    "MitigationAction",
    "MitigationActionService",
    "MitigationActionType",
    "MitigationEffects",
    "RegistryEffects",
    "TargetNotifier",
    "ViolationResponse",
    "action_type_of",
    "violation_message",
]
