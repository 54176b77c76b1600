"""Emulator mode's ``POST /_bastion/reset``: forget everything between two tests.

Wipes the registry (things, types, groups, certificates, CAs, policies, settings such as
the registration code and logging options), drops every MQTT session (clients are
disconnected) and every retained message, then re-registers Bastion's own CA so the
instance is as fresh as after ``bastion init``. Key material (sealed secrets, the data
directory's files), access keys and the audit trail are kept.

The store has no reset of its own yet; until it has (``Store.reset()``, used when
present), :func:`_wipe_store` deletes the rows of every table of Bastion's schema.
"""

from __future__ import annotations

import asyncio
from typing import Final

import sqlalchemy as sa

from bastion.events import EventSink
from bastion.registry import PolicyDeleted
from bastion.store import Store, metadata

from ._context import Gateway

# Key material, access keys and the audit trail survive a reset.
_KEEP_TABLES: Final = frozenset({"sealed_secrets", "access_keys"})
_KEEP_PREFIXES: Final = ("trail",)


async def reset_emulator(gateway: Gateway, publish: EventSink | None) -> None:
    """Wipe all state (see the module docstring). Runs on the broker's loop."""
    plane = gateway.plane

    def wipe() -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            items, token = plane.policies.list_policies(max_results=250, next_token=token)
            names.extend(item.policy_name for item in items)
            if not token:
                break
        _wipe_store(plane.store)
        plane.identity.ensure_authority_registered()
        gateway.logging_options.reset()
        return names

    policy_names = await asyncio.to_thread(wipe)
    broker = gateway.broker
    broker.drop_sessions(lambda session: True, "emulator reset")
    for topic in broker.retained.topics():
        broker.retained.delete(topic)
    if publish is not None:
        for name in policy_names:  # forget compiled policies cached by enforcement
            publish(PolicyDeleted(name))


def _wipe_store(store: Store) -> None:
    reset = getattr(store, "reset", None)
    if callable(reset):
        reset()
        return
    # Stand-in for Store.reset(): every row of Bastion's tables, children first.
    with store.engine.begin() as conn:
        groups = metadata.tables.get("thing_groups")
        if groups is not None and "parent_name" in groups.c:
            conn.execute(sa.update(groups).values(parent_name=None))
        for table in reversed(metadata.sorted_tables):
            if table.name not in _KEEP_TABLES and not table.name.startswith(_KEEP_PREFIXES):
                conn.execute(table.delete())
