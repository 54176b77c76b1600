"""Mitigation actions: the named, reusable changes Device Defender applies to findings
(audit) and violations (detect).

* :class:`MitigationActionService` — CreateMitigationAction, Describe, Update, Delete,
  List, with AWS's parameter rules;
* :class:`MitigationAction`, :class:`MitigationActionType`, :func:`action_type_of`.
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

__all__ = [
    "BLANK_POLICY",
    "PARAMS_MEMBERS",
    "MitigationAction",
    "MitigationActionService",
    "MitigationActionType",
    "action_type_of",
]
