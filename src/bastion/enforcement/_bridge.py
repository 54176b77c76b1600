"""Registry domain events → live broker sessions.

The registry publishes its events on the bus after each commit, from whatever thread ran
the service call; the bus delivers them on the broker's loop, where
:class:`SecurityEventBridge` picks the sessions each change concerns:

* certificate leaves ACTIVE, is deleted, or its CA leaves ACTIVE → sessions dropped at once;
* policy attached/detached to the certificate, thing (de)attached → sessions of that
  certificate re-bound;
* policy attached/detached to an access key or a role alias → the sessions signed with
  that key, or with temporary credentials of that role alias (MQTT over WebSocket),
  re-bound;
* policy default version changed or policy deleted → sessions using that policy re-bound;
* policy (de)attached to a thing group, group deleted → sessions with a thing re-bound;
* thing updated, deleted, or its group membership changed → sessions of that thing re-bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from ..broker import Broker, Session
from ..events import EventBus
from ..registry import (
    CaCertificateDeleted,
    CaCertificateStatus,
    CaCertificateStatusChanged,
    CertificateDeleted,
    CertificateStatus,
    CertificateStatusChanged,
    PolicyAttachmentChanged,
    PolicyDefaultVersionChanged,
    PolicyDeleted,
    ThingDeleted,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
    ThingPrincipalChanged,
    ThingUpdated,
)
from ._gate import GatePermissions, RegistryGate

log = logging.getLogger("bastion.enforcement")

Selector = Callable[[Session], bool]


def _permissions(session: Session) -> GatePermissions | None:
    p = session.permissions
    return p if isinstance(p, GatePermissions) else None


def _of_certificate(certificate_id: str) -> Selector:
    return lambda s: s.principal.certificate_id == certificate_id


def _of_access_key(access_key_id: str) -> Selector:
    def pick(session: Session) -> bool:
        key = session.principal.key
        return key is not None and not key.role_alias and key.access_key_id == access_key_id
    return pick


def _of_role_alias(role_alias: str) -> Selector:
    def pick(session: Session) -> bool:
        key = session.principal.key
        return key is not None and key.role_alias == role_alias
    return pick


def _of_ca(ca_certificate_id: str) -> Selector:
    def pick(session: Session) -> bool:
        p = _permissions(session)
        return p is not None and p.ca_certificate_id == ca_certificate_id
    return pick


def _using_policy(policy_name: str) -> Selector:
    def pick(session: Session) -> bool:
        p = _permissions(session)
        return p is None or policy_name in p.policy_names
    return pick


def _of_thing(thing_name: str) -> Selector:
    def pick(session: Session) -> bool:
        p = _permissions(session)
        return session.client_id == thing_name or (p is not None and p.thing_name == thing_name)
    return pick


def _with_thing(session: Session) -> bool:
    p = _permissions(session)
    return p is None or p.thing_name is not None


SECURITY_EVENTS: Final = (
    CertificateStatusChanged, CertificateDeleted, CaCertificateStatusChanged,
    CaCertificateDeleted, PolicyAttachmentChanged, PolicyDefaultVersionChanged,
    PolicyDeleted, ThingPrincipalChanged, ThingUpdated, ThingDeleted,
    ThingGroupMembershipChanged, ThingGroupDeleted,
)
"""The registry events that change what a live session may do."""


class SecurityEventBridge:
    """Applies the registry's security events (from the bus) to the broker's live
    sessions. Subscribes on construction; :meth:`close` unsubscribes."""

    def __init__(self, broker: Broker, gate: RegistryGate, bus: EventBus) -> None:
        self._broker = broker
        self._gate = gate
        self._prefix_cert = ":cert/"
        self._prefix_key = ":accesskey/"
        self._prefix_alias = ":rolealias/"
        self._unsubscribe = [bus.subscribe(kind, self.apply) for kind in SECURITY_EVENTS]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def resync(self) -> int:
        """Re-check every session against the registry, as if everything had changed (a
        cluster node whose event feed was cut). Returns how many are re-checked."""
        self._gate.forget_all()
        return self._broker.reauthorize_sessions(lambda session: True)

    def apply(self, event: object) -> None:
        """Apply one registry event (on the broker's loop)."""
        self._gate.invalidate()
        broker = self._broker
        if isinstance(event, CertificateStatusChanged):
            if event.new is not CertificateStatus.ACTIVE:
                broker.drop_sessions(_of_certificate(event.certificate_id),
                                     f"certificate {event.new.value}")
        elif isinstance(event, CertificateDeleted):
            broker.drop_sessions(_of_certificate(event.certificate_id), "certificate deleted")
        elif isinstance(event, CaCertificateStatusChanged):
            if event.new is not CaCertificateStatus.ACTIVE:
                broker.drop_sessions(_of_ca(event.ca_certificate_id),
                                     f"CA {event.new.value}")
        elif isinstance(event, CaCertificateDeleted):
            broker.drop_sessions(_of_ca(event.ca_certificate_id), "CA deleted")
        elif isinstance(event, PolicyAttachmentChanged):
            arn = event.target_arn
            marker = arn.rfind(self._prefix_cert)
            if marker >= 0:
                cert_id = arn[marker + len(self._prefix_cert):]
                broker.reauthorize_sessions(_of_certificate(cert_id))
            elif (marker := arn.find(self._prefix_key)) >= 0:
                broker.reauthorize_sessions(
                    _of_access_key(arn[marker + len(self._prefix_key):]))
            elif (marker := arn.find(self._prefix_alias)) >= 0:
                broker.reauthorize_sessions(
                    _of_role_alias(arn[marker + len(self._prefix_alias):]))
            else:
                broker.reauthorize_sessions(_with_thing)
        elif isinstance(event, (PolicyDefaultVersionChanged, PolicyDeleted)):
            self._gate.forget_policy(event.policy_name)
            broker.reauthorize_sessions(_using_policy(event.policy_name))
        elif isinstance(event, ThingPrincipalChanged):
            marker = event.principal_arn.rfind(self._prefix_cert)
            if marker >= 0:
                cert_id = event.principal_arn[marker + len(self._prefix_cert):]
                broker.reauthorize_sessions(_of_certificate(cert_id))
        elif isinstance(event, (ThingUpdated, ThingDeleted, ThingGroupMembershipChanged)):
            broker.reauthorize_sessions(_of_thing(event.thing_name))
        elif isinstance(event, ThingGroupDeleted):
            for name in event.thing_names:
                broker.reauthorize_sessions(_of_thing(name))
