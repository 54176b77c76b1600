"""Which security profiles target a thing: its registration and its groups; and the
peer group ML Detect compares it with."""

from __future__ import annotations

from bastion.registry import RegistryError, RegistryService, ResourceNotFoundError

from ._ml import peer_key

FIRMWARE_ATTRIBUTES = ("firmware", "firmwareVersion", "firmware_version")
"""Thing attributes that name a device's firmware (the first one set counts)."""


def thing_membership(registry: RegistryService, thing: str) -> tuple[bool, frozenset[str]]:
    """Whether ``thing`` is a registered thing, and every group it is in — directly or
    through a child group (a profile on a parent group covers its children's things).
    A client id that names no thing is ``(False, ∅)``."""
    try:
        names: set[str] = set()
        token: str | None = None
        while True:
            page, token = registry.list_thing_groups_for_thing(thing, next_token=token)
            names.update(g.group_name for g in page)
            if not token:
                break
    except RegistryError:
        return False, frozenset()
    for group in list(names):
        try:
            described = registry.describe_thing_group(group)
        except ResourceNotFoundError:
            continue
        names.update(g.group_name for g in described.root_to_parent_thing_groups)
    return True, frozenset(names)


def thing_peer(registry: RegistryService, thing: str) -> str:
    """The peer key of ``thing``: its thing type and firmware attribute (see
    :data:`FIRMWARE_ATTRIBUTES`); a client id that names no thing has neither."""
    try:
        described = registry.describe_thing(thing)
    except RegistryError:
        return peer_key(None, None)
    firmware = next((described.attributes[a] for a in FIRMWARE_ATTRIBUTES
                     if described.attributes.get(a)), None)
    return peer_key(described.thing_type_name, firmware)
