"""The Defender services of one running Bastion, found by the front doors that serve
them.

The composition root attaches them to an object both it and the front door can see (the
broker); a front door asks :func:`services_of` with that object. The map holds its keys
weakly, so several Bastions in one process (tests) never see each other's services.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .audit import AuditMitigationService, AuditService
    from .mitigation import MitigationActionService

_ATTACHED: weakref.WeakKeyDictionary[object, DefenderServices] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class DefenderServices:
    audit: AuditService
    mitigation: AuditMitigationService
    actions: MitigationActionService


def attach_services(owner: object, services: DefenderServices) -> None:
    """Make ``services`` findable through ``owner`` (e.g. the app's broker)."""
    _ATTACHED[owner] = services


def detach_services(owner: object) -> None:
    _ATTACHED.pop(owner, None)


def services_of(owner: object) -> DefenderServices | None:
    return _ATTACHED.get(owner)
