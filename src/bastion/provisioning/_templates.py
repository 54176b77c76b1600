"""Provisioning templates and their versions: the template half of
:class:`~bastion.provisioning.ProvisioningService`.

AWS's rules, kept here: names are 1-36 of ``[0-9A-Za-z_-]``; the type
(``FLEET_PROVISIONING``, the default, or ``JITP``) never changes; a template starts
*disabled* unless ``enabled`` is given; only fleet provisioning templates may have a
pre-provisioning hook; a template keeps at most five versions, version ids are never
reused, and the default version cannot be deleted. Every body is parsed and checked
(:func:`~bastion.provisioning.parse_template`) before it is stored, so a stored template
is always a valid one. A JITP template that a CA's registration configuration names
cannot be deleted.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.registry import IdentityService
from bastion.store import (
    ConflictError,
    InvalidPageTokenError,
    ProvisioningTemplateRow,
    Store,
    TemplateVersionRow,
    UnitOfWork,
)

from ._errors import (
    DeleteConflictError,
    InvalidRequestError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionsLimitExceededError,
)
from ._hook import PreProvisioningHook, parse_hook
from ._model import ProvisioningTemplate, ProvisioningTemplateSummary, TemplateVersion
from ._template import Template, TemplateType, parse_template

MAX_VERSIONS: Final = 5
MAX_DESCRIPTION: Final = 500
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 250
TEMPLATE_ARN_TYPE: Final = "provisioningtemplate"
_TEMPLATE_NAME: Final = re.compile(r"[0-9A-Za-z_-]{1,36}")


def check_template_name(name: object) -> str:
    """:raises InvalidRequestError: not 1-36 of ``[0-9A-Za-z_-]``."""
    if not isinstance(name, str) or not _TEMPLATE_NAME.fullmatch(name):
        raise InvalidRequestError(
            f"templateName {name!r} must be 1 to 36 characters of 0-9 A-Z a-z _ -")
    return name


def _template_type(value: TemplateType | str) -> TemplateType:
    try:
        return TemplateType(value)
    except ValueError:
        raise InvalidRequestError(
            f"type {value!r} is not one of FLEET_PROVISIONING, JITP") from None


def _page_size(max_results: int | None) -> int:
    if max_results is None:
        return DEFAULT_PAGE_SIZE
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not (
            1 <= max_results <= MAX_PAGE_SIZE):
        raise InvalidRequestError(f"maxResults must be between 1 and {MAX_PAGE_SIZE}")
    return max_results


def _tags(tags: Sequence[Mapping[str, str]] | None) -> tuple[tuple[str, str], ...]:
    if not tags:
        return ()
    pairs: list[tuple[str, str]] = []
    for tag in tags:
        key = tag.get("Key") if isinstance(tag, Mapping) else None
        value = tag.get("Value", "") if isinstance(tag, Mapping) else None
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidRequestError("tags must be objects with a Key and a Value")
        pairs.append((key, value))
    return tuple(pairs)


class TemplateOperations:
    """Templates CRUD and versions (the base of ProvisioningService).

    :param store: the open store.
    :param identity: the identity service (to see which CAs name a JITP template).
    :param account: region and account of the ARNs (default: the identity service's).
    :param clock: the current time; tests pass one they move by hand.
    """

    def __init__(self, store: Store, *, identity: IdentityService,
                 account: Account | None = None, clock: Clock | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if not isinstance(identity, IdentityService):
            raise TypeError("identity must be an IdentityService")
        self._store = store
        self._identity = identity
        self._account = account if account is not None else identity.account
        self._clock: Clock = clock if clock is not None else SystemClock()

    @property
    def account(self) -> Account:
        """The region and account the ARNs name."""
        return self._account

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.utcoffset() is None:
            raise ValueError("the clock returned a naive datetime")
        return now.astimezone(UTC)

    def template_arn(self, name: str) -> str:
        return self._account.arn(f"{TEMPLATE_ARN_TYPE}/{name}")

    @contextmanager
    def _page_token(self) -> Iterator[None]:
        try:
            yield
        except InvalidPageTokenError:
            raise InvalidRequestError("The nextToken is not valid") from None

    # -- templates ------------------------------------------------------------------

    def create_provisioning_template(
        self,
        template_name: str,
        template_body: str,
        *,
        provisioning_role_arn: str | None = None,
        description: str | None = None,
        enabled: bool = False,
        pre_provisioning_hook: PreProvisioningHook | Mapping[str, Any] | None = None,
        template_type: TemplateType | str = TemplateType.FLEET_PROVISIONING,
        tags: Sequence[Mapping[str, str]] | None = None,
    ) -> ProvisioningTemplate:
        """CreateProvisioningTemplate (version 1 is the default).

        :param provisioning_role_arn: recorded and returned; Bastion has no IAM, the
            template's resources are created with the service's own authority.
        :raises InvalidRequestError: bad name, description, type or hook (a hook on a JITP
            template).
        :raises TemplateError: the body is not a valid template (the message says where).
        :raises ResourceAlreadyExistsError: a template of that name exists.
        """
        name = check_template_name(template_name)
        kind = _template_type(template_type)
        self._check_description(description)
        hook = None if pre_provisioning_hook is None else parse_hook(pre_provisioning_hook)
        if hook is not None and kind is TemplateType.JITP:
            raise InvalidRequestError("A pre-provisioning hook can only be set on a "
                                      "FLEET_PROVISIONING template")
        parse_template(template_body, kind)
        now = self._now()
        row = ProvisioningTemplateRow(
            name=name,
            template_id=str(uuid.uuid4()),
            template_type=kind.value,
            description=description,
            enabled=bool(enabled),
            provisioning_role_arn=self._role_arn(provisioning_role_arn),
            pre_provisioning_hook=None if hook is None else hook.as_aws(),
            tags=_tags(tags),
            default_version_id=1,
            last_version_id=1,
            creation_date=now,
            last_modified_date=now,
        )
        with self._store.transaction() as uow:
            if uow.provisioning.get_template(name) is not None:
                raise self._exists(name)
            try:
                uow.provisioning.insert_template(
                    row, TemplateVersionRow(name, 1, template_body, now))
            except ConflictError:
                raise self._exists(name) from None
        return self._template(row, template_body)

    def describe_provisioning_template(self, template_name: str) -> ProvisioningTemplate:
        """DescribeProvisioningTemplate.

        :raises ResourceNotFoundError: no such template.
        """
        name = check_template_name(template_name)
        with self._store.transaction(readonly=True) as uow:
            row = _require_template(uow, name)
            version = uow.provisioning.get_version(name, row.default_version_id)
        if version is None:  # pragma: no cover - the default version cannot be deleted
            raise ResourceNotFoundError(f"The provisioning template {name} has no default version")
        return self._template(row, version.template_body)

    def list_provisioning_templates(
        self, *, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[ProvisioningTemplateSummary], str | None]:
        """ListProvisioningTemplates, by name.

        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        limit = _page_size(max_results)
        with self._store.transaction(readonly=True) as uow, self._page_token():
            rows, token = uow.provisioning.templates_page(limit=limit, token=next_token)
        return [self._summary(row) for row in rows], token

    def update_provisioning_template(
        self,
        template_name: str,
        *,
        description: str | None = None,
        enabled: bool | None = None,
        default_version_id: int | None = None,
        provisioning_role_arn: str | None = None,
        pre_provisioning_hook: PreProvisioningHook | Mapping[str, Any] | None = None,
        remove_pre_provisioning_hook: bool = False,
    ) -> None:
        """UpdateProvisioningTemplate.

        :raises ResourceNotFoundError: no such template.
        :raises InvalidRequestError: bad values, a version that does not exist, a hook on
            a JITP template, or both a hook and ``remove_pre_provisioning_hook``.
        """
        name = check_template_name(template_name)
        self._check_description(description)
        hook = None if pre_provisioning_hook is None else parse_hook(pre_provisioning_hook)
        if hook is not None and remove_pre_provisioning_hook:
            raise InvalidRequestError("Cannot set and remove the pre-provisioning hook at once")
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if enabled is not None:
            values["enabled"] = bool(enabled)
        if provisioning_role_arn is not None:
            values["provisioning_role_arn"] = self._role_arn(provisioning_role_arn)
        if hook is not None:
            values["pre_provisioning_hook"] = hook.as_aws()
        elif remove_pre_provisioning_hook:
            values["pre_provisioning_hook"] = None
        now = self._now()
        with self._store.transaction() as uow:
            row = _require_template(uow, name, for_update=True)
            if hook is not None and row.template_type == TemplateType.JITP:
                raise InvalidRequestError("A pre-provisioning hook can only be set on a "
                                          "FLEET_PROVISIONING template")
            if default_version_id is not None:
                if uow.provisioning.get_version(name, default_version_id) is None:
                    raise InvalidRequestError(
                        f"Version {default_version_id} of provisioning template {name} "
                        "does not exist")
                values["default_version_id"] = default_version_id
            if values:
                uow.provisioning.update_template(name, now, **values)

    def delete_provisioning_template(self, template_name: str) -> None:
        """DeleteProvisioningTemplate (with its versions).

        :raises ResourceNotFoundError: no such template.
        :raises DeleteConflictError: a CA's registration configuration names this JITP
            template.
        """
        name = check_template_name(template_name)
        for ca_id in self._cas_using(name):
            raise DeleteConflictError(f"The provisioning template {name} is used by the "
                                      f"registration configuration of CA {ca_id}")
        with self._store.transaction() as uow:
            _require_template(uow, name, for_update=True)
            uow.provisioning.delete_template(name)

    # -- versions -------------------------------------------------------------------

    def create_provisioning_template_version(
        self, template_name: str, template_body: str, *, set_as_default: bool = False
    ) -> TemplateVersion:
        """CreateProvisioningTemplateVersion.

        :raises ResourceNotFoundError: no such template.
        :raises TemplateError: the body is not a valid template of the template's type.
        :raises VersionsLimitExceededError: the template already has five versions.
        """
        name = check_template_name(template_name)
        now = self._now()
        with self._store.transaction() as uow:
            row = _require_template(uow, name, for_update=True)
            parse_template(template_body, TemplateType(row.template_type))
            if uow.provisioning.count_versions(name) >= MAX_VERSIONS:
                raise VersionsLimitExceededError(
                    f"The provisioning template {name} already has {MAX_VERSIONS} versions; "
                    "delete one first")
            version_id = row.last_version_id + 1
            uow.provisioning.insert_version(TemplateVersionRow(name, version_id,
                                                               template_body, now))
            changes: dict[str, Any] = {"last_version_id": version_id}
            if set_as_default:
                changes["default_version_id"] = version_id
            uow.provisioning.update_template(name, now, **changes)
        return TemplateVersion(name, self.template_arn(name), version_id, bool(set_as_default),
                               now, template_body)

    def describe_provisioning_template_version(self, template_name: str,
                                               version_id: int) -> TemplateVersion:
        """DescribeProvisioningTemplateVersion.

        :raises ResourceNotFoundError: no such template or version.
        """
        name = check_template_name(template_name)
        with self._store.transaction(readonly=True) as uow:
            row = _require_template(uow, name)
            version = uow.provisioning.get_version(name, _version_id(version_id))
        if version is None:
            raise ResourceNotFoundError(
                f"Version {version_id} of provisioning template {name} does not exist")
        return TemplateVersion(name, self.template_arn(name), version.version_id,
                               version.version_id == row.default_version_id,
                               version.creation_date, version.template_body)

    def list_provisioning_template_versions(
        self, template_name: str, *, max_results: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[TemplateVersion], str | None]:
        """ListProvisioningTemplateVersions, oldest first.

        :raises ResourceNotFoundError: no such template.
        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        name = check_template_name(template_name)
        limit = _page_size(max_results)
        with self._store.transaction(readonly=True) as uow, self._page_token():
            row = _require_template(uow, name)
            versions, token = uow.provisioning.versions_page(name, limit=limit, token=next_token)
        arn = self.template_arn(name)
        return [TemplateVersion(name, arn, v.version_id, v.version_id == row.default_version_id,
                                v.creation_date) for v in versions], token

    def delete_provisioning_template_version(self, template_name: str,
                                             version_id: int) -> None:
        """DeleteProvisioningTemplateVersion.

        :raises ResourceNotFoundError: no such template or version.
        :raises DeleteConflictError: it is the default version.
        """
        name = check_template_name(template_name)
        ident = _version_id(version_id)
        with self._store.transaction() as uow:
            row = _require_template(uow, name, for_update=True)
            if ident == row.default_version_id:
                raise DeleteConflictError(
                    f"Version {ident} is the default version of provisioning template {name}; "
                    "set another default first")
            if not uow.provisioning.delete_version(name, ident):
                raise ResourceNotFoundError(
                    f"Version {ident} of provisioning template {name} does not exist")

    # -- for the provisioning flows ---------------------------------------------------

    def _load(self, name: str) -> tuple[ProvisioningTemplate, Template]:
        """A template with its default version parsed.

        :raises ResourceNotFoundError: no such template.
        """
        template = self.describe_provisioning_template(name)
        return template, parse_template(template.template_body, template.template_type)

    # -- internals ------------------------------------------------------------------

    def _role_arn(self, arn: str | None) -> str:
        if arn is None:
            return self._account.arn("role/bastion-provisioning", service="iam")
        if not isinstance(arn, str) or not 20 <= len(arn) <= 2048:
            raise InvalidRequestError("provisioningRoleArn must be 20 to 2048 characters")
        return arn

    @staticmethod
    def _check_description(description: str | None) -> None:
        if description is not None and (not isinstance(description, str)
                                        or len(description) > MAX_DESCRIPTION):
            raise InvalidRequestError(f"description must be at most {MAX_DESCRIPTION} characters")

    def _exists(self, name: str) -> ResourceAlreadyExistsError:
        return ResourceAlreadyExistsError(f"The provisioning template {name} already exists",
                                          resource_id=name, resource_arn=self.template_arn(name))

    def _cas_using(self, name: str) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            page, token = self._identity.list_ca_certificates(next_token=token)
            found.extend(ca.certificate_id for ca in page
                         if ca.registration_config is not None
                         and ca.registration_config.template_name == name)
            if not token:
                return found

    def _template(self, row: ProvisioningTemplateRow, body: str) -> ProvisioningTemplate:
        hook = row.pre_provisioning_hook
        return ProvisioningTemplate(
            template_name=row.name,
            template_arn=self.template_arn(row.name),
            template_id=row.template_id,
            template_type=TemplateType(row.template_type),
            description=row.description,
            enabled=row.enabled,
            provisioning_role_arn=row.provisioning_role_arn,
            pre_provisioning_hook=None if hook is None else PreProvisioningHook(
                hook["targetArn"], hook.get("payloadVersion", "2020-04-01")),
            default_version_id=row.default_version_id,
            template_body=body,
            tags=row.tags,
            creation_date=row.creation_date,
            last_modified_date=row.last_modified_date,
        )

    def _summary(self, row: ProvisioningTemplateRow) -> ProvisioningTemplateSummary:
        return ProvisioningTemplateSummary(
            template_name=row.name,
            template_arn=self.template_arn(row.name),
            template_type=TemplateType(row.template_type),
            description=row.description,
            enabled=row.enabled,
            creation_date=row.creation_date,
            last_modified_date=row.last_modified_date,
        )


def _require_template(uow: UnitOfWork, name: str, *,
                      for_update: bool = False) -> ProvisioningTemplateRow:
    row = uow.provisioning.get_template(name, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"The provisioning template {name} does not exist")
    return row


def _version_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"versionId {value!r} must be a positive integer")
    return value
