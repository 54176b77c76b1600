"""The detect service of one running Bastion, found by the front doors through an object
both see (the broker). Held weakly, so Bastions in one process never see each other's."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._service import DetectService

_ATTACHED: weakref.WeakKeyDictionary[object, DetectService] = weakref.WeakKeyDictionary()


def attach_detect(owner: object, service: DetectService) -> None:
    _ATTACHED[owner] = service


def detach_detect(owner: object) -> None:
    _ATTACHED.pop(owner, None)


def detect_of(owner: object) -> DetectService | None:
    return _ATTACHED.get(owner)
