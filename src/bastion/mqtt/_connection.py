"""The server side of one MQTT network connection, without I/O or clock.

Theory of operation
-------------------
:class:`ServerConnection` turns received bytes into validated packets
(:meth:`~ServerConnection.receive_data`) and packets into bytes to write
(:meth:`~ServerConnection.send`). Which packet may go which way in which state is the
table ``_TRANSITIONS`` below; anything else is the client's fault on receive
(:class:`RemoteProtocolError`, PROTOCOL_ERROR) and ours on send (:class:`LocalProtocolError`).

States::

    AWAITING_CONNECT --CONNECT received--> AWAITING_CONNACK --CONNACK sent--> CONNECTED
    AWAITING_CONNACK, CONNECTED --DISCONNECT received--> CLIENT_DISCONNECTED
         any state --error raised / DISCONNECT sent / error CONNACK--> CLOSED

CLIENT_DISCONNECTED: the client said goodbye, but packets it sent before its DISCONNECT
(often in the same TCP segment: ``publish(qos=1); disconnect()``) still get their answers
— CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP — so the caller
handles every packet :meth:`~ServerConnection.receive_data` returned, in order, before it
closes. Nothing new is sent (no PUBLISH, no DISCONNECT) and nothing more is received.

Clients may pipeline packets behind their CONNECT; they are returned in order and the
caller handles them after it has sent the CONNACK.

What the connection enforces on its own, because it is protocol rather than policy:

* the server's announced limits (:class:`ServerLimits`): packet size (in the decoder),
  maximum QoS, retain, and for MQTT 5 receive maximum, topic aliases and the wildcard,
  shared-subscription and subscription-identifier availability flags;
* inbound topic aliases (MQTT 5): a PUBLISH is returned with its real topic and *without*
  its ``topic_alias`` property, so nothing downstream sees a per-connection alias;
* the inbound receive maximum (MQTT 5): a QoS 1 PUBLISH holds a slot until we send its
  PUBACK, a QoS 2 PUBLISH until we send its PUBCOMP (or a PUBREC with an error code). A
  resent PUBLISH with a packet identifier already held does not take a second slot;
* the client's limits on what we send: its Maximum Packet Size (an oversized PUBLISH is
  dropped, an oversized reply loses its reason string and user properties), and its
  Request Problem Information flag.

After :meth:`receive_data` raises, the state is CLOSED; :meth:`error_response` gives the
bytes to write before closing (CONNACK or DISCONNECT with the error's reason code).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from ._codec import MAX_PACKET_SIZE, PacketDecoder, encode
from ._errors import (
    LocalProtocolError,
    RemoteProtocolError,
    UnsupportedProtocolVersionError,
)
from ._packet_rules import CONNACK_REASONS, DISCONNECT_REASONS, SHARED_PREFIX, has_wildcard
from ._packets import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from ._reason import ReasonCode

__all__ = ["ConnectionState", "ServerConnection", "ServerLimits", "client_id_must_be_rejected"]

_NO_EXPIRY = 0xFFFFFFFF


class ConnectionState(enum.Enum):
    AWAITING_CONNECT = enum.auto()
    AWAITING_CONNACK = enum.auto()  # CONNECT received, CONNACK not yet sent
    CONNECTED = enum.auto()
    CLIENT_DISCONNECTED = enum.auto()  # DISCONNECT received; replies still go out
    CLOSED = enum.auto()


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What the server accepts; for MQTT 5 most of it is announced in the CONNACK.

    :raises ValueError: a value outside what MQTT can announce.
    """

    max_packet_size: int = 149_504
    receive_maximum: int = 100
    topic_alias_maximum: int = 8
    maximum_qos: int = 2
    retain_available: bool = True
    wildcard_subscription_available: bool = True
    shared_subscription_available: bool = True
    subscription_identifier_available: bool = True
    min_keep_alive: int = 0  # 0 = no clamp
    max_keep_alive: int = 0  # 0 = no clamp
    max_session_expiry: int = _NO_EXPIRY

    def __post_init__(self) -> None:
        if not 1 <= self.max_packet_size <= MAX_PACKET_SIZE:
            raise ValueError(f"max_packet_size must be in 1..{MAX_PACKET_SIZE}")
        if not 1 <= self.receive_maximum <= 0xFFFF:
            raise ValueError("receive_maximum must be in 1..65535")
        if not 0 <= self.topic_alias_maximum <= 0xFFFF:
            raise ValueError("topic_alias_maximum must be in 0..65535")
        if self.maximum_qos not in (0, 1, 2):
            raise ValueError("maximum_qos must be 0, 1 or 2")
        for name in ("min_keep_alive", "max_keep_alive"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise ValueError(f"{name} must be in 0..65535")
        if self.min_keep_alive and self.max_keep_alive and (
            self.min_keep_alive > self.max_keep_alive
        ):
            raise ValueError("min_keep_alive is above max_keep_alive")
        if not 0 <= self.max_session_expiry <= _NO_EXPIRY:
            raise ValueError("max_session_expiry must be in 0..4294967295")


_S = ConnectionState
_P = PacketType
_CLIENT_PACKETS = (_P.PUBLISH, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP, _P.SUBSCRIBE,
                   _P.UNSUBSCRIBE, _P.PINGREQ, _P.AUTH)
_SERVER_PACKETS = (_P.PUBLISH, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP, _P.SUBACK,
                   _P.UNSUBACK, _P.PINGRESP, _P.AUTH)
# What answers a packet the client sent before its DISCONNECT.
_REPLIES = (_P.CONNACK, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP, _P.SUBACK, _P.UNSUBACK,
            _P.PINGRESP)

# (state, packet type) -> state afterwards, per direction. A pair missing from the table
# is not allowed. An error CONNACK leads to CLOSED instead of CONNECTED (see send).
_TRANSITIONS: dict[str, dict[ConnectionState, dict[PacketType, ConnectionState]]] = {
    "receive": {
        _S.AWAITING_CONNECT: {_P.CONNECT: _S.AWAITING_CONNACK},
        _S.AWAITING_CONNACK: {
            **{packet_type: _S.AWAITING_CONNACK for packet_type in _CLIENT_PACKETS},
            _P.DISCONNECT: _S.CLIENT_DISCONNECTED,
        },
        _S.CONNECTED: {
            **{packet_type: _S.CONNECTED for packet_type in _CLIENT_PACKETS},
            _P.DISCONNECT: _S.CLIENT_DISCONNECTED,
        },
        _S.CLIENT_DISCONNECTED: {},
        _S.CLOSED: {},
    },
    "send": {
        _S.AWAITING_CONNECT: {},
        _S.AWAITING_CONNACK: {
            _P.CONNACK: _S.CONNECTED,
            _P.AUTH: _S.AWAITING_CONNACK,  # enhanced authentication before the CONNACK
        },
        _S.CONNECTED: {
            **{packet_type: _S.CONNECTED for packet_type in _SERVER_PACKETS},
            _P.DISCONNECT: _S.CLOSED,
        },
        _S.CLIENT_DISCONNECTED: {packet_type: _S.CLIENT_DISCONNECTED
                                 for packet_type in _REPLIES},
        _S.CLOSED: {},
    },
}
_PACKET_CLASSES: tuple[type[Packet], ...] = (
    Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Suback, Unsubscribe,
    Unsuback, Pingreq, Pingresp, Disconnect, Auth,
)
_Moves = dict[type, ConnectionState]


def _by_class(direction: str) -> dict[ConnectionState, _Moves]:
    """The table of one direction keyed by packet class (a cheap lookup per packet)."""
    return {
        state: {cls: moves[cls.packet_type] for cls in _PACKET_CLASSES
                if cls.packet_type in moves}
        for state, moves in _TRANSITIONS[direction].items()
    }


_RECEIVE = _by_class("receive")
_SEND = _by_class("send")

# Packets that may always carry a reason string / user properties (spec 3.1.2.11.7).
_PROBLEM_INFORMATION_ALWAYS = (_P.PUBLISH, _P.CONNACK, _P.DISCONNECT)


def client_id_must_be_rejected(connect: Connect) -> bool:
    """Whether the protocol itself requires refusing this CONNECT's client identifier.

    True for MQTT 3.1.1 with an empty client id and clean session 0 (spec MQTT-3.1.3-8),
    and for MQTT 3.1 with an empty client id or one over 23 characters. The caller answers
    with reason code CLIENT_IDENTIFIER_NOT_VALID (return code 2). Any other empty client
    id is accepted by the protocol: the server assigns one (``connack_for`` announces it
    to MQTT 5 clients).
    """
    if connect.protocol_version == MQTT_3_1:
        return not 1 <= len(connect.client_id) <= 23
    return connect.protocol_version == MQTT_3_1_1 and not connect.client_id and (
        not connect.clean_start
    )


class ServerConnection:
    """Protocol state of one client connection, server side.

    :param limits: what this server accepts and announces.
    """

    __slots__ = ("_connack_sent", "_decoder", "_inbound_in_flight", "_receivable",
                 "_request_problem_information", "_sendable", "_state", "_topic_aliases",
                 "client_id", "client_maximum_packet_size", "client_receive_maximum",
                 "keep_alive", "limits", "protocol_version", "session_expiry_interval")

    def __init__(self, limits: ServerLimits = ServerLimits()) -> None:
        self.limits = limits
        self._state = ConnectionState.AWAITING_CONNECT
        self._receivable = _RECEIVE[self._state]
        self._sendable = _SEND[self._state]
        self.protocol_version: int | None = None
        self.client_id: str | None = None
        #: The client's Receive Maximum (outbound QoS 1/2 in flight); 65535 if absent.
        self.client_receive_maximum = 0xFFFF
        #: The client's Maximum Packet Size; ``None`` means no limit beyond the protocol's.
        self.client_maximum_packet_size: int | None = None
        #: The effective keep-alive in seconds after clamping (0 = none).
        self.keep_alive = 0
        #: The effective session expiry interval in seconds after clamping.
        self.session_expiry_interval = 0
        self._decoder = PacketDecoder(max_packet_size=limits.max_packet_size)
        self._connack_sent = False
        self._request_problem_information = True
        self._topic_aliases: dict[int, str] | None = None  # created by the first alias
        # Packet ids of inbound QoS 1/2 PUBLISHes we have not finished acknowledging.
        self._inbound_in_flight: set[int] | None = None  # created by the first one

    @property
    def state(self) -> ConnectionState:
        """Where the connection is (see the module docstring)."""
        return self._state

    def _enter(self, state: ConnectionState) -> None:
        self._state = state
        self._receivable = _RECEIVE[state]
        self._sendable = _SEND[state]

    # -- receiving -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Packet]:
        """Decode and check the packets completed by ``data``.

        A PUBLISH that used a topic alias is returned with its topic filled in and its
        ``topic_alias`` property removed. A DISCONNECT from the client moves the state to
        CLIENT_DISCONNECTED; bytes after it, in this call or later, are ignored.

        :returns: the complete packets, in order (possibly none).
        :raises RemoteProtocolError: the client broke the protocol; ``reason_code`` says
            why (see :meth:`error_response`). The state is then CLOSED, and packets
            decoded earlier in the same call are not returned.
        :raises UnsupportedProtocolVersionError: a CONNECT with an unknown protocol level.
        :raises LocalProtocolError: the connection is already CLOSED.
        """
        if self._state is ConnectionState.CLOSED:
            raise LocalProtocolError("receive_data on a closed connection")
        if self._state is ConnectionState.CLIENT_DISCONNECTED:
            return []  # the client said goodbye: whatever follows is ignored
        decoder = self._decoder
        decoder.feed(data)
        try:
            # After a DISCONNECT the client closes: whatever follows is ignored.
            packets = [self._receive(packet)
                       for packet in decoder.drain(until_disconnect=True)]
        except RemoteProtocolError:
            self._enter(ConnectionState.CLOSED)
            raise
        return packets

    def _receive(self, packet: Packet) -> Packet:
        next_state = self._receivable.get(type(packet))
        if next_state is None:
            packet_type = packet.packet_type
            if self._state is ConnectionState.AWAITING_CONNECT:
                raise RemoteProtocolError(f"{packet_type.name} before CONNECT")
            if packet_type is PacketType.CONNECT:
                raise RemoteProtocolError("second CONNECT on one connection")
            raise RemoteProtocolError(f"{packet_type.name} is not allowed from a client")
        if isinstance(packet, Publish):
            packet = self._receive_publish(packet)
        elif isinstance(packet, Connect):
            self._receive_connect(packet)
        elif isinstance(packet, Subscribe) and self.protocol_version == MQTT_5:
            self._check_subscribe(packet)
        if next_state is not self._state:
            self._enter(next_state)
        return packet

    def _receive_connect(self, connect: Connect) -> None:
        self.protocol_version = connect.protocol_version
        self.client_id = connect.client_id
        self.keep_alive = self._effective_keep_alive(connect.keep_alive)
        self.session_expiry_interval = self._effective_session_expiry(connect)
        properties = connect.properties
        if connect.protocol_version == MQTT_5:
            if properties.receive_maximum is not None:
                self.client_receive_maximum = properties.receive_maximum
            self.client_maximum_packet_size = properties.maximum_packet_size
            self._request_problem_information = properties.request_problem_information != 0

    def _receive_publish(self, publish: Publish) -> Publish:
        limits = self.limits
        qos = publish.qos
        if qos > limits.maximum_qos:
            raise RemoteProtocolError(f"PUBLISH with QoS {qos} above the maximum QoS "
                                      f"{limits.maximum_qos}", ReasonCode.QOS_NOT_SUPPORTED)
        if publish.retain and not limits.retain_available:
            raise RemoteProtocolError("retained PUBLISH while retain is not available",
                                      ReasonCode.RETAIN_NOT_SUPPORTED)
        if self.protocol_version != MQTT_5:
            return publish
        properties = publish.properties
        if properties is not NO_PROPERTIES:
            if properties.subscription_identifiers:
                raise RemoteProtocolError("PUBLISH from a client with a subscription identifier")
            alias = properties.topic_alias
            if alias is not None:
                publish = self._resolve_topic_alias(publish, alias, properties)
        if qos:
            in_flight = self._inbound_in_flight
            if in_flight is None:
                in_flight = self._inbound_in_flight = set()
            packet_id = publish.packet_id
            assert packet_id is not None
            if packet_id not in in_flight:
                if len(in_flight) >= limits.receive_maximum:
                    raise RemoteProtocolError(
                        f"more than {limits.receive_maximum} QoS 1/2 PUBLISHes in flight",
                        ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
                    )
                in_flight.add(packet_id)
        return publish

    def _resolve_topic_alias(self, publish: Publish, alias: int,
                             properties: Properties) -> Publish:
        if alias > self.limits.topic_alias_maximum:
            raise RemoteProtocolError(
                f"topic alias {alias} above the maximum {self.limits.topic_alias_maximum}",
                ReasonCode.TOPIC_ALIAS_INVALID,
            )
        topic = publish.topic
        aliases = self._topic_aliases
        if topic:
            if aliases is None:
                aliases = self._topic_aliases = {}
            aliases[alias] = topic
        else:
            known = None if aliases is None else aliases.get(alias)
            if known is None:
                raise RemoteProtocolError(f"unknown topic alias {alias}")
            topic = known
        stripped = replace(properties, topic_alias=None)
        if stripped == NO_PROPERTIES:
            stripped = NO_PROPERTIES
        return replace(publish, topic=topic, properties=stripped)

    def _check_subscribe(self, subscribe: Subscribe) -> None:
        limits = self.limits
        if subscribe.properties.subscription_identifiers and (
            not limits.subscription_identifier_available
        ):
            raise RemoteProtocolError("subscription identifiers are not available",
                                      ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED)
        for subscription in subscribe.subscriptions:
            topic_filter = subscription.topic_filter
            if not limits.wildcard_subscription_available and has_wildcard(topic_filter):
                raise RemoteProtocolError("wildcard subscriptions are not available",
                                          ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED)
            if not limits.shared_subscription_available and (
                topic_filter.startswith(SHARED_PREFIX)
            ):
                raise RemoteProtocolError("shared subscriptions are not available",
                                          ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)

    # -- limits ----------------------------------------------------------------------------

    def _effective_keep_alive(self, requested: int) -> int:
        """Clamp into [min_keep_alive, max_keep_alive]; 0 (no keep-alive) counts as infinite."""
        low, high = self.limits.min_keep_alive, self.limits.max_keep_alive
        if high and (requested == 0 or requested > high):
            return high
        if low and 0 < requested < low:
            return low
        return requested

    def _effective_session_expiry(self, connect: Connect) -> int:
        if connect.protocol_version == MQTT_5:
            requested = connect.properties.session_expiry_interval or 0
        else:
            requested = 0 if connect.clean_start else _NO_EXPIRY
        return min(requested, self.limits.max_session_expiry)

    # -- sending ---------------------------------------------------------------------------

    def connack_for(
        self,
        connect: Connect,
        *,
        session_present: bool,
        reason_code: ReasonCode = ReasonCode.SUCCESS,
        assigned_client_id: str | None = None,
        reason_string: str | None = None,
    ) -> Connack:
        """Build the CONNACK answering ``connect``; send it with :meth:`send`.

        For MQTT 5 a successful CONNACK announces the server's limits: receive maximum,
        maximum packet size, topic alias maximum, maximum QoS (if below 2), retain and
        wildcard / shared / subscription-identifier availability (if not available), server
        keep alive and session expiry interval (if clamped), the assigned client identifier
        and the reason string. An error CONNACK carries only the reason string, and never
        session present. MQTT 3.1/3.1.1 CONNACKs carry no properties.

        ``assigned_client_id``, when given, also becomes :attr:`client_id`.
        """
        if assigned_client_id is not None:
            self.client_id = assigned_client_id
        v5 = connect.protocol_version == MQTT_5
        if reason_code.is_error:
            properties = NO_PROPERTIES
            if v5 and reason_string is not None:
                properties = Properties(reason_string=reason_string)
            return Connack(False, reason_code, properties)
        if not v5:
            return Connack(session_present, reason_code)
        limits = self.limits
        keep_alive = self._effective_keep_alive(connect.keep_alive)
        requested_expiry = connect.properties.session_expiry_interval or 0
        session_expiry = self._effective_session_expiry(connect)
        properties = Properties(
            receive_maximum=limits.receive_maximum if limits.receive_maximum != 0xFFFF else None,
            maximum_packet_size=(
                limits.max_packet_size if limits.max_packet_size < MAX_PACKET_SIZE else None
            ),
            topic_alias_maximum=limits.topic_alias_maximum or None,
            maximum_qos=limits.maximum_qos if limits.maximum_qos < 2 else None,
            retain_available=None if limits.retain_available else 0,
            wildcard_subscription_available=(
                None if limits.wildcard_subscription_available else 0
            ),
            shared_subscription_available=None if limits.shared_subscription_available else 0,
            subscription_identifier_available=(
                None if limits.subscription_identifier_available else 0
            ),
            server_keep_alive=keep_alive if keep_alive != connect.keep_alive else None,
            session_expiry_interval=(
                session_expiry if session_expiry != requested_expiry else None
            ),
            assigned_client_identifier=assigned_client_id,
            reason_string=reason_string,
        )
        return Connack(session_present, reason_code, properties)

    def send(self, packet: Packet) -> bytes:
        """Encode ``packet`` for this client and advance the state.

        Sending a PUBACK, a PUBCOMP, or a PUBREC with an error code frees the client's
        receive-maximum slot of that packet identifier.

        :returns: the bytes to write. ``b""`` when nothing must be written: a PUBLISH larger
            than the client's Maximum Packet Size (the message is dropped for this client,
            as the spec requires), or a DISCONNECT to an MQTT 3.1/3.1.1 client (which has
            none; the state still becomes CLOSED).
        :raises LocalProtocolError: the packet is not one a server sends in this state (the
            first must be a CONNACK; nothing after CLOSED), a PUBLISH with a topic alias
            (we never use them outbound), a reply that exceeds the client's Maximum Packet
            Size even without reason string and user properties, or any encoding error
            (see :func:`encode`).
        """
        next_state = self._sendable.get(type(packet))
        packet_type = packet.packet_type
        if next_state is None:
            raise LocalProtocolError(
                f"cannot send {packet_type.name} in state {self._state.name}"
            )
        if self._state is ConnectionState.CLIENT_DISCONNECTED and (
                isinstance(packet, Connack) == self._connack_sent):
            raise LocalProtocolError(
                f"cannot send {packet_type.name} after the client's DISCONNECT "
                + ("(the CONNACK was sent)" if self._connack_sent else "before the CONNACK"))
        version = self.protocol_version
        assert version is not None
        if isinstance(packet, Publish):
            if packet.properties.topic_alias is not None:
                raise LocalProtocolError("topic aliases are not used from the server")
            data = encode(packet, version)
            limit = self.client_maximum_packet_size
            if limit is not None and len(data) > limit:
                return b""
            return data
        if isinstance(packet, Connack):
            self._connack_sent = True
            if packet.reason_code.is_error:
                next_state = ConnectionState.CLOSED
        elif isinstance(packet, Disconnect):
            self._enter(next_state)
            if version != MQTT_5:
                return b""
        elif self._inbound_in_flight and (
            isinstance(packet, (Puback, Pubcomp))
            or (isinstance(packet, Pubrec) and packet.reason_code.is_error)
        ):
            self._inbound_in_flight.discard(packet.packet_id)
        if version == MQTT_5:
            data = self._encode_reply(packet, packet_type)
        else:
            data = encode(packet, version)
        if next_state is not self._state:
            self._enter(next_state)
        return data

    def _encode_reply(self, packet: Packet, packet_type: PacketType) -> bytes:
        properties: Properties = getattr(packet, "properties", NO_PROPERTIES)
        optional = properties.reason_string is not None or bool(properties.user_properties)
        if optional and not self._request_problem_information and (
            packet_type not in _PROBLEM_INFORMATION_ALWAYS
        ):
            packet = _without_problem_information(packet)
            optional = False
        data = encode(packet, MQTT_5)
        limit = self.client_maximum_packet_size
        if limit is not None and len(data) > limit:
            if optional:
                data = encode(_without_problem_information(packet), MQTT_5)
            if len(data) > limit:
                raise LocalProtocolError(
                    f"{packet_type.name} of {len(data)} bytes exceeds the client's maximum "
                    f"packet size {limit}"
                )
        return data

    def error_response(self, error: RemoteProtocolError) -> bytes:
        """The bytes to write before closing the connection after ``error``.

        Before the CONNACK: an MQTT 5 CONNACK with the error's reason code (mapped to
        UNSPECIFIED_ERROR if a CONNACK cannot carry it). For an unsupported protocol level
        the MQTT 3.1.1 CONNACK with return code 1: the client speaks no version we know, and
        the four-byte 3.1.1 form is the one every MQTT client can read (MQTT-3.1.2-2).
        After the CONNACK: an MQTT 5 DISCONNECT with the reason code (or
        UNSPECIFIED_ERROR). MQTT 3.1/3.1.1 get nothing otherwise: the connection is simply
        closed. Does not change the state.
        """
        if isinstance(error, UnsupportedProtocolVersionError):
            return encode(Connack(reason_code=ReasonCode.UNSUPPORTED_PROTOCOL_VERSION),
                          MQTT_3_1_1)
        if self.protocol_version != MQTT_5:
            return b""
        reason = error.reason_code
        if not self._connack_sent:
            if reason not in CONNACK_REASONS:
                reason = ReasonCode.UNSPECIFIED_ERROR
            return encode(Connack(reason_code=reason), MQTT_5)
        if reason not in DISCONNECT_REASONS:
            reason = ReasonCode.UNSPECIFIED_ERROR
        return encode(Disconnect(reason), MQTT_5)


def _without_problem_information(packet: Packet) -> Packet:
    """``packet`` without reason string and user properties."""
    if isinstance(packet, (Pingreq, Pingresp)):
        return packet
    stripped = replace(packet.properties, reason_string=None, user_properties=())
    return replace(packet, properties=stripped)
