"""Broker integration tests: the database fixtures (see :mod:`support.databases`) and the
``bastion serve`` subprocess (see :mod:`support.served`)."""

from __future__ import annotations

from support.databases import _pg_schemas, fresh_database_url
from support.served import served

__all__ = ["_pg_schemas", "fresh_database_url", "served"]
