"""Durable MQTT session records on the store's database (SQLite or PostgreSQL).

:class:`SqlSessionRecords` is the database side of the broker's session journal
(:class:`bastion.broker.SessionRecords`): the tables of migration 0011, written in one
transaction per group commit and read back at start.
"""

from __future__ import annotations

from ._records import SYNCHRONOUS_MODES, SqlSessionRecords

__all__ = ["SYNCHRONOUS_MODES", "SqlSessionRecords"]
