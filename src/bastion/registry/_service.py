"""What every registry service shares: transactions that publish events after commit,
the clock, page-token translation, and turning store rows into values.

Theory of operation of :meth:`ServiceBase._change`: a service method opens a change,
does its reads and writes through the unit of work, and appends the domain events its
writes imply to the change's event list. When the block ends normally the store commits;
only then are the events handed to the ``publish`` sink, in order. If the block raises
(a rule refused the request, the database failed) the transaction rolls back and no event
is published. A sink that raises does not undo a committed change: the error is logged
and the remaining events are still delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.store import (
    AttachedPolicy,
    CaCertificateRow,
    CertificateRow,
    InvalidPageTokenError,
    PolicyTarget,
    Store,
    ThingGroupRow,
    ThingRow,
    ThingTypeRow,
    UnitOfWork,
)

from ..events import EventSink
from ._arns import CA_CERT as CA_CERT_TYPE
from ._arns import CERT, THING, THING_GROUP, THING_TYPE
from ._arns import POLICY as POLICY_TYPE
from ._errors import InvalidRequestError
from ._model import (
    AutoRegistrationStatus,
    CaCertificateRecord,
    CaCertificateStatus,
    CertificateMode,
    CertificateRecord,
    CertificateStatus,
    EffectivePolicy,
    GroupNameAndArn,
    RegistrationConfig,
    Thing,
    ThingGroup,
    ThingType,
    Validity,
)

_log = logging.getLogger("bastion.registry")


def _discard(event: object) -> None:
    pass


class ServiceBase:
    """Construction and plumbing shared by the registry services.

    :param store: an open :class:`~bastion.store.Store`.
    :param account: the region and account the ARNs name.
    :param publish: receives each domain event after its transaction commits.
    :param clock: the current time; tests pass one they move by hand.
    :raises TypeError: ``store`` is not a Store, ``account`` not an Account, or
        ``publish`` not callable.
    """

    __slots__ = ("_account", "_clock", "_publish", "_store")

    def __init__(
        self,
        store: Store,
        *,
        account: Account | None = None,
        publish: EventSink | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if publish is not None and not callable(publish):
            raise TypeError("publish must be callable")
        if account is not None and not isinstance(account, Account):
            raise TypeError(f"account must be an Account, not {type(account).__name__}")
        self._store = store
        self._account = account if account is not None else Account()
        self._publish: EventSink = publish if publish is not None else _discard
        self._clock: Clock = clock if clock is not None else SystemClock()

    @property
    def account(self) -> Account:
        """The region and account the ARNs name."""
        return self._account

    # -- plumbing -------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.utcoffset() is None:
            raise ValueError("the clock returned a naive datetime")
        return now.astimezone(UTC)

    @contextmanager
    def _change(self) -> Iterator[tuple[UnitOfWork, list[object]]]:
        """A writing transaction and its event list, published after the commit."""
        events: list[object] = []
        with self._store.transaction() as uow:
            yield uow, events
        self._emit(events)

    @contextmanager
    def _read(self) -> Iterator[UnitOfWork]:
        """A read-only transaction."""
        with self._store.transaction(readonly=True) as uow:
            yield uow

    def _emit(self, events: Iterable[object]) -> None:
        for event in events:
            try:
                self._publish(event)
            except Exception:  # noqa: BLE001 - committed already; deliver the rest
                _log.exception("event sink failed on %r", event)

    @staticmethod
    @contextmanager
    def _page_token() -> Iterator[None]:
        """Answer a foreign or malformed ``nextToken`` with InvalidRequestException."""
        try:
            yield
        except InvalidPageTokenError:
            raise InvalidRequestError("The nextToken is not valid") from None

    # -- rows to values -------------------------------------------------------------

    def _thing_type(self, row: ThingTypeRow) -> ThingType:
        return ThingType(
            thing_type_name=row.name,
            thing_type_arn=self._account.arn(f"{THING_TYPE}/{row.name}"),
            thing_type_id=row.thing_type_id,
            description=row.description,
            searchable_attributes=row.searchable_attributes,
            deprecated=row.deprecated,
            deprecation_date=row.deprecation_date,
            creation_date=row.creation_date,
        )

    def _thing(self, row: ThingRow) -> Thing:
        return Thing(
            thing_name=row.name,
            thing_arn=self._account.arn(f"{THING}/{row.name}"),
            thing_id=row.thing_id,
            thing_type_name=row.thing_type_name,
            attributes=dict(row.attributes),
            version=row.version,
            creation_date=row.creation_date,
            last_modified_date=row.last_modified_date,
        )

    def _group_ref(self, name: str) -> GroupNameAndArn:
        return GroupNameAndArn(name, self._account.arn(f"{THING_GROUP}/{name}"))

    def _thing_group(self, row: ThingGroupRow, ancestors: Iterable[ThingGroupRow]) -> ThingGroup:
        return ThingGroup(
            thing_group_name=row.name,
            thing_group_arn=self._account.arn(f"{THING_GROUP}/{row.name}"),
            thing_group_id=row.thing_group_id,
            parent_group_name=row.parent_name,
            root_to_parent_thing_groups=tuple(self._group_ref(a.name) for a in ancestors),
            description=row.description,
            attributes=dict(row.attributes),
            version=row.version,
            creation_date=row.creation_date,
            last_modified_date=row.last_modified_date,
            query_string=row.query_string,
            index_name=row.index_name,
            query_version=row.query_version,
        )

    def _certificate(self, row: CertificateRow) -> CertificateRecord:
        return CertificateRecord(
            certificate_id=row.certificate_id,
            certificate_arn=self._account.arn(f"{CERT}/{row.certificate_id}"),
            ca_certificate_id=row.ca_certificate_id,
            status=CertificateStatus(row.status),
            certificate_pem=row.certificate_pem,
            owned_by=row.owned_by,
            previous_owned_by=row.previous_owned_by,
            creation_date=row.creation_date,
            last_modified_date=row.last_modified_date,
            customer_version=row.customer_version,
            generation_id=row.generation_id,
            validity=Validity(row.not_before, row.not_after),
            certificate_mode=CertificateMode(row.certificate_mode),
        )

    def _ca_certificate(self, row: CaCertificateRow) -> CaCertificateRecord:
        config = row.registration_config
        return CaCertificateRecord(
            certificate_id=row.ca_certificate_id,
            certificate_arn=self._account.arn(f"{CA_CERT_TYPE}/{row.ca_certificate_id}"),
            status=CaCertificateStatus(row.status),
            auto_registration_status=AutoRegistrationStatus(row.auto_registration_status),
            certificate_pem=row.certificate_pem,
            owned_by=row.owned_by,
            creation_date=row.creation_date,
            last_modified_date=row.last_modified_date,
            customer_version=row.customer_version,
            generation_id=row.generation_id,
            validity=Validity(row.not_before, row.not_after),
            certificate_mode=CertificateMode(row.certificate_mode),
            registration_config=(
                None
                if config is None
                else RegistrationConfig(
                    template_body=config.get("templateBody"),
                    role_arn=config.get("roleArn"),
                    template_name=config.get("templateName"),
                )
            ),
        )

    def _target_arn(self, target: PolicyTarget) -> str:
        return self._account.arn(f"{target.target_type}/{target.target_id}")

    def _policy_arn(self, name: str) -> str:
        return self._account.arn(f"{POLICY_TYPE}/{name}")

    # -- shared queries -------------------------------------------------------------

    def _effective_policies(
        self, uow: UnitOfWork, certificate_id: str | None, thing_name: str | None
    ) -> tuple[EffectivePolicy, ...]:
        """The policies attached to the certificate, and those of the thing's groups and
        their ancestors; each policy once (the first target by type/id order wins)."""
        targets: list[PolicyTarget] = []
        if certificate_id is not None:
            targets.append(PolicyTarget(CERT, certificate_id))
        if thing_name is not None:
            groups = uow.thing_groups.with_ancestors(uow.thing_groups.groups_of(thing_name))
            targets.extend(PolicyTarget(THING_GROUP, name) for name in sorted(groups))
        return self._dedupe(uow.policies.attached_to(targets))

    def _dedupe(self, attached: Iterable[AttachedPolicy]) -> tuple[EffectivePolicy, ...]:
        seen: dict[str, EffectivePolicy] = {}
        for item in attached:
            if item.policy.name in seen:
                continue
            seen[item.policy.name] = EffectivePolicy(
                policy_name=item.policy.name,
                policy_arn=self._policy_arn(item.policy.name),
                policy_document=item.default_version.document,
                version_id=str(item.default_version.version_id),
                target_arn=self._target_arn(item.target),
            )
        return tuple(seen[name] for name in sorted(seen))
