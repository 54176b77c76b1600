"""The API's tests that keep a real trail use the store on both backends (see
:mod:`support.databases`)."""

from __future__ import annotations

from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]
