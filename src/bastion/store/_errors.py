"""Exceptions of the store package.

Whose fault, and what the peer sees: the store talks to no peer. A :class:`ConflictError`
is raised when a write breaks a constraint (a duplicate key, a row referenced by another
or referencing a missing one), usually because two requests raced; the service above
translates it into its own domain error. :class:`InvalidPageTokenError` is a caller's
fault (a token that was not produced by the listing it is passed to); it is a
:class:`ValueError` so the service can answer "invalid request". :class:`StoreError`
covers deployment problems (unsupported database URL, a schema newer than this code).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the exceptions raised by :mod:`bastion.store`."""


class ConflictError(StoreError):
    """A write broke a uniqueness or referential constraint; the transaction is unusable
    afterwards (PostgreSQL aborts it) and must be left."""


class InvalidPageTokenError(StoreError, ValueError):
    """A pagination token is malformed or belongs to another listing."""
