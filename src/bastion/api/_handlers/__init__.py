"""Operation handlers, one module per domain, all registered in :data:`TABLE`."""

from __future__ import annotations

from . import (
    acm,
    audit,
    billing_groups,
    certificates,
    connectivity,
    data,
    detect,
    domains,
    groups,
    guardduty,
    indexing,
    jobs,
    ota,
    policies,
    provisioning,
    role_aliases,
    rules,
    shadow,
    signer,
    system,
    tags,
    things,
)
from ._table import TABLE, Handler, HandlerSpec, HandlerTable

__all__ = ["TABLE", "Handler", "HandlerSpec", "HandlerTable", "acm", "audit", "billing_groups",
           "certificates", "connectivity", "data", "detect", "domains", "groups", "guardduty", "indexing",
           "jobs", "ota",
           "policies", "provisioning", "role_aliases", "rules", "shadow", "signer", "system",
           "tags", "things"]
