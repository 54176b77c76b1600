"""The trail's exceptions."""

from __future__ import annotations


class TrailError(Exception):
    """Base of the trail's errors."""


class TrailIntegrityError(TrailError):
    """The stored trail fails a check an append relies on: its head row is missing, or
    its seal does not match (the database was altered by someone without the master key,
    or it belongs to another master key). Nobody's request is at fault: the append is
    refused, so that a tampered head is never re-sealed and its tampering laundered. A
    call that changes nothing is still answered (the refusal is logged); a change is
    refused with its record and rolled back (the caller gets a 500 InternalFailure), as
    no change is made without its record. ``bastion trail verify`` says what broke.
    """
