"""Device Defender: audit (:mod:`.audit`), detect, and mitigation actions
(:mod:`.mitigation`).

The subpackages are domain services: they read the registry and the connection journal
through the store, change security state through the registry services (so the broker
applies every change to live sessions), and never import a front door.
:class:`DefenderServices` with :func:`attach_services` / :func:`services_of` is how the
app hands the running services to the front doors.
"""

from __future__ import annotations

from ._services import DefenderServices, attach_services, detach_services, services_of

__all__ = ["DefenderServices", "attach_services", "detach_services", "services_of"]
