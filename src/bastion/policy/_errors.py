"""Exceptions of the policy package.

Whose fault, and what the peer sees:

* :class:`MalformedPolicyError` — the author of a policy document (a control-plane caller)
  sent a document that is not valid IoT policy language. It follows the wire-error
  contract (:class:`bastion.errors.ServiceError`): ``MalformedPolicyException`` with HTTP
  400, and :attr:`MalformedPolicyError.message` is the body message. It never echoes more
  than the offending element.

Local misuse (passing a ``bytes`` where a ``str`` is expected, a context with a non-string
client id, …) raises the built-in :class:`TypeError` / :class:`ValueError` instead: that is a
bug in our own caller, not something a peer did.
"""

from __future__ import annotations

from bastion.errors import ServiceError


class PolicyError(ServiceError):
    """Base class of every exception raised by :mod:`bastion.policy`."""


class MalformedPolicyError(PolicyError):
    """A policy document failed to parse or validate.

    :param reason: what is wrong, in words (e.g. ``"unknown action \\"iot:Publsh\\""``).
    :param path: where, as a JSON path into the document (``"Statement[1].Action[0]"``), or
        ``None`` when the problem concerns the document as a whole.

    ``str(error)`` is ``"<path>: <reason>"`` (or just the reason); :attr:`message`, what
    AWS IoT puts in the error body, is ``"Policy document is Malformed: <path>: <reason>"``.
    """

    aws_error_type = "MalformedPolicyException"
    http_status = 400

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"Policy document is Malformed: {self}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason
