"""Carrying out a provisioning plan through the registry services.

Theory of operation
-------------------
The plan's steps run in an order that keeps the device locked out until the end: the
thing (created, or updated as its ``OverrideSettings`` say), the policies (created from
their documents, or existing ones looked up), the policies attached to the certificate,
the certificate attached to the thing, and last the certificate's status. Each step is a
registry call, so each one publishes its domain events and live sessions follow.

The certificate gets the template's policies and nothing more: the claim certificate's
policy is never carried over.

Every step that changed something pushes its undo. When a later step fails, the undo
list runs backwards (best effort; a failing undo is logged) and the failure is raised as
:class:`~bastion.provisioning.ProvisioningFailedError` carrying the registry's error, or
:class:`~bastion.provisioning.ResourceConflictsError` for an ``OverrideSettings`` of
``FAIL`` that met an existing, different resource.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable

from bastion.registry import (
    CertificateStatus,
    IdentityService,
    PolicyService,
    RegistryError,
    RegistryService,
    ResourceNotFoundError,
    Thing,
)

from ._errors import ProvisioningError, ProvisioningFailedError, ResourceConflictsError
from ._evaluate import CertificatePlan, PolicyPlan, ProvisioningPlan, ThingPlan
from ._template import OverrideAction

log = logging.getLogger("bastion.provisioning")

Undo = Callable[[], object]


class PlanExecutor:
    """Applies plans with the given registry services."""

    def __init__(self, registry: RegistryService, identity: IdentityService,
                 policies: PolicyService) -> None:
        self._registry = registry
        self._identity = identity
        self._policies = policies

    def apply(self, plan: ProvisioningPlan, certificate_id: str) -> None:
        """Provision ``certificate_id`` as ``plan`` says.

        :raises ProvisioningFailedError: the registry refused a step (undone).
        :raises ResourceConflictsError: a ``FAIL`` override met an existing resource.
        """
        undo: list[Undo] = []
        certificate_arn = self._identity.describe_certificate(certificate_id).certificate_arn
        try:
            if plan.thing is not None:
                self._thing(plan.thing, undo)
            for policy in plan.policies:
                self._policy(policy, certificate_arn, undo)
            if plan.thing is not None:
                name = plan.thing.thing_name
                self._registry.attach_thing_principal(name, certificate_arn)
                undo.append(lambda: self._registry.detach_thing_principal(name, certificate_arn))
            if plan.certificate is not None:
                self._certificate(plan.certificate)
        except ProvisioningError:
            self._undo(undo)
            raise
        except RegistryError as exc:
            self._undo(undo)
            raise ProvisioningFailedError(exc.message, aws_error_type=exc.aws_error_type,
                                          http_status=exc.http_status) from None

    @staticmethod
    def _undo(steps: list[Undo]) -> None:
        for step in reversed(steps):
            try:
                step()
            except Exception:
                log.exception("undoing a provisioning step failed")

    # -- things ---------------------------------------------------------------------

    def _thing(self, plan: ThingPlan, undo: list[Undo]) -> None:
        registry = self._registry
        name = plan.thing_name
        try:
            existing = registry.describe_thing(name)
        except ResourceNotFoundError:
            existing = None
        if existing is None:
            registry.create_thing(name, thing_type_name=plan.thing_type_name,
                                  attributes=plan.attributes)
            undo.append(lambda: registry.delete_thing(name))
            for group in plan.thing_groups or ():
                registry.add_thing_to_thing_group(thing_group_name=group, thing_name=name)
            return
        self._update_thing(existing, plan, undo)

    def _update_thing(self, thing: Thing, plan: ThingPlan, undo: list[Undo]) -> None:
        registry = self._registry
        name = thing.thing_name
        overrides = plan.overrides
        old_attributes = dict(thing.attributes)
        if plan.attributes is not None and dict(plan.attributes) != old_attributes:
            action = overrides.get("AttributePayload", OverrideAction.DO_NOTHING)
            if action is OverrideAction.FAIL:
                raise ResourceConflictsError(f"Thing {name} exists with other attributes")
            if action in (OverrideAction.REPLACE, OverrideAction.MERGE):
                registry.update_thing(name, attributes=plan.attributes,
                                      merge=action is OverrideAction.MERGE)
                undo.append(lambda: registry.update_thing(name, attributes=old_attributes))
        if plan.thing_type_name is not None and plan.thing_type_name != thing.thing_type_name:
            action = overrides.get("ThingTypeName", OverrideAction.DO_NOTHING)
            if action is OverrideAction.FAIL:
                raise ResourceConflictsError(f"Thing {name} exists with another thing type")
            if action is OverrideAction.REPLACE:
                old_type = thing.thing_type_name
                registry.update_thing(name, thing_type_name=plan.thing_type_name)
                undo.append(lambda: registry.update_thing(
                    name, thing_type_name=old_type, remove_thing_type=old_type is None))
        if plan.thing_groups is not None:
            self._groups(name, plan.thing_groups,
                         overrides.get("ThingGroups", OverrideAction.DO_NOTHING), undo)

    def _groups(self, name: str, wanted: tuple[str, ...], action: OverrideAction,
                undo: list[Undo]) -> None:
        registry = self._registry
        current: list[str] = []
        token: str | None = None
        while True:
            page, token = registry.list_thing_groups_for_thing(name, next_token=token)
            current.extend(group.group_name for group in page)
            if not token:
                break
        if set(current) == set(wanted) or action is OverrideAction.DO_NOTHING:
            return
        if action is OverrideAction.FAIL:
            raise ResourceConflictsError(f"Thing {name} exists in other thing groups")
        for group in wanted:
            if group not in current:
                registry.add_thing_to_thing_group(thing_group_name=group, thing_name=name)
                undo.append(functools.partial(registry.remove_thing_from_thing_group,
                                              thing_group_name=group, thing_name=name))
        if action is OverrideAction.REPLACE:
            for group in current:
                if group not in wanted:
                    registry.remove_thing_from_thing_group(thing_group_name=group,
                                                           thing_name=name)
                    undo.append(functools.partial(registry.add_thing_to_thing_group,
                                                  thing_group_name=group, thing_name=name))

    # -- policies and the certificate -------------------------------------------------

    def _policy(self, plan: PolicyPlan, certificate_arn: str, undo: list[Undo]) -> None:
        policies = self._policies
        name = plan.policy_name
        if plan.document is None:
            policies.get_policy(name)  # ResourceNotFound when it does not exist
        else:
            try:
                existing = policies.get_policy(name)
            except ResourceNotFoundError:
                existing = None
            if existing is None:
                policies.create_policy(name, plan.document)
                undo.append(lambda: policies.delete_policy(name))
            elif not _same_document(existing.policy_document, plan.document):
                raise ResourceConflictsError(
                    f"Policy {name} exists with another document; give the template's policy "
                    "another PolicyName (or none: the name is then the document's hash)")
        policies.attach_policy(name, certificate_arn)
        undo.append(lambda: policies.detach_policy(name, certificate_arn))

    def _certificate(self, plan: CertificatePlan) -> None:
        record = self._identity.describe_certificate(plan.certificate_id)
        wanted = CertificateStatus(plan.status)
        if record.status is CertificateStatus.PENDING_ACTIVATION or (
                plan.status_override is OverrideAction.REPLACE):
            if record.status is not wanted:
                self._identity.update_certificate(plan.certificate_id, wanted)
        elif plan.status_override is OverrideAction.FAIL and record.status is not wanted:
            raise ResourceConflictsError(
                f"Certificate {plan.certificate_id} is {record.status.value}, not {wanted.value}")


def _same_document(left: str, right: str) -> bool:
    try:
        return bool(json.loads(left) == json.loads(right))
    except ValueError:
        return left == right
