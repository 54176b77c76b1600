"""The fleet index over both database backends."""

from __future__ import annotations

from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]
