"""Fleet provisioning on the broker, and the broker side of JITP/JITR.

Theory of operation
-------------------
:class:`ProvisioningTopics` serves AWS IoT's fleet provisioning MQTT API:

* ``$aws/certificates/create/<json|cbor>`` — CreateKeysAndCertificate;
* ``$aws/certificates/create-from-csr/<json|cbor>`` — CreateCertificateFromCsr;
* ``$aws/provisioning-templates/<templateName>/provision/<json|cbor>`` — RegisterThing.

The broker has already authorized the PUBLISH (``iot:Publish`` on the request topic:
a claim certificate's policy reaches these topics and nothing else). ``on_publish`` runs
on the event loop: it hands the request to :class:`~bastion.provisioning.ProvisioningService`
in a worker thread and returns. The answer — ``…/accepted`` with AWS's payload, or
``…/rejected`` with ``{statusCode, errorCode, errorMessage}`` — is encoded like the request
(JSON or CBOR) and delivered **only to the connection that asked**, as AWS does, and only
if it subscribed to the answer's topic and may receive it: an answer can hold a private
key and an ownership token, and several devices often share one claim certificate.

A CreateCertificateFromCsr request published with the connection of a certificate that
a certificate rotation replaces is a rotation request: it is answered by
:meth:`~bastion.rotation.RotationService.issue_for_rotation` (the new certificate,
``ACTIVE`` and attached to the thing with the old one's policies; no ownership token),
and refused on ``…/rejected`` with the rotation's reason. Every other request is fleet
provisioning's.

For the same reason requests are never routed to other subscribers (a RegisterThing
request carries an ownership token), and a client's own PUBLISH to an ``…/accepted`` or
``…/rejected`` topic of these APIs is dropped: nobody may forge the service's answers.

:class:`FirstConnectionRegistration` is the broker's JITP/JITR plug
(:attr:`bastion.enforcement.RegistryGate.first_sight`): for a certificate the registry
does not know, it asks the service to auto-register it, and for JITR publishes AWS's
``$aws/events/certificates/registered/<caCertificateId>`` event.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from bastion.broker import Broker, Message, Principal, Session
from bastion.clock import Clock, SystemClock
from bastion.provisioning import (
    AutoRegistrationOutcome,
    InvalidRequestError,
    ProvisioningError,
    ProvisioningService,
)
from bastion.registry import RegistryError
from bastion.rotation import RotationError, RotationService

from ._answers import InFlight, answer_requester

log = logging.getLogger("bastion.reserved.provisioning")

REPLY_QOS: Final = 1
MAX_IN_FLIGHT: Final = 4
"""Provisioning requests one client may have in progress at once (key generation is
costly); more are rejected at once with 429 Throttling."""
REGISTERED_EVENT_PREFIX: Final = "$aws/events/certificates/registered/"
_FORMATS: Final = ("json", "cbor")
_TEMPLATES_PREFIX: Final = "$aws/provisioning-templates/"


class Operation(enum.Enum):
    CREATE_KEYS_AND_CERTIFICATE = "CreateKeysAndCertificate"
    CREATE_CERTIFICATE_FROM_CSR = "CreateCertificateFromCsr"
    REGISTER_THING = "RegisterThing"


@dataclass(frozen=True, slots=True)
class ProvisioningTopic:
    """A parsed request topic; ``answer`` is ``accepted``/``rejected`` when the topic is
    one of the service's answer topics instead."""

    operation: Operation
    payload_format: str
    template_name: str | None = None
    answer: str | None = None

    @property
    def request(self) -> str:
        if self.operation is Operation.CREATE_KEYS_AND_CERTIFICATE:
            return f"$aws/certificates/create/{self.payload_format}"
        if self.operation is Operation.CREATE_CERTIFICATE_FROM_CSR:
            return f"$aws/certificates/create-from-csr/{self.payload_format}"
        return f"{_TEMPLATES_PREFIX}{self.template_name}/provision/{self.payload_format}"

    @property
    def accepted(self) -> str:
        return f"{self.request}/accepted"

    @property
    def rejected(self) -> str:
        return f"{self.request}/rejected"


def parse_provisioning_topic(topic: str) -> ProvisioningTopic | None:
    """The fleet provisioning request (or answer) a topic names, or ``None``."""
    if not topic.startswith(("$aws/certificates/", _TEMPLATES_PREFIX)):
        return None
    levels = topic.split("/")
    answer: str | None = None
    if levels[-1] in ("accepted", "rejected"):
        answer = levels.pop()
    if len(levels) < 4 or levels[-1] not in _FORMATS:
        return None
    payload_format = levels[-1]
    if levels[:3] == ["$aws", "certificates", "create"] and len(levels) == 4:
        return ProvisioningTopic(Operation.CREATE_KEYS_AND_CERTIFICATE, payload_format,
                                 answer=answer)
    if levels[:3] == ["$aws", "certificates", "create-from-csr"] and len(levels) == 4:
        return ProvisioningTopic(Operation.CREATE_CERTIFICATE_FROM_CSR, payload_format,
                                 answer=answer)
    if len(levels) == 5 and levels[1] == "provisioning-templates" and levels[3] == "provision" \
            and levels[2]:
        return ProvisioningTopic(Operation.REGISTER_THING, payload_format, levels[2],
                                 answer=answer)
    return None


def decode_payload(payload: bytes, payload_format: str) -> dict[str, Any]:
    """A request payload as a mapping (an empty payload is an empty request).

    :raises InvalidRequestError: not a JSON/CBOR map.
    """
    if not payload:
        return {}
    try:
        data = (json.loads(payload.decode("utf-8")) if payload_format == "json"
                else cbor2.loads(payload))
    except (ValueError, UnicodeDecodeError, cbor2.CBORDecodeError):
        raise InvalidRequestError(f"The payload is not valid {payload_format.upper()}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"The payload must be a {payload_format.upper()} object")
    return data


def encode_payload(document: Mapping[str, Any], payload_format: str) -> bytes:
    if payload_format == "cbor":
        return bytes(cbor2.dumps(dict(document)))
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


class ProvisioningTopics:
    """A :class:`~bastion.broker.ReservedTopicHandler` serving fleet provisioning.

    :param broker: the broker the answers are delivered on.
    :param service: the provisioning service (the REST API calls the same one).
    :param rotation: the certificate rotation service (``None``: no rotation requests).
    """

    def __init__(self, broker: Broker, service: ProvisioningService, *,
                 rotation: RotationService | None = None,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._broker = broker
        self.service = service
        self.rotation = rotation
        self._in_flight = InFlight(max_in_flight)

    # -- ReservedTopicHandler -------------------------------------------------------

    def handles(self, topic: str) -> bool:
        return parse_provisioning_topic(topic) is not None

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        request = parse_provisioning_topic(message.topic)
        if request is None:
            return False
        if request.answer is not None:
            log.warning("client %r published on the service topic %r: dropped",
                        session.client_id, message.topic)
            return True
        if not self._in_flight.enter(session.client_id):
            self._answer(session, request.rejected, encode_payload(
                _rejection(429, "Throttling", "Too many requests in progress"),
                request.payload_format))
            return True
        broker.spawn(self._serve(request, bytes(message.payload), session))
        return True

    # -- serving --------------------------------------------------------------------

    async def _serve(self, request: ProvisioningTopic, payload: bytes,
                     session: Session) -> None:
        try:
            await self._serve_one(request, payload, session)
        finally:
            self._in_flight.leave(session.client_id)

    async def _serve_one(self, request: ProvisioningTopic, payload: bytes,
                         session: Session) -> None:
        connection = session.connection
        claim = session.principal.certificate_id
        try:
            data = decode_payload(payload, request.payload_format)
            document = await asyncio.to_thread(self._call, request, data, claim,
                                               session.client_id, session.principal.source_ip)
            topic = request.accepted
        except (ProvisioningError, RotationError) as error:
            status, code = error.rejection()
            document, topic = _rejection(status, code, error.message), request.rejected
        except RegistryError as error:
            document = _rejection(error.http_status,
                                  error.aws_error_type.removesuffix("Exception"),
                                  error.message)
            topic = request.rejected
        except Exception:
            log.exception("%s from client %r failed", request.operation.value,
                          session.client_id)
            document = _rejection(500, "InternalFailure", "An internal error occurred")
            topic = request.rejected
        if session.connection is not connection or connection is None:
            log.info("client %r left before its %s answer", session.client_id,
                     request.operation.value)
            return
        self._answer(session, topic, encode_payload(document, request.payload_format))

    def _call(self, request: ProvisioningTopic, data: Mapping[str, Any], claim: str,
              client_id: str, source_ip: str = "") -> dict[str, Any]:
        service = self.service
        if request.operation is Operation.CREATE_KEYS_AND_CERTIFICATE:
            owned = service.create_keys_and_certificate_for_claim(claim_certificate_id=claim)
            return {"certificateId": owned.certificate_id,
                    "certificatePem": owned.certificate_pem,
                    "privateKey": owned.private_key,
                    "certificateOwnershipToken": owned.certificate_ownership_token}
        if request.operation is Operation.CREATE_CERTIFICATE_FROM_CSR:
            csr = data.get("certificateSigningRequest")
            if self.rotation is not None:
                issued = self.rotation.issue_for_rotation(
                    csr, certificate_id=claim, client_id=client_id, source_ip=source_ip)
                if issued is not None:
                    return {"certificateId": issued.certificate_id,
                            "certificatePem": issued.certificate_pem}
            owned = service.create_certificate_from_csr_for_claim(
                csr, claim_certificate_id=claim)
            return {"certificateOwnershipToken": owned.certificate_ownership_token,
                    "certificateId": owned.certificate_id,
                    "certificatePem": owned.certificate_pem}
        assert request.template_name is not None
        registered = service.register_thing(
            request.template_name,
            certificate_ownership_token=data.get("certificateOwnershipToken"),
            parameters=data.get("parameters"), claim_certificate_id=claim,
            client_id=client_id)
        answer: dict[str, Any] = {"deviceConfiguration": dict(registered.device_configuration)}
        if registered.thing_name is not None:
            answer["thingName"] = registered.thing_name
        return answer

    def _answer(self, session: Session, topic: str, payload: bytes) -> None:
        """Deliver to ``session`` alone, if it subscribed to ``topic`` and may receive it."""
        answer_requester(session, topic, payload, REPLY_QOS)


def _rejection(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "errorCode": code, "errorMessage": message}


class FirstConnectionRegistration:
    """JITP/JITR for the broker's gate: ``await plug(principal)`` for a certificate the
    registry does not know (or that is still ``PENDING_ACTIVATION``).

    :param broker: where the JITR event is published.
    :param service: the provisioning service.
    :param clock: the time of the event's ``timestamp``.
    """

    def __init__(self, broker: Broker, service: ProvisioningService, *,
                 clock: Clock | None = None) -> None:
        self._broker = broker
        self._service = service
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def __call__(self, principal: Principal) -> None:
        if not principal.certificate_der:
            return
        outcome = await asyncio.to_thread(self._service.register_on_first_connection,
                                          principal.certificate_der)
        if outcome is None or outcome.outcome is not AutoRegistrationOutcome.REGISTERED:
            return
        topic = REGISTERED_EVENT_PREFIX + outcome.ca_certificate_id
        event = outcome.registered_event(self._clock.now())
        self._broker.publish(Message(topic, json.dumps(event).encode("utf-8"), REPLY_QOS, False))

