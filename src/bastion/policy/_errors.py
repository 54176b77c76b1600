"""Exceptions of the policy package.

Whose fault, and what the peer sees:

* :class:`MalformedPolicyError` — the author of a policy document (a control-plane caller)
  sent a document that is not valid IoT policy language. The API answers
  ``MalformedPolicyException`` with HTTP 400; :attr:`MalformedPolicyError.aws_message` is the
  body message. It never echoes more than the offending element.

Local misuse (passing a ``bytes`` where a ``str`` is expected, a context with a non-string
client id, …) raises the built-in :class:`TypeError` / :class:`ValueError` instead: that is a
bug in our own caller, not something a peer did.
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base class of every exception raised by :mod:`bastion.policy`."""


class MalformedPolicyError(PolicyError):
    """A policy document failed to parse or validate.

    :param reason: what is wrong, in words (e.g. ``"unknown action \\"iot:Publsh\\""``).
    :param path: where, as a JSON path into the document (``"Statement[1].Action[0]"``), or
        ``None`` when the problem concerns the document as a whole.

    ``str(error)`` is ``"<path>: <reason>"`` (or just the reason). The API layer answers with
    :attr:`error_type` / :attr:`http_status` and :attr:`aws_message`.
    """

    error_type = "MalformedPolicyException"
    http_status = 400

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)

    @property
    def aws_message(self) -> str:
        """The message AWS IoT would put in the error body."""
        return f"Policy document is Malformed: {self}"
