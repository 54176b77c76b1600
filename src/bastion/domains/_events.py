"""Events of this package: published after the commit, on the one bus."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServedDomainsChanged:
    """What the MQTT listeners serve changed: a domain configuration was created,
    updated (status, security policy) or deleted, or a certificate one of them uses was
    re-imported. Consumers read the served domains back
    (:meth:`~bastion.domains.DomainService.served_domains`).

    :ivar reason: what happened, for the log (``"created example"``).
    """

    reason: str
