"""PolicyService: IoT policies, their versions, and their attachments.

Rules (AWS IoT): a policy has at most five versions, exactly one of which is the default
(CreatePolicy makes version ``"1"`` the default; ids only grow). The default version
cannot be deleted; a policy can only be deleted when its default version is the only one
left and it is attached to nothing (``DeleteConflictException``). Policies attach to
certificates and to thing groups, at most ten per target; a group's policies are
inherited by its descendants and by the things in all of them.
"""

from __future__ import annotations

from typing import Final

from bastion.policy import MalformedPolicyError, parse_policy
from bastion.store import PolicyRow, PolicyTarget, UnitOfWork, page_of_sorted

from ._arns import ACCESS_KEY, CERT, ROLE_ALIAS_TARGET, THING_GROUP, split_arn
from ._errors import (
    DeleteConflictError,
    InvalidRequestError,
    LimitExceededError,
    MalformedPolicyDocumentError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionsLimitExceededError,
)
from ._events import PolicyAttachmentChanged, PolicyDefaultVersionChanged, PolicyDeleted
from ._model import EffectivePolicy, Page, Policy, PolicySummary, PolicyVersion
from ._names import check_name, check_page_size, check_policy_name, check_str, check_version_id
from ._service import ServiceBase

MAX_POLICY_VERSIONS: Final = 5
MAX_POLICIES_PER_TARGET: Final = 10
_TARGET_TYPES: Final = frozenset({CERT, THING_GROUP, ACCESS_KEY, ROLE_ALIAS_TARGET})


class PolicyService(ServiceBase):
    """Policies, versions and attachments. Construct as :class:`ServiceBase`."""

    __slots__ = ()

    # -- policies -------------------------------------------------------------------

    def create_policy(self, policy_name: str, policy_document: str) -> Policy:
        """CreatePolicy: the document becomes version ``"1"``, the default.

        :raises InvalidRequestError: bad name.
        :raises MalformedPolicyDocumentError: the document is not a valid IoT policy.
        :raises ResourceAlreadyExistsError: a policy of that name exists.
        """
        name = check_policy_name(policy_name)
        document = _check_document(policy_document)
        now = self._now()
        with self._change() as (uow, _events):
            if uow.policies.get(name) is not None:
                raise ResourceAlreadyExistsError(  # AWS's words
                    f"Policy cannot be created - name already exists (name={name})",
                    resource_id=name,
                    resource_arn=self._policy_arn(name),
                )
            row = uow.policies.insert(name, document, now)
        return self._policy(row.name, document, row.default_version_id, row)

    def get_policy(self, policy_name: str) -> Policy:
        """GetPolicy: the policy with its default version's document.

        :raises ResourceNotFoundError: no such policy.
        """
        name = check_policy_name(policy_name)
        with self._read() as uow:
            row = _require_policy(uow, name)
            version = uow.policies.get_version(name, row.default_version_id)
            assert version is not None
        return self._policy(name, version.document, row.default_version_id, row)

    def list_policies(
        self, *, max_results: int | None = None, next_token: str | None = None
    ) -> Page[PolicySummary]:
        """ListPolicies, ordered by name.

        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.policies.list_page(limit=limit, token=next_token)
        return [PolicySummary(row.name, self._policy_arn(row.name)) for row in rows], token

    def delete_policy(self, policy_name: str) -> None:
        """DeletePolicy.

        :raises ResourceNotFoundError: no such policy.
        :raises DeleteConflictError: it is attached to a target, or has non-default
            versions.
        """
        name = check_policy_name(policy_name)
        with self._change() as (uow, events):
            _require_policy(uow, name, for_update=True)
            if uow.policies.count_targets(name):
                raise DeleteConflictError(
                    "The policy cannot be deleted as the policy is attached to one or more "
                    f"principals (name={name})"
                )
            if uow.policies.count_versions(name) > 1:
                raise DeleteConflictError(
                    "Cannot delete the policy because it has one or more policy versions "
                    "attached to it (name=" + name + ")"
                )
            uow.policies.delete(name)
            events.append(PolicyDeleted(name))

    # -- versions -------------------------------------------------------------------

    def create_policy_version(
        self, policy_name: str, policy_document: str, *, set_as_default: bool = False
    ) -> PolicyVersion:
        """CreatePolicyVersion.

        :raises ResourceNotFoundError: no such policy.
        :raises MalformedPolicyDocumentError: the document is not a valid IoT policy.
        :raises VersionsLimitExceededError: the policy already has five versions.
        """
        name = check_policy_name(policy_name)
        document = _check_document(policy_document)
        now = self._now()
        with self._change() as (uow, events):
            _require_policy(uow, name, for_update=True)
            if uow.policies.count_versions(name) >= MAX_POLICY_VERSIONS:
                raise VersionsLimitExceededError(
                    f"The policy {name} already has the maximum number of versions "
                    f"({MAX_POLICY_VERSIONS})"
                )
            version = uow.policies.add_version(name, document, now, set_as_default=set_as_default)
            if set_as_default:
                events.append(PolicyDefaultVersionChanged(name, str(version.version_id)))
        return PolicyVersion(
            policy_name=name,
            policy_arn=self._policy_arn(name),
            version_id=str(version.version_id),
            policy_document=document,
            is_default_version=set_as_default,
            creation_date=version.creation_date,
        )

    def get_policy_version(self, policy_name: str, policy_version_id: str) -> PolicyVersion:
        """GetPolicyVersion.

        :raises ResourceNotFoundError: no such policy or version.
        :raises InvalidRequestError: a malformed version id.
        """
        name = check_policy_name(policy_name)
        version_id = check_version_id(policy_version_id)
        with self._read() as uow:
            row = _require_policy(uow, name)
            version = uow.policies.get_version(name, version_id)
        if version is None:
            raise ResourceNotFoundError(f"Policy {name} has no version {version_id}")
        return PolicyVersion(
            policy_name=name,
            policy_arn=self._policy_arn(name),
            version_id=str(version_id),
            policy_document=version.document,
            is_default_version=version_id == row.default_version_id,
            creation_date=version.creation_date,
        )

    def list_policy_versions(self, policy_name: str) -> list[PolicyVersion]:
        """ListPolicyVersions, newest first.

        :raises ResourceNotFoundError: no such policy.
        """
        name = check_policy_name(policy_name)
        with self._read() as uow:
            row = _require_policy(uow, name)
            versions = uow.policies.versions(name)
        return [
            PolicyVersion(
                policy_name=name,
                policy_arn=self._policy_arn(name),
                version_id=str(version.version_id),
                policy_document=version.document,
                is_default_version=version.version_id == row.default_version_id,
                creation_date=version.creation_date,
            )
            for version in versions
        ]

    def set_default_policy_version(self, policy_name: str, policy_version_id: str) -> None:
        """SetDefaultPolicyVersion.

        :raises ResourceNotFoundError: no such policy or version.
        :raises InvalidRequestError: a malformed version id.
        """
        name = check_policy_name(policy_name)
        version_id = check_version_id(policy_version_id)
        now = self._now()
        with self._change() as (uow, events):
            row = _require_policy(uow, name, for_update=True)
            if uow.policies.get_version(name, version_id) is None:
                raise ResourceNotFoundError(f"Policy {name} has no version {version_id}")
            if row.default_version_id == version_id:
                return
            uow.policies.set_default_version(name, version_id, now)
            events.append(PolicyDefaultVersionChanged(name, str(version_id)))

    def delete_policy_version(self, policy_name: str, policy_version_id: str) -> None:
        """DeletePolicyVersion.

        :raises ResourceNotFoundError: no such policy or version.
        :raises DeleteConflictError: it is the default version.
        :raises InvalidRequestError: a malformed version id.
        """
        name = check_policy_name(policy_name)
        version_id = check_version_id(policy_version_id)
        with self._change() as (uow, _events):
            row = _require_policy(uow, name, for_update=True)
            if row.default_version_id == version_id:
                raise DeleteConflictError("Cannot delete the default version of a policy")
            if not uow.policies.delete_version(name, version_id):
                raise ResourceNotFoundError(f"Policy {name} has no version {version_id}")

    # -- attachments ----------------------------------------------------------------

    def attach_policy(self, policy_name: str, target: str) -> None:
        """AttachPolicy to a certificate ARN, a thing-group ARN, an access key
        (``arn:aws:iot:<region>:<account>:accesskey/<id>``) or a role alias ARN (the
        principals of MQTT over WebSocket signed with that key, or with temporary
        credentials of that role alias). Attaching again does nothing.

        :raises ResourceNotFoundError: no such policy or target.
        :raises InvalidRequestError: ``target`` is not a certificate or thing-group ARN.
        :raises LimitExceededError: the target already has ten policies.
        """
        name = check_policy_name(policy_name)
        target_ref = self._target(target)
        now = self._now()
        with self._change() as (uow, events):
            _require_policy(uow, name, for_update=True)
            self._require_target(uow, target_ref, target)
            if uow.policies.is_attached(name, target_ref):
                return
            if len(uow.policies.names_attached_to(target_ref)) >= MAX_POLICIES_PER_TARGET:
                raise LimitExceededError(
                    f"{target} already has {MAX_POLICIES_PER_TARGET} policies attached"
                )
            uow.policies.attach(name, target_ref, now)
            events.append(PolicyAttachmentChanged(name, self._target_arn(target_ref), True))

    def detach_policy(self, policy_name: str, target: str) -> None:
        """DetachPolicy. Detaching a policy that is not attached does nothing.

        :raises ResourceNotFoundError: no such policy.
        :raises InvalidRequestError: ``target`` is not a certificate or thing-group ARN.
        """
        name = check_policy_name(policy_name)
        target_ref = self._target(target)
        with self._change() as (uow, events):
            _require_policy(uow, name, for_update=True)
            if uow.policies.detach(name, target_ref):
                events.append(PolicyAttachmentChanged(name, self._target_arn(target_ref), False))

    def list_targets_for_policy(
        self,
        policy_name: str,
        *,
        page_size: int | None = None,
        marker: str | None = None,
    ) -> Page[str]:
        """ListTargetsForPolicy: target ARNs (certificates first, then thing groups).

        :raises ResourceNotFoundError: no such policy.
        :raises InvalidRequestError: bad ``page_size`` or ``marker``.
        """
        name = check_policy_name(policy_name)
        limit = check_page_size(page_size)
        with self._read() as uow, self._page_token():
            _require_policy(uow, name)
            targets, token = uow.policies.targets_page(name, limit=limit, token=marker)
        return [self._target_arn(target) for target in targets], token

    def list_attached_policies(
        self,
        target: str,
        *,
        recursive: bool = False,
        page_size: int | None = None,
        marker: str | None = None,
    ) -> Page[PolicySummary]:
        """ListAttachedPolicies of a certificate or thing group; with ``recursive``, a thing
        group's list includes the policies inherited from its ancestors.

        :raises ResourceNotFoundError: no such target.
        :raises InvalidRequestError: bad target, ``page_size`` or ``marker``.
        """
        target_ref = self._target(target)
        limit = check_page_size(page_size)
        with self._read() as uow, self._page_token():
            self._require_target(uow, target_ref, target)
            targets = [target_ref]
            if recursive and target_ref.target_type == THING_GROUP:
                groups = uow.thing_groups.with_ancestors([target_ref.target_id])
                targets = [PolicyTarget(THING_GROUP, group) for group in sorted(groups)]
            names = sorted({item.policy.name for item in uow.policies.attached_to(targets)})
            summaries = [PolicySummary(n, self._policy_arn(n)) for n in names]
            return page_of_sorted(
                summaries,
                lambda summary: summary.policy_name,
                kind="attached-policies",
                limit=limit,
                token=marker,
            )

    def get_effective_policies(
        self, *, principal: str | None = None, thing_name: str | None = None
    ) -> list[EffectivePolicy]:
        """GetEffectivePolicies: the policies of a certificate and/or those a thing inherits
        from its groups (and their ancestors), each once, by name.

        :raises ResourceNotFoundError: no such certificate or thing.
        :raises InvalidRequestError: neither given, or ``principal`` is not a certificate ARN.
        """
        if principal is None and thing_name is None:
            raise InvalidRequestError("Specify a principal, a thingName, or both")
        certificate_id = None
        if principal is not None:
            check_str(principal, "principal")
            _, certificate_id = split_arn(self._account, principal, frozenset({CERT}))
        name = None if thing_name is None else check_name(thing_name, "thingName")
        with self._read() as uow:
            if certificate_id is not None and uow.certificates.get(certificate_id) is None:
                raise ResourceNotFoundError(f"The certificate {certificate_id} does not exist")
            if name is not None and uow.things.get(name) is None:
                raise ResourceNotFoundError(f"Thing {name} cannot be found")
            return list(self._effective_policies(uow, certificate_id, name))

    # -- internals ------------------------------------------------------------------

    def _policy(self, name: str, document: str, default_version_id: int, row: PolicyRow) -> Policy:
        return Policy(
            policy_name=name,
            policy_arn=self._policy_arn(name),
            policy_document=document,
            default_version_id=str(default_version_id),
            creation_date=row.creation_date,
            last_modified_date=row.last_modified_date,
            generation_id=row.generation_id,
        )

    def _target(self, target: str) -> PolicyTarget:
        check_str(target, "target")
        kind, ident = split_arn(self._account, target, _TARGET_TYPES)
        return PolicyTarget(kind, ident.lower() if kind == CERT else ident)

    def _require_target(self, uow: UnitOfWork, target: PolicyTarget, arn: str) -> None:
        if target.target_type == CERT:
            found = uow.certificates.get(target.target_id) is not None
        elif target.target_type == ACCESS_KEY:
            found = uow.access_keys.get(target.target_id) is not None
        elif target.target_type == ROLE_ALIAS_TARGET:
            found = uow.role_aliases.get(target.target_id) is not None
        else:
            found = uow.thing_groups.get(target.target_id) is not None
        if not found:
            raise ResourceNotFoundError(f"The target {arn} does not exist")


def _require_policy(uow: UnitOfWork, name: str, *, for_update: bool = False) -> PolicyRow:
    row = uow.policies.get(name, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"Policy {name} cannot be found")
    return row


def _check_document(document: object) -> str:
    text = check_str(document, "policyDocument")
    try:
        parse_policy(text)
    except MalformedPolicyError as error:
        raise MalformedPolicyDocumentError(error.message) from None
    return text
