"""The trail's exceptions."""

from __future__ import annotations


class TrailError(Exception):
    """Base of the trail's errors."""


class TrailIntegrityError(TrailError):
    """The stored trail fails a check an append relies on: its head row is missing, or
    its seal does not match (the database was altered by someone without the master key,
    or it belongs to another master key). Nobody's request is at fault: the append is
    refused, so that a tampered head is never re-sealed and its tampering laundered; the
    API still answers the call and logs the refusal. ``bastion trail verify`` says what
    broke.
    """
