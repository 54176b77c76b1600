"""Device Defender: audit (:mod:`.audit`), detect (:mod:`.detect`), and mitigation
actions (:mod:`.mitigation`).

The subpackages are domain services: they read the registry and the connection journal
through the store, change security state through the registry services (so the broker
applies every change to live sessions), and never import a front door. The composition
root builds them (:func:`bastion.services.build_services`) and hands them to the front
doors in the :class:`bastion.services.Services` directory.
"""

from __future__ import annotations

__all__: list[str] = []
