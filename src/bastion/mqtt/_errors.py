"""Exceptions of the MQTT package.

Whose fault, and what the peer sees:

* :class:`RemoteProtocolError` — the peer broke the protocol. It carries the MQTT 5 reason
  code that goes into the DISCONNECT (or CONNACK, before the session exists) before the
  connection is closed. For MQTT 3.1.1 the connection is simply closed.
* :class:`LocalProtocolError` — our own code asked for something the protocol forbids
  (e.g. sending PUBLISH before CONNACK). Nothing is sent; it is a bug on our side.
"""

from __future__ import annotations

from ._reason import ReasonCode


class MQTTError(Exception):
    """Base class of every exception raised by :mod:`bastion.mqtt`."""


class RemoteProtocolError(MQTTError):
    """The peer sent something the protocol does not allow.

    :param message: a human-readable description for logs (never echoes payload bytes).
    :param reason_code: the MQTT 5 reason code to send before closing.
    """

    def __init__(self, message: str, reason_code: ReasonCode = ReasonCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class MalformedPacketError(RemoteProtocolError):
    """The bytes do not form a valid packet (reason code 0x81 unless a more precise one fits)."""

    def __init__(
        self, message: str, reason_code: ReasonCode = ReasonCode.MALFORMED_PACKET
    ) -> None:
        super().__init__(message, reason_code)


class PacketTooLargeError(RemoteProtocolError):
    """A packet exceeds the maximum packet size we announced (reason code 0x95)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ReasonCode.PACKET_TOO_LARGE)


class LocalProtocolError(MQTTError):
    """Our side tried to do something the protocol forbids in the current state."""


class UnsupportedProtocolVersionError(RemoteProtocolError):
    """A CONNECT asks for a protocol level we do not speak (reason code 0x84).

    The connection is still answered before it is closed, with a CONNACK refusing the
    protocol level (``ServerConnection.error_response`` builds it). ``protocol_version`` is
    the level the client asked for.

    :param message: a human-readable description for logs.
    :param protocol_version: the protocol level byte of the CONNECT.
    """

    def __init__(self, message: str, protocol_version: int) -> None:
        super().__init__(message, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION)
        self.protocol_version = protocol_version
