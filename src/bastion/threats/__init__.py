"""Threat detection on operator and device activity (the AWS IoT Security Baseline's
AISB#9, GuardDuty's role): findings from the API's callers, risky control-plane changes,
device connections and the trail's verification, answered through GuardDuty's API.

* :class:`ThreatDetector`, :class:`DetectorSettings` — pure: observations → signals;
* :class:`ThreatService` — findings (aggregated, stored, alerted), threat lists,
  GuardDuty's queries;
* :class:`ThreatWatch` — the component that flushes findings and verifies the trail;
* :data:`TYPES` — the finding types, their severity and title.
"""

from __future__ import annotations

from ._detector import DetectorSettings, ThreatDetector
from ._errors import BadRequestError, NotFoundError, ThreatsError
from ._model import TYPES, Finding, FindingType, ResourceKind, Signal
from ._service import IntelSet, ThreatService
from ._watch import ThreatWatch

__all__ = [
    "TYPES",
    "BadRequestError",
    "DetectorSettings",
    "Finding",
    "FindingType",
    "IntelSet",
    "NotFoundError",
    "ResourceKind",
    "Signal",
    "ThreatDetector",
    "ThreatService",
    "ThreatWatch",
    "ThreatsError",
]
