"""RotationService: a thing's certificate replaced by one whose key the device made.

Theory of operation
-------------------
*Start* (:meth:`RotationService.start_rotation`, called by the sweep or an operator): a
rotation record ``STARTED`` for the thing's ACTIVE certificate, and a job for that one
thing whose document (:mod:`._documents`) names the certificate. A thing has at most one
open rotation (``STARTED`` or ``ISSUED``).

*Issue* (:meth:`RotationService.issue_for_rotation`, called by the broker's door for
``$aws/certificates/create-from-csr/<format>``): a CSR published with the connection of
a certificate that an open rotation replaces is a rotation request; any other CSR is
none of this service's business (``None``: fleet provisioning answers it, as AWS
would). The request is refused when

* the certificate is not the one rotated, but the client id names a thing with an open
  rotation (a device asking for another thing's certificate) — 403;
* the rotation already issued its certificate — 409 (one certificate per rotation);
* the thing was issued a rotation certificate less than ``min_interval`` ago — 429
  (no certificate farming: a device rotates at most once per period);
* the job execution is no longer pending, or the certificate is no longer on the thing;
* the CSR is unreadable, its key is weak (the registry's key rules), or it is the key of
  the certificate it replaces — 400.

Otherwise the rotation is claimed (``STARTED`` → ``ISSUED`` by a conditional update: two
concurrent requests, one certificate), the certificate issued ``PENDING_ACTIVATION``,
attached to the thing, given every policy of the old certificate, and made ``ACTIVE``
last; a step that fails undoes the others and releases the claim.

*Progress* (:meth:`RotationService.certificate_connected`,
:meth:`RotationService.reconcile_thing`, :meth:`RotationService.run_due`): the rotation
is ``CONFIRMED`` once both the new certificate has connected and the job execution is
``SUCCEEDED``; the old certificate is then deactivated after the policy's deactivation
grace and revoked after its revocation grace (both counted from the confirmation). A
job execution that ends any other way (FAILED, REJECTED, TIMED_OUT, CANCELED, REMOVED)
fails the rotation with the execution's status and details as the reason: the old
certificate is left as it is, and a new certificate already issued is deactivated.

Every step is a trail record (service ``bastion``, key ``system:rotation`` for
Bastion's own steps, ``certificate/<id>`` for the device's requests), committed with the
change it records.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.jobs import ExecutionStatus, JobService
from bastion.jobs import ResourceNotFoundError as JobNotFound
from bastion.registry import (
    CertificateStatus,
    IdentityService,
    PolicyService,
    RegistryError,
    RegistryService,
)
from bastion.store import CertificateRotationRow, PolicyTarget, Store

from ._documents import rotation_document
from ._errors import (
    ConflictError,
    InvalidRequestError,
    NotAuthorizedError,
    ResourceNotFoundError,
    RotationError,
    ThrottlingError,
)
from ._model import OPEN_STATUSES, IssuedCertificate, Rotation, RotationStatus
from ._policies import RotationPolicies

log = logging.getLogger("bastion.rotation")

JOB_CREATION_GRACE = 60.0
"""Seconds after a rotation starts during which a missing job is one being created."""

SYSTEM_KEY: Final = "system:rotation"
TRAIL_SERVICE: Final = "bastion"
CERT: Final = "cert"
BATCH: Final = 500


class RotationTrail(Protocol):
    """What the service needs of :class:`bastion.trail.Trail`."""

    def record_with_change(self, *, caller: Any, access_key_id: str, source_ip: str,
                           service: str, operation: str, parameters: Mapping[str, object],
                           outcome: str, error_code: str | None, http_status: int
                           ) -> Any: ...

    def append(self, *, caller: Any, access_key_id: str, source_ip: str, service: str,
               operation: str, parameters: Mapping[str, object], outcome: str,
               error_code: str | None, http_status: int) -> Any: ...


@dataclass(frozen=True, slots=True)
class RotationSettings:
    """Fleet-wide rules of rotation jobs.

    :ivar min_interval: a thing is issued at most one rotation certificate per interval.
    :ivar job_timeout_minutes: the in-progress timeout of rotation jobs (AWS: 1 to 10080).
    :raises ValueError: a negative interval or a timeout out of range.
    """

    min_interval: timedelta = timedelta(days=30)
    job_timeout_minutes: int = 60

    def __post_init__(self) -> None:
        if self.min_interval < timedelta(0):
            raise ValueError("min_interval must not be negative")
        if not 1 <= self.job_timeout_minutes <= 10080:
            raise ValueError("job_timeout_minutes must be from 1 to 10080")


class RotationService:
    """Certificate rotation (see the module docstring).

    :param policies: the rotation policies (their graces apply when a rotation is
        confirmed).
    :param trail: where every step is recorded.
    :param clock: the time rotations are judged by (tests move one by hand).
    """

    def __init__(self, store: Store, *, registry: RegistryService, identity: IdentityService,
                 policies: PolicyService, jobs: JobService, rotation_policies: RotationPolicies,
                 trail: RotationTrail, account: Account,
                 settings: RotationSettings | None = None, clock: Clock | None = None
                 ) -> None:
        self._store = store
        self._registry = registry
        self._identity = identity
        self._policies = policies
        self._jobs = jobs
        self.policies = rotation_policies
        self._trail = trail
        self._account = account
        self.settings = settings or RotationSettings()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._awaited: set[str] = set()
        self._awaited_lock = threading.Lock()

    @property
    def store(self) -> Store:
        return self._store

    def now(self) -> datetime:
        return self._clock.now()

    def certificate_arn(self, certificate_id: str) -> str:
        return self._account.arn(f"cert/{certificate_id}")

    # -- reading ----------------------------------------------------------------------------

    def describe_rotation(self, rotation_id: str) -> Rotation:
        """:raises ResourceNotFoundError: no such rotation."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.rotations.get(rotation_id)
        if row is None:
            raise ResourceNotFoundError(f"Rotation {rotation_id} does not exist")
        return _rotation(row)

    def list_rotations(self, *, thing_name: str | None = None, limit: int = 100
                       ) -> list[Rotation]:
        """Rotations, newest first (of one thing, when given)."""
        with self._store.transaction(readonly=True) as uow:
            return [_rotation(row) for row in uow.rotations.listing(thing_name=thing_name,
                                                                    limit=limit)]

    def open_rotation(self, thing_name: str) -> Rotation | None:
        with self._store.transaction(readonly=True) as uow:
            rows = uow.rotations.of_thing(thing_name, statuses=OPEN_STATUSES, limit=1)
        return _rotation(rows[0]) if rows else None

    # -- start ------------------------------------------------------------------------------

    def start_rotation(self, thing_name: str, *, certificate_id: str | None = None,
                       reason: str = "operator") -> Rotation:
        """Start rotating ``thing_name``'s certificate: a rotation record and its job.

        :param certificate_id: the certificate to replace; default: the thing's only
            ACTIVE certificate.
        :param reason: why (recorded in the trail).
        :raises ResourceNotFoundError: no such thing or certificate.
        :raises InvalidRequestError: the certificate is not ACTIVE or not on the thing, or
            the thing has no or several ACTIVE certificates and none was named.
        :raises ConflictError: the thing has a rotation under way.
        """
        now = self.now()
        with self._store.transaction(readonly=True) as uow:
            if uow.things.get(thing_name) is None:
                raise ResourceNotFoundError(f"Thing {thing_name} does not exist")
            attached = [ident for kind, ident in _principals(uow, thing_name) if kind == CERT]
            active = [ident for ident in attached
                      if (found := uow.certificates.get(ident)) is not None
                      and found.status == CertificateStatus.ACTIVE.value]
            open_rows = uow.rotations.of_thing(thing_name, statuses=OPEN_STATUSES, limit=1)
        if certificate_id is None:
            if len(active) != 1:
                raise InvalidRequestError(
                    f"Thing {thing_name} has {len(active)} ACTIVE certificates; name the "
                    "one to rotate")
            certificate_id = active[0]
        elif certificate_id not in attached:
            raise InvalidRequestError(
                f"Certificate {certificate_id} is not attached to thing {thing_name}")
        elif certificate_id not in active:
            raise InvalidRequestError(f"Certificate {certificate_id} is not ACTIVE")
        if open_rows:
            raise ConflictError(f"Thing {thing_name} has a rotation under way "
                                f"({open_rows[0].rotation_id})")
        rotation_id = str(uuid.uuid4())
        job_id = f"rotate-certificate-{uuid.uuid4().hex}"
        row = CertificateRotationRow(rotation_id, thing_name, job_id, certificate_id, None,
                                     RotationStatus.STARTED.value, None, now)
        with self._recorded("StartCertificateRotation", {
                "rotationId": rotation_id, "thingName": thing_name, "jobId": job_id,
                "certificateId": certificate_id, "reason": reason}), \
                self._store.transaction() as uow:
            uow.rotations.insert(row)
        try:
            self._jobs.create_job(
                job_id, targets=[self._jobs.thing_arn(thing_name)],
                document=rotation_document(rotation_id=rotation_id,
                                           certificate_id=certificate_id),
                description=f"Certificate rotation {rotation_id}",
                timeout_config={"inProgressTimeoutInMinutes":
                                self.settings.job_timeout_minutes})
        except Exception as exc:
            self._fail(row, f"the rotation job could not be created: {exc}")
            raise
        log.info("rotation %s of thing %s (certificate %s) started: job %s", rotation_id,
                 thing_name, certificate_id, job_id)
        return _rotation(row)

    # -- issue ------------------------------------------------------------------------------

    def issue_for_rotation(self, certificate_signing_request: object, *,
                           certificate_id: str, client_id: str, source_ip: str = ""
                           ) -> IssuedCertificate | None:
        """A CSR published over MQTT (see the module docstring): the new certificate when
        it is a rotation request, ``None`` when it is none.

        :param certificate_id: the certificate of the connection that published it.
        :param client_id: that connection's client id.
        :raises RotationError: the request is refused (each refusal is in the trail).
        """
        try:
            return self._issue(certificate_signing_request, certificate_id, client_id,
                               source_ip)
        except RotationError as error:
            self._trail.append(
                caller=None, access_key_id=f"certificate/{certificate_id}",
                source_ip=source_ip, service=TRAIL_SERVICE,
                operation="IssueRotationCertificate",
                parameters={"certificateId": certificate_id, "clientId": client_id},
                outcome="denied", error_code=error.aws_error_type,
                http_status=error.http_status)
            log.info("rotation CSR of certificate %s (client %r) refused: %s",
                     certificate_id, client_id, error.message)
            raise

    def _issue(self, csr_text: object, certificate_id: str, client_id: str,
               source_ip: str) -> IssuedCertificate | None:
        now = self.now()
        with self._store.transaction(readonly=True) as uow:
            mine = uow.rotations.of_old_certificate(
                certificate_id, OPEN_STATUSES | {RotationStatus.ISSUED.value})
            others = [] if mine or not client_id else uow.rotations.of_thing(
                client_id, statuses=OPEN_STATUSES, limit=1)
        if not mine:
            if others:
                raise NotAuthorizedError(
                    f"Certificate {certificate_id} is not the certificate that the "
                    f"rotation of thing {client_id} replaces")
            return None
        row = mine[0]
        if row.status != RotationStatus.STARTED.value:
            raise ConflictError(
                f"Rotation {row.rotation_id} of thing {row.thing_name} already issued its "
                "certificate; a rotation issues one certificate")
        with self._store.transaction(readonly=True) as uow:
            last = uow.rotations.last_issued_for(row.thing_name)
            on_thing = uow.thing_principals.is_attached(row.thing_name, CERT, certificate_id)
            policy_names = sorted(uow.policies.names_attached_to(
                PolicyTarget(CERT, certificate_id)))
        interval = self.settings.min_interval
        if last is not None and now - last < interval:
            raise ThrottlingError(
                f"Thing {row.thing_name} was issued a rotation certificate at "
                f"{last.isoformat()}; it may rotate again from "
                f"{(last + interval).isoformat()}")
        if not on_thing:
            raise NotAuthorizedError(
                f"Certificate {certificate_id} is no longer attached to thing {row.thing_name}")
        self._require_pending_execution(row)
        public_key = _csr_public_key(csr_text)
        old = self._identity.describe_certificate(certificate_id)
        if _same_key(public_key, old.certificate_pem):
            raise InvalidRequestError("The CSR's key is the key of the certificate it "
                                      "replaces; generate a new key on the device")
        with self._store.transaction() as uow:
            claimed = uow.rotations.update(row.rotation_id,
                                           only_if_status={RotationStatus.STARTED.value},
                                           status=RotationStatus.ISSUED.value, issued_at=now)
        if not claimed:
            raise ConflictError(f"Rotation {row.rotation_id} already issued its certificate")
        try:
            issued = self._issue_attached(str(csr_text), row.thing_name, policy_names)
        except BaseException:
            with self._store.transaction() as uow:
                uow.rotations.update(row.rotation_id,
                                     only_if_status={RotationStatus.ISSUED.value},
                                     status=RotationStatus.STARTED.value, issued_at=None)
            raise
        with self._awaited_lock:
            self._awaited.add(issued)
        with self._recorded("IssueRotationCertificate", {
                "rotationId": row.rotation_id, "thingName": row.thing_name,
                "jobId": row.job_id, "oldCertificateId": certificate_id,
                "newCertificateId": issued, "policyNames": policy_names,
                "clientId": client_id}, access_key_id=f"certificate/{certificate_id}",
                source_ip=source_ip), self._store.transaction() as uow:
            uow.rotations.update(row.rotation_id, new_certificate_id=issued)
        record = self._identity.describe_certificate(issued)
        log.info("rotation %s: certificate %s issued to thing %s", row.rotation_id, issued,
                 row.thing_name)
        return IssuedCertificate(row.rotation_id, row.thing_name, issued,
                                 record.certificate_arn, record.certificate_pem,
                                 tuple(policy_names))

    def _require_pending_execution(self, row: CertificateRotationRow) -> None:
        try:
            execution = self._jobs.describe_job_execution(row.job_id, row.thing_name)
        except JobNotFound:
            execution = None
        if execution is None or execution.status.is_terminal:
            status = "gone" if execution is None else execution.status.value
            self._fail(row, f"the job execution is {status}")
            raise ConflictError(f"The job execution of rotation {row.rotation_id} is "
                                f"{status}; start another rotation")

    def _issue_attached(self, csr: str, thing_name: str, policy_names: list[str]) -> str:
        """Issue, attach to the thing with the policies, activate; undo on failure."""
        identity = self._identity
        try:
            record = identity.issue_certificate_from_csr(
                csr, status=CertificateStatus.PENDING_ACTIVATION)
        except RegistryError as exc:
            raise InvalidRequestError(exc.message) from None
        arn = record.certificate_arn
        try:
            self._registry.attach_thing_principal(thing_name, arn)
            for name in policy_names:
                self._policies.attach_policy(name, arn)
            identity.update_certificate(record.certificate_id, CertificateStatus.ACTIVE)
        except BaseException:
            self._discard(record.certificate_id, thing_name, policy_names)
            raise
        return record.certificate_id

    def _discard(self, certificate_id: str, thing_name: str, policy_names: list[str]) -> None:
        arn = self.certificate_arn(certificate_id)
        try:
            self._identity.update_certificate(certificate_id, CertificateStatus.INACTIVE)
            for name in policy_names:
                self._policies.detach_policy(name, arn)
            self._registry.detach_thing_principal(thing_name, arn)
            self._identity.delete_certificate(certificate_id, force_delete=True)
        except RegistryError as exc:
            log.warning("certificate %s of a failed rotation left in place: %s",
                        certificate_id, exc.message)

    # -- progress ---------------------------------------------------------------------------

    def refresh_awaited(self) -> None:
        """Read which new certificates have not connected yet (another node may have
        issued them)."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.rotations.with_status({RotationStatus.ISSUED.value})
        awaited = {row.new_certificate_id for row in rows
                   if row.new_certificate_id and row.new_connected_at is None}
        with self._awaited_lock:
            self._awaited = awaited

    def awaits(self, certificate_id: str) -> bool:
        """Whether ``certificate_id`` is a new certificate not seen connecting yet (cheap;
        safe on the event loop)."""
        with self._awaited_lock:
            return certificate_id in self._awaited

    def certificate_connected(self, certificate_id: str, when: datetime) -> None:
        """The broker saw ``certificate_id`` connect: note it if a rotation issued it."""
        with self._awaited_lock:
            self._awaited.discard(certificate_id)
        with self._store.transaction() as uow:
            row = uow.rotations.by_new_certificate(certificate_id)
            if row is None or row.status != RotationStatus.ISSUED.value or (
                    row.new_connected_at is not None):
                return
            uow.rotations.update(row.rotation_id, only_if_status={RotationStatus.ISSUED.value},
                                 new_connected_at=when)
        log.info("rotation %s: the new certificate of thing %s connected", row.rotation_id,
                 row.thing_name)
        self._reconcile(row.rotation_id)

    def reconcile_thing(self, thing_name: str) -> None:
        """Bring the thing's open rotations up to date with their job executions."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.rotations.of_thing(thing_name, statuses=OPEN_STATUSES)
        for row in rows:
            self._reconcile(row.rotation_id)

    def _job_exists(self, job_id: str) -> bool:
        try:
            self._jobs.describe_job(job_id)
        except JobNotFound:
            return False
        return True

    def _reconcile(self, rotation_id: str) -> None:
        with self._store.transaction(readonly=True) as uow:
            row = uow.rotations.get(rotation_id)
        if row is None or row.status not in OPEN_STATUSES:
            return
        try:
            execution = self._jobs.describe_job_execution(row.job_id, row.thing_name)
        except JobNotFound:
            execution = None
        if execution is None:
            if row.status == RotationStatus.STARTED.value \
                    and (self.now() - row.created_at).total_seconds() < JOB_CREATION_GRACE \
                    and not self._job_exists(row.job_id):
                # start_rotation stores the rotation before it creates the job (and fails
                # the rotation itself when that fails): a round between the two sees no
                # job yet, which is not a deleted one
                return
            self._fail(row, "the job execution was deleted")
            return
        status = execution.status
        if not status.is_terminal:
            return
        if status is not ExecutionStatus.SUCCEEDED:
            details = ", ".join(f"{k}={v}" for k, v in sorted(execution.status_details.items()))
            self._fail(row, f"the job execution is {status.value}"
                       + (f" ({details})" if details else ""))
            return
        if row.status == RotationStatus.STARTED.value or row.new_certificate_id is None:
            self._fail(row, "the job execution SUCCEEDED but no certificate was issued")
            return
        now = self.now()
        connected = row.new_connected_at
        if connected is None:
            with self._store.transaction(readonly=True) as uow:
                # A new certificate's every session is one after its issue.
                seen = uow.connections.of_certificate(row.new_certificate_id)
            connected = min((s.connected_at for s in seen), default=None)
        with self._store.transaction() as uow:
            uow.rotations.update(row.rotation_id, only_if_status={RotationStatus.ISSUED.value},
                                 succeeded_at=row.succeeded_at or now,
                                 new_connected_at=connected)
        if connected is None:
            log.info("rotation %s: job SUCCEEDED; waiting for the new certificate to "
                     "connect before the old one is retired", row.rotation_id)
            return
        policy = self.policies.for_thing(row.thing_name)
        deactivate_at = now + policy.deactivate_after
        revoke_at = now + max(policy.revoke_after, policy.deactivate_after)
        with self._recorded("ConfirmCertificateRotation", {
                "rotationId": row.rotation_id, "thingName": row.thing_name,
                "newCertificateId": row.new_certificate_id,
                "oldCertificateId": row.old_certificate_id,
                "deactivateAt": deactivate_at.isoformat(), "revokeAt": revoke_at.isoformat(),
                "policy": policy.label}), self._store.transaction() as uow:
            uow.rotations.update(row.rotation_id,
                                 only_if_status={RotationStatus.ISSUED.value},
                                 status=RotationStatus.CONFIRMED.value,
                                 deactivate_at=deactivate_at, revoke_at=revoke_at)
        log.info("rotation %s confirmed: certificate %s is deactivated at %s and revoked at "
                 "%s", row.rotation_id, row.old_certificate_id, deactivate_at.isoformat(),
                 revoke_at.isoformat())

    def _fail(self, row: CertificateRotationRow, reason: str) -> None:
        """Fail an open rotation: the old certificate stays, a new one is deactivated."""
        now = self.now()
        with self._store.transaction(readonly=True) as uow:
            current = uow.rotations.get(row.rotation_id)
        if current is None or current.status not in OPEN_STATUSES:
            return
        with self._recorded("FailCertificateRotation", {
                "rotationId": row.rotation_id, "thingName": row.thing_name,
                "jobId": row.job_id, "reason": reason}), self._store.transaction() as uow:
            changed = uow.rotations.update(row.rotation_id, only_if_status=OPEN_STATUSES,
                                           status=RotationStatus.FAILED.value,
                                           reason=reason, finished_at=now)
        if not changed:
            return
        new = current.new_certificate_id
        log.warning("rotation %s of thing %s failed: %s; certificate %s is kept",
                    row.rotation_id, row.thing_name, reason, row.old_certificate_id)
        if new is not None:
            with self._awaited_lock:
                self._awaited.discard(new)
            self._set_status(new, CertificateStatus.INACTIVE, row,
                             "DeactivateUnconfirmedCertificate")

    def _set_status(self, certificate_id: str, status: CertificateStatus,
                    row: CertificateRotationRow, operation: str) -> bool:
        try:
            current = self._identity.describe_certificate(certificate_id).status
        except RegistryError:
            return False
        if current is status or current is CertificateStatus.REVOKED:
            return True
        params = {"rotationId": row.rotation_id, "thingName": row.thing_name,
                  "certificateId": certificate_id, "newStatus": status.value}
        try:
            with self._recorded(operation, params):
                self._identity.update_certificate(certificate_id, status)
        except RegistryError as exc:
            log.warning("rotation %s: %s of %s refused: %s", row.rotation_id, operation,
                        certificate_id, exc.message)
            return False
        return True

    # -- graces -----------------------------------------------------------------------------

    def run_due(self) -> datetime | None:
        """Reconcile open rotations, then deactivate and revoke the old certificates whose
        graces are over, at the service clock's now. Returns when the next grace ends."""
        self.refresh_awaited()
        with self._store.transaction(readonly=True) as uow:
            open_rows = uow.rotations.with_status(OPEN_STATUSES)
        for row in open_rows:
            self._reconcile(row.rotation_id)
        now = self.now()
        with self._store.transaction(readonly=True) as uow:
            deactivate = uow.rotations.due(RotationStatus.CONFIRMED.value, "deactivate_at", now)
        for row in deactivate:
            if self._set_status(row.old_certificate_id, CertificateStatus.INACTIVE, row,
                                "DeactivateRotatedCertificate"):
                with self._store.transaction() as uow:
                    uow.rotations.update(row.rotation_id,
                                         only_if_status={RotationStatus.CONFIRMED.value},
                                         status=RotationStatus.OLD_DEACTIVATED.value)
        with self._store.transaction(readonly=True) as uow:
            revoke = uow.rotations.due(RotationStatus.OLD_DEACTIVATED.value, "revoke_at", now)
        for row in revoke:
            if self._set_status(row.old_certificate_id, CertificateStatus.REVOKED, row,
                                "RevokeRotatedCertificate"):
                with self._store.transaction() as uow:
                    uow.rotations.update(row.rotation_id,
                                         only_if_status={RotationStatus.OLD_DEACTIVATED.value},
                                         status=RotationStatus.COMPLETED.value,
                                         finished_at=now)
        with self._store.transaction(readonly=True) as uow:
            times = [uow.rotations.next_time(RotationStatus.CONFIRMED.value, "deactivate_at"),
                     uow.rotations.next_time(RotationStatus.OLD_DEACTIVATED.value, "revoke_at")]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    # -- trail ------------------------------------------------------------------------------

    @contextmanager
    def _recorded(self, operation: str, parameters: Mapping[str, object], *,
                  access_key_id: str = SYSTEM_KEY, source_ip: str = "127.0.0.1"
                  ) -> Iterator[None]:
        """A block whose first writing transaction carries this step's trail record."""
        with self._trail.record_with_change(
                caller=None, access_key_id=access_key_id, source_ip=source_ip or "127.0.0.1",
                service=TRAIL_SERVICE, operation=operation, parameters=dict(parameters),
                outcome="allowed", error_code=None, http_status=200):
            yield


def _principals(uow: Any, thing_name: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    token: str | None = None
    while True:
        page, token = uow.thing_principals.principals_page(thing_name, limit=BATCH,
                                                           token=token)
        pairs.extend(page)
        if not token:
            return pairs


def _csr_public_key(text: object) -> object:
    if not isinstance(text, str) or not text:
        raise InvalidRequestError("certificateSigningRequest is required")
    try:
        csr = x509.load_pem_x509_csr(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidRequestError("The certificate signing request is not a PEM CSR") from None
    return csr.public_key()


def _same_key(public_key: object, certificate_pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        mine = public_key.public_bytes(*spki)  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return bool(mine == cert.public_key().public_bytes(*spki))


def _rotation(row: CertificateRotationRow) -> Rotation:
    return Rotation(row.rotation_id, row.thing_name, row.job_id, row.old_certificate_id,
                    row.new_certificate_id, RotationStatus(row.status), row.reason,
                    row.created_at, row.issued_at, row.new_connected_at, row.succeeded_at,
                    row.deactivate_at, row.revoke_at, row.finished_at)
