"""Shadow documents: merging updates, metadata timestamps, the delta, and the messages.

Theory of operation
-------------------
A shadow holds two sections, ``desired`` and ``reported`` (each a JSON object, or
absent), and for each a *metadata* tree mirroring it: every leaf value is replaced by
``{"timestamp": <epoch seconds of its last update>}``, every array by the list of its
elements' metadata, every object by the object of its members' metadata.

**Update** (:func:`merge_state`) applies the request's sections as patches: a member set
to ``null`` is removed; an object merges into an existing object member by member;
anything else (a value, an array, an object replacing a non-object) replaces the member
wholesale. A section set to ``null`` is removed, and a section left empty disappears.
Metadata follows the same walk, stamping exactly the members the patch touched.

**Delta** (:func:`compute_delta`) walks ``desired``: a member absent from ``reported``,
or different from it, is in the delta; objects on both sides are compared member by
member (the delta then holds only the differing nested members); arrays and values are
compared whole. Members only in ``reported`` never appear. Numbers compare by value
(``1`` equals ``1.0``), but ``true`` is not ``1``.

The message builders produce AWS's documents (``/get/accepted``, ``/update/accepted``,
``/update/delta``, ``/update/documents``, ``/delete/accepted``) as dicts; all times are
epoch seconds passed in by the caller (nothing here reads a clock).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._request import SECTIONS, state_size

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ShadowState:
    """The stored content of a shadow (treat the dicts as read-only).

    :ivar desired: the desired section, ``None`` when absent (never empty).
    :ivar desired_metadata: its metadata tree (``None`` exactly when ``desired`` is).
    """

    desired: JSONObject | None = None
    reported: JSONObject | None = None
    desired_metadata: JSONObject | None = None
    reported_metadata: JSONObject | None = None

    def section(self, name: str) -> JSONObject | None:
        return self.desired if name == "desired" else self.reported

    def section_metadata(self, name: str) -> JSONObject | None:
        return self.desired_metadata if name == "desired" else self.reported_metadata

    @property
    def is_empty(self) -> bool:
        return self.desired is None and self.reported is None

    @property
    def size(self) -> int:
        """Bytes counted against the size limit (metadata excluded)."""
        return state_size(self.desired) + state_size(self.reported)

    def state_document(self) -> JSONObject:
        """``{"desired": …, "reported": …}`` with the present sections."""
        return {name: value for name in SECTIONS
                if (value := self.section(name)) is not None}

    def metadata_document(self) -> JSONObject:
        return {name: value for name in SECTIONS
                if (value := self.section_metadata(name)) is not None}


EMPTY_STATE = ShadowState()


# -- metadata -------------------------------------------------------------------------

def metadata_of(value: Any, timestamp: int) -> Any:
    """The metadata tree of ``value`` with every leaf (``null`` included) stamped."""
    if isinstance(value, dict):
        return {key: metadata_of(child, timestamp) for key, child in value.items()}
    if isinstance(value, list):
        return [metadata_of(child, timestamp) for child in value]
    return {"timestamp": timestamp}


def _strip_nulls(value: JSONObject) -> JSONObject | None:
    """``value`` without its ``null`` members, recursively; ``None`` when nothing but
    nulls was left (an object that was empty to begin with stays ``{}``)."""
    result: JSONObject = {}
    dropped = False
    for key, child in value.items():
        if child is None:
            dropped = True
        elif isinstance(child, dict):
            kept = _strip_nulls(child)
            if kept is None:
                dropped = True
            else:
                result[key] = kept
        else:
            result[key] = copy.deepcopy(child)
    return None if dropped and not result else result


def _merge(target: JSONObject, target_metadata: JSONObject, patch: Mapping[str, Any],
           timestamp: int) -> tuple[JSONObject, JSONObject]:
    result = dict(target)
    metadata = dict(target_metadata)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
            metadata.pop(key, None)
        elif isinstance(value, dict):
            existing = result.get(key)
            if isinstance(existing, dict):
                existing_metadata = metadata.get(key)
                if not isinstance(existing_metadata, dict):
                    existing_metadata = {}
                result[key], metadata[key] = _merge(existing, existing_metadata, value,
                                                    timestamp)
            else:
                kept = _strip_nulls(value)
                if kept is None:
                    result.pop(key, None)
                    metadata.pop(key, None)
                else:
                    result[key] = kept
                    metadata[key] = metadata_of(kept, timestamp)
        else:
            result[key] = copy.deepcopy(value)
            metadata[key] = metadata_of(value, timestamp)
    return result, metadata


def merge_state(current: ShadowState, patch: Mapping[str, JSONObject | None] | None,
                timestamp: int) -> ShadowState:
    """The state after applying an update request's ``state`` node.

    :param patch: the checked ``state`` node (see
        :func:`~bastion.shadow._request.parse_update_request`); ``None`` clears both
        sections.
    :param timestamp: the update's time, stamped on every member the patch touches.
    """
    if patch is None:
        return EMPTY_STATE
    sections: dict[str, tuple[JSONObject | None, JSONObject | None]] = {}
    for name in SECTIONS:
        section, metadata = current.section(name), current.section_metadata(name)
        if name in patch:
            change = patch[name]
            if change is None:
                section = metadata = None
            else:
                section, metadata = _merge(section or {}, metadata or {}, change, timestamp)
                if not section:
                    section = metadata = None
        sections[name] = (section, metadata)
    return ShadowState(sections["desired"][0], sections["reported"][0],
                       sections["desired"][1], sections["reported"][1])


# -- delta ------------------------------------------------------------------------------

def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, booleans only equal booleans, arrays in order."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[key], right[key])
                                                   for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right))
    return type(left) is type(right) and bool(left == right)


def _delta(desired: JSONObject, reported: JSONObject) -> JSONObject:
    result: JSONObject = {}
    for key, wanted in desired.items():
        if key not in reported:
            result[key] = copy.deepcopy(wanted)
            continue
        actual = reported[key]
        if isinstance(wanted, dict) and isinstance(actual, dict):
            nested = _delta(wanted, actual)
            if nested:
                result[key] = nested
        elif not json_equal(wanted, actual):
            result[key] = copy.deepcopy(wanted)
    return result


def compute_delta(desired: JSONObject | None, reported: JSONObject | None) -> JSONObject | None:
    """The members of ``desired`` that ``reported`` does not match, or ``None``."""
    if not desired:
        return None
    return _delta(desired, reported or {}) or None


def _delta_metadata(delta: Any, metadata: Any) -> Any:
    if isinstance(delta, dict) and isinstance(metadata, dict):
        return {key: _delta_metadata(child, metadata.get(key)) for key, child in delta.items()}
    return copy.deepcopy(metadata)


def delta_metadata(delta: JSONObject, desired_metadata: JSONObject | None) -> JSONObject:
    """The metadata of the delta's members (taken from ``desired``'s metadata)."""
    found = _delta_metadata(delta, desired_metadata or {})
    return found if isinstance(found, dict) else {}


# -- messages -------------------------------------------------------------------------

def _with_token(document: JSONObject, client_token: str | None) -> JSONObject:
    if client_token is not None:
        document["clientToken"] = client_token
    return document


def get_accepted(state: ShadowState, version: int, timestamp: int,
                 client_token: str | None) -> JSONObject:
    """``/get/accepted`` and GetThingShadow: the whole shadow, with the delta."""
    body = copy.deepcopy(state.state_document())
    delta = compute_delta(state.desired, state.reported)
    if delta is not None:
        body["delta"] = delta
    return _with_token({
        "state": body,
        "metadata": copy.deepcopy(state.metadata_document()),
        "version": version,
        "timestamp": timestamp,
    }, client_token)


def update_accepted(patch: Mapping[str, JSONObject | None] | None, version: int,
                    timestamp: int, client_token: str | None) -> JSONObject:
    """``/update/accepted`` and UpdateThingShadow: the request's state as sent (nulls
    included) with the metadata of every member it touched. ``{"state": null}`` is
    answered as AWS does: ``"state": null`` and ``"metadata": {"timestamp": …}``."""
    state: Any = None if patch is None else copy.deepcopy(dict(patch))
    metadata: JSONObject
    if patch is None:
        metadata = {"timestamp": timestamp}
    else:
        metadata = {name: metadata_of(value, timestamp) for name, value in patch.items()}
    return _with_token({
        "state": state,
        "metadata": metadata,
        "version": version,
        "timestamp": timestamp,
    }, client_token)


def delta_message(state: ShadowState, version: int, timestamp: int,
                  client_token: str | None) -> JSONObject | None:
    """``/update/delta``: the delta and its metadata, or ``None`` when ``desired`` and
    ``reported`` agree."""
    delta = compute_delta(state.desired, state.reported)
    if delta is None:
        return None
    return _with_token({
        "version": version,
        "timestamp": timestamp,
        "state": delta,
        "metadata": delta_metadata(delta, state.desired_metadata),
    }, client_token)


def _snapshot(state: ShadowState, version: int) -> JSONObject:
    return {
        "state": copy.deepcopy(state.state_document()),
        "metadata": copy.deepcopy(state.metadata_document()),
        "version": version,
    }


def documents_message(previous: tuple[ShadowState, int] | None, current: ShadowState,
                      version: int, timestamp: int, client_token: str | None) -> JSONObject:
    """``/update/documents``: the shadow before (absent when the update created it) and
    after the update."""
    document: JSONObject = {}
    if previous is not None:
        document["previous"] = _snapshot(*previous)
    document["current"] = _snapshot(current, version)
    document["timestamp"] = timestamp
    return _with_token(document, client_token)


def delete_accepted(version: int, timestamp: int, client_token: str | None) -> JSONObject:
    """``/delete/accepted`` and DeleteThingShadow."""
    return _with_token({"version": version, "timestamp": timestamp}, client_token)
