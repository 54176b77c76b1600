"""Role aliases: CreateRoleAlias, DescribeRoleAlias, UpdateRoleAlias, DeleteRoleAlias,
ListRoleAliases.

A role alias is what a device names to get temporary credentials from the credentials
provider: ``GET /role-aliases/<alias>/credentials``. It points at a role by ARN and says
how long the credentials last. Bastion's roles are its API roles, named by IAM-shaped
ARNs (:func:`bastion.access.role_of_arn`: ``arn:aws:iam::<account>:role/bastion-operator``
or ``…/bastion-auditor``).

Rules kept here (AWS IoT API reference):

* alias names ``[\\w=,@-]{1,128}`` (ASCII word characters);
* ``roleArn`` 20–2048 characters; ``credentialDurationSeconds`` 900–43200, 3600 when
  not given;
* a role alias carries tags, given at creation (written in the same transaction) or
  with TagResource; deleting the alias deletes them;
* UpdateRoleAlias changes the role, the duration, or both; what is not given stays.

Where Bastion is stricter than AWS (which accepts any role ARN and fails only when a
device asks for credentials): a role ARN that names no Bastion role, or names one of
another account, is refused at once with InvalidRequestException; so is the admin role —
temporary credentials never carry admin (see :mod:`bastion.access._role_arns` for why).
Credentials already issued keep their role when their alias changes or goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bastion.access import ASSUMABLE_ROLES, Role, role_of_arn
from bastion.store import ConflictError, RoleAliasRow

from ._errors import InvalidRequestError, ResourceAlreadyExistsError, ResourceNotFoundError
from ._model import Page
from ._names import check_name, check_page_size, check_str
from ._service import ServiceBase
from ._tagging import check_tags

ROLE_ALIAS: Final = "rolealias"
ROLE_ALIAS_NAME: Final = re.compile(r"[\w=,@-]{1,128}", re.ASCII)
DEFAULT_DURATION: Final = 3600
MIN_DURATION: Final = 900
MAX_DURATION: Final = 43200
MIN_ROLE_ARN: Final = 20
MAX_ROLE_ARN: Final = 2048


@dataclass(frozen=True, slots=True)
class RoleAlias:
    """A role alias as DescribeRoleAlias shows it, with the role its ARN names.

    :ivar role: the Bastion role ``role_arn`` names; ``None`` when it names none (the
        installation's account id changed since the alias was made).
    :ivar owner: the account id that owns it.
    """

    role_alias: str
    role_alias_arn: str
    role_arn: str
    role: Role | None
    owner: str
    credential_duration_seconds: int
    creation_date: datetime
    last_modified_date: datetime


def check_role_alias_name(value: object) -> str:
    """:raises InvalidRequestError: the name breaks AWS's pattern."""
    return check_name(value, "roleAlias", ROLE_ALIAS_NAME)


def _check_duration(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"credentialDurationSeconds must be an int, not {type(value).__name__}")
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise InvalidRequestError(
            f"1 validation error detected: Value '{value}' at 'credentialDurationSeconds' "
            f"failed to satisfy constraint: Member must have value between {MIN_DURATION} "
            f"and {MAX_DURATION}")
    return value


class RoleAliasService(ServiceBase):
    """Role aliases of one account and region.

    Built like the other registry services (see :class:`._service.ServiceBase`).
    """

    __slots__ = ()

    def create_role_alias(self, role_alias: str, *, role_arn: str,
                          credential_duration_seconds: int | None = None,
                          tags: object = None) -> RoleAlias:
        """CreateRoleAlias.

        :param tags: AWS's tag list (``[{"Key": …, "Value": …}]``) or ``None``.
        :raises InvalidRequestError: a bad name, duration or tag; a role ARN that names
            no assumable Bastion role of this account.
        :raises ResourceAlreadyExistsError: an alias of that name exists.
        """
        name = check_role_alias_name(role_alias)
        self._role(role_arn)
        duration = _check_duration(DEFAULT_DURATION if credential_duration_seconds is None
                                   else credential_duration_seconds)
        wanted = check_tags(tags)
        now = self._now()
        row = RoleAliasRow(name=name, role_arn=role_arn, credential_duration_seconds=duration,
                           creation_date=now, last_modified_date=now)
        with self._change() as (uow, _events):
            if uow.role_aliases.get(name) is not None:
                raise ResourceAlreadyExistsError(
                    f"Role alias {name} already exists", resource_id=name,
                    resource_arn=self.role_alias_arn(name))
            try:
                uow.role_aliases.insert(row)
            except ConflictError:
                raise ResourceAlreadyExistsError(
                    f"Role alias {name} already exists") from None
            uow.tags.put(ROLE_ALIAS, name, wanted)
        return self._role_alias(row)

    def describe_role_alias(self, role_alias: str) -> RoleAlias:
        """DescribeRoleAlias.

        :raises ResourceNotFoundError: no such alias.
        :raises InvalidRequestError: a bad name.
        """
        name = check_role_alias_name(role_alias)
        with self._read() as uow:
            row = uow.role_aliases.get(name)
        if row is None:
            raise ResourceNotFoundError(f"Role alias {name} does not exist")
        return self._role_alias(row)

    def update_role_alias(self, role_alias: str, *, role_arn: str | None = None,
                          credential_duration_seconds: int | None = None) -> RoleAlias:
        """UpdateRoleAlias: what is given replaces what was; returns the alias as it is now.

        :raises ResourceNotFoundError: no such alias.
        :raises InvalidRequestError: a bad name, role ARN or duration.
        """
        name = check_role_alias_name(role_alias)
        if role_arn is not None:
            self._role(role_arn)
        if credential_duration_seconds is not None:
            _check_duration(credential_duration_seconds)
        now = self._now()
        with self._change() as (uow, _events):
            current = uow.role_aliases.get(name, for_update=True)
            if current is None:
                raise ResourceNotFoundError(f"Role alias {name} does not exist")
            updated = RoleAliasRow(
                name=name, role_arn=role_arn if role_arn is not None else current.role_arn,
                credential_duration_seconds=(
                    credential_duration_seconds if credential_duration_seconds is not None
                    else current.credential_duration_seconds),
                creation_date=current.creation_date, last_modified_date=now)
            uow.role_aliases.update(name, role_arn=updated.role_arn,
                                    credential_duration_seconds=(
                                        updated.credential_duration_seconds),
                                    now=now)
        return self._role_alias(updated)

    def delete_role_alias(self, role_alias: str) -> None:
        """DeleteRoleAlias, with its tags. Credentials issued for it stay valid until
        they expire (as in AWS).

        :raises ResourceNotFoundError: no such alias.
        :raises InvalidRequestError: a bad name.
        """
        name = check_role_alias_name(role_alias)
        with self._change() as (uow, _events):
            if not uow.role_aliases.delete(name):
                raise ResourceNotFoundError(f"Role alias {name} does not exist")

    def list_role_aliases(self, *, page_size: int | None = None, marker: str | None = None,
                          ascending_order: bool = True) -> Page[str]:
        """ListRoleAliases: alias names, ascending (the default) or descending.

        :raises InvalidRequestError: a bad ``page_size`` or ``marker``.
        """
        limit = check_page_size(page_size)
        with self._read() as uow, self._page_token():
            return uow.role_aliases.names_page(ascending=bool(ascending_order), limit=limit,
                                               token=marker)

    def role_alias_arn(self, name: str) -> str:
        """``arn:aws:iot:<region>:<account>:rolealias/<name>``."""
        return self._account.arn(f"{ROLE_ALIAS}/{name}")

    # -- internals ------------------------------------------------------------------

    def _role(self, role_arn: object) -> Role:
        arn = check_str(role_arn, "roleArn")
        if not MIN_ROLE_ARN <= len(arn) <= MAX_ROLE_ARN:
            raise InvalidRequestError(
                f"roleArn must be {MIN_ROLE_ARN} to {MAX_ROLE_ARN} characters long")
        try:
            role = role_of_arn(self._account, arn)
        except ValueError as error:
            raise InvalidRequestError(str(error)) from None
        if role not in ASSUMABLE_ROLES:
            raise InvalidRequestError(
                f"{arn} names Bastion's {role.value} role, which temporary credentials never "
                "carry; point the alias at bastion-operator or bastion-auditor")
        return role

    def _role_alias(self, row: RoleAliasRow) -> RoleAlias:
        try:
            role: Role | None = role_of_arn(self._account, row.role_arn)
        except ValueError:
            role = None
        return RoleAlias(
            role_alias=row.name, role_alias_arn=self.role_alias_arn(row.name),
            role_arn=row.role_arn, role=role,
            owner=self._account.account_id,
            credential_duration_seconds=row.credential_duration_seconds,
            creation_date=row.creation_date, last_modified_date=row.last_modified_date)
