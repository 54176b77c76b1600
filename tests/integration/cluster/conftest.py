"""Cluster tests: two or more Bastion nodes on the machine's NATS and PostgreSQL."""

from __future__ import annotations

from support.databases import _pg_schemas, fresh_database_url

__all__ = ["_pg_schemas", "fresh_database_url"]
