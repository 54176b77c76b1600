"""Exceptions of the PKI package.

Whose fault, and what the peer sees: nothing in this package talks to a peer. A
:class:`KeystoreError` is an operator or deployment problem (a missing, malformed or
different master key, a key file that was not encrypted by us); a
:class:`SecretTamperedError` means stored bytes were modified or belong to another
installation. Neither message ever contains key material or plaintext.

Wrong argument types and values raise :class:`TypeError` / :class:`ValueError`, like
``cryptography``'s builders.
"""

from __future__ import annotations


class PKIError(Exception):
    """Base class of every exception raised by :mod:`bastion.pki` (besides misuse errors)."""


class KeystoreError(PKIError):
    """The master key or a secret at rest cannot be used (missing, malformed, wrong key)."""


class SecretTamperedError(KeystoreError):
    """A sealed blob failed authentication: modified, truncated, or sealed under another
    master key or other associated data."""
