"""Emulator mode's ``POST /_bastion/reset``: forget everything between two tests.

Wipes the registry (things, types, groups, certificates, CAs, policies, settings such as
the registration code and logging options) and the topic rules, drops every MQTT session (clients are
disconnected) and every retained message, then re-registers Bastion's own CA so the
instance is as fresh as after ``bastion init``. Key material (sealed secrets, the data
directory's files), access keys and the audit trail are kept (:meth:`Store.reset`); the
built-in job templates are made again.
"""

from __future__ import annotations

import asyncio

from bastion.events import EventSink
from bastion.jobs import ensure_builtin_templates
from bastion.registry import PolicyDeleted
from bastion.rules import TopicRuleChanged, TopicRuleDestinationChanged

from ._context import Gateway


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
        plane.store.reset()
        plane.identity.ensure_authority_registered()
        gateway.logging_options.reset()
        ensure_builtin_templates(gateway.services.jobs)
        return names

    policy_names = await asyncio.to_thread(wipe)
    broker = gateway.broker
    broker.drop_sessions(lambda session: True, "emulator reset")
    for topic in broker.retained.topics():
        broker.retained.delete(topic)
    if publish is not None:
        for name in policy_names:  # forget compiled policies cached by enforcement
            publish(PolicyDeleted(name))
        publish(TopicRuleChanged(""))  # the rules engine reloads: no rule is left
        publish(TopicRuleDestinationChanged(""))

