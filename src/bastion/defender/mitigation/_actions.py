"""Mitigation actions (CreateMitigationAction and friends): named, reusable changes that
audit mitigation tasks (and Detect) apply to what a finding or violation names.

An action has exactly one type, given by which ``…Params`` member of ``actionParams`` is
set; the parameters are validated here with AWS's rules and stored in AWS's JSON shape.
Executing an action is the caller's business (audit: :mod:`bastion.defender.audit`):
this module only defines and keeps them.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.store import ConflictError, InvalidPageTokenError, MitigationActionRow, Store

from .._errors import InvalidRequestError, ResourceAlreadyExistsError, ResourceNotFoundError

_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_GROUP: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
MAX_PAGE: Final = 250
BLANK_POLICY: Final = "BLANK_POLICY"
DEACTIVATE: Final = "DEACTIVATE"
LOG_LEVELS: Final = ("DEBUG", "INFO", "ERROR", "WARN")


class MitigationActionType(enum.StrEnum):
    UPDATE_DEVICE_CERTIFICATE = "UPDATE_DEVICE_CERTIFICATE"
    UPDATE_CA_CERTIFICATE = "UPDATE_CA_CERTIFICATE"
    ADD_THINGS_TO_THING_GROUP = "ADD_THINGS_TO_THING_GROUP"
    REPLACE_DEFAULT_POLICY_VERSION = "REPLACE_DEFAULT_POLICY_VERSION"
    ENABLE_IOT_LOGGING = "ENABLE_IOT_LOGGING"
    PUBLISH_FINDING_TO_SNS = "PUBLISH_FINDING_TO_SNS"


#: ``actionParams`` member → action type.
PARAMS_MEMBERS: Final = {
    "updateDeviceCertificateParams": MitigationActionType.UPDATE_DEVICE_CERTIFICATE,
    "updateCACertificateParams": MitigationActionType.UPDATE_CA_CERTIFICATE,
    "addThingsToThingGroupParams": MitigationActionType.ADD_THINGS_TO_THING_GROUP,
    "replaceDefaultPolicyVersionParams": MitigationActionType.REPLACE_DEFAULT_POLICY_VERSION,
    "enableIoTLoggingParams": MitigationActionType.ENABLE_IOT_LOGGING,
    "publishFindingToSnsParams": MitigationActionType.PUBLISH_FINDING_TO_SNS,
}


@dataclass(frozen=True, slots=True)
class MitigationAction:
    """A defined action (DescribeMitigationAction).

    :ivar params: ``actionParams`` in AWS's shape, e.g.
        ``{"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}``.
    """

    name: str
    arn: str
    action_id: str
    action_type: MitigationActionType
    role_arn: str
    params: Mapping[str, Any]
    creation_date: datetime
    last_modified_date: datetime

    @property
    def type_params(self) -> Mapping[str, Any]:
        """The one ``…Params`` member's value."""
        value: Mapping[str, Any] = next(iter(self.params.values()))
        return value


def action_type_of(params: Mapping[str, Any]) -> MitigationActionType:
    """Validate ``actionParams`` and return the action type it defines.

    :raises InvalidRequestError: not exactly one member, or a member's values break AWS's
        rules (unknown action, DISABLED log level, 0 or more than 10 groups, …).
    """
    if not isinstance(params, Mapping):
        raise InvalidRequestError("actionParams must be an object")
    members = [key for key, value in params.items() if value is not None]
    if len(members) != 1 or members[0] not in PARAMS_MEMBERS:
        raise InvalidRequestError(
            "actionParams must set exactly one of " + ", ".join(PARAMS_MEMBERS))
    member = members[0]
    value = params[member]
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{member} must be an object")
    kind = PARAMS_MEMBERS[member]
    if kind in (MitigationActionType.UPDATE_DEVICE_CERTIFICATE,
                MitigationActionType.UPDATE_CA_CERTIFICATE):
        if value.get("action") != DEACTIVATE:
            raise InvalidRequestError(f"{member}.action must be {DEACTIVATE}")
    elif kind is MitigationActionType.ADD_THINGS_TO_THING_GROUP:
        groups = value.get("thingGroupNames")
        if (not isinstance(groups, list) or not 1 <= len(groups) <= 10
                or not all(isinstance(g, str) and _GROUP.fullmatch(g) for g in groups)):
            raise InvalidRequestError(
                "addThingsToThingGroupParams.thingGroupNames must list 1 to 10 group names")
        override = value.get("overrideDynamicGroups")
        if override is not None and not isinstance(override, bool):
            raise InvalidRequestError("overrideDynamicGroups must be a boolean")
    elif kind is MitigationActionType.REPLACE_DEFAULT_POLICY_VERSION:
        if value.get("templateName") != BLANK_POLICY:
            raise InvalidRequestError(
                f"replaceDefaultPolicyVersionParams.templateName must be {BLANK_POLICY}")
    elif kind is MitigationActionType.ENABLE_IOT_LOGGING:
        if value.get("logLevel") not in LOG_LEVELS:
            raise InvalidRequestError(
                "enableIoTLoggingParams.logLevel must be one of " + ", ".join(LOG_LEVELS))
        role = value.get("roleArnForLogging")
        if not isinstance(role, str) or not 20 <= len(role) <= 2048:
            raise InvalidRequestError("enableIoTLoggingParams.roleArnForLogging is required")
    else:
        topic = value.get("topicArn")
        if not isinstance(topic, str) or not 1 <= len(topic) <= 350:
            raise InvalidRequestError(
                "publishFindingToSnsParams.topicArn is required (at most 350 characters)")
    return kind


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequestError(
            f"actionName {name!r} must be 1-128 characters of a-z A-Z 0-9 _ -")
    return name


def _check_role(role_arn: str) -> str:
    if not isinstance(role_arn, str) or not 20 <= len(role_arn) <= 2048:
        raise InvalidRequestError("roleArn must be an ARN of 20 to 2048 characters")
    return role_arn


class MitigationActionService:
    """Create, read, update, delete and list mitigation actions.

    :param store: the store.
    :param account: the region and account the ARNs name.
    :param clock: the current time.
    """

    __slots__ = ("_account", "_clock", "_store")

    def __init__(self, store: Store, *, account: Account,
                 clock: Clock | None = None) -> None:
        self._store = store
        self._account = account
        self._clock: Clock = clock if clock is not None else SystemClock()

    def arn(self, name: str) -> str:
        return self._account.arn(f"mitigationaction/{name}")

    def create_action(self, name: str, role_arn: str,
                      action_params: Mapping[str, Any]) -> MitigationAction:
        """CreateMitigationAction.

        :raises InvalidRequestError: a bad name, role or parameters.
        :raises ResourceAlreadyExistsError: the name is taken.
        """
        _check_name(name)
        _check_role(role_arn)
        kind = action_type_of(action_params)
        now = self._clock.now()
        row = MitigationActionRow(name, str(uuid.uuid4()), kind.value, role_arn,
                                  {k: v for k, v in action_params.items() if v is not None},
                                  now, now)
        try:
            with self._store.transaction() as uow:
                uow.mitigation_actions.insert(row)
        except ConflictError:
            raise ResourceAlreadyExistsError(
                f"Mitigation action {name} already exists") from None
        return self._value(row)

    def describe_action(self, name: str) -> MitigationAction:
        """:raises ResourceNotFoundError: no such action."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.mitigation_actions.get(name)
        if row is None:
            raise ResourceNotFoundError(f"Mitigation action {name} does not exist")
        return self._value(row)

    def actions_named(self, names: list[str]) -> dict[str, MitigationAction]:
        """The actions among ``names`` that exist, by name."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.mitigation_actions.get_many(names)
        return {row.name: self._value(row) for row in rows}

    def update_action(self, name: str, *, role_arn: str | None = None,
                      action_params: Mapping[str, Any] | None = None) -> MitigationAction:
        """UpdateMitigationAction (the type cannot change).

        :raises ResourceNotFoundError: no such action.
        :raises InvalidRequestError: bad role or parameters, or another type.
        """
        with self._store.transaction() as uow:
            row = uow.mitigation_actions.get(name)
            if row is None:
                raise ResourceNotFoundError(f"Mitigation action {name} does not exist")
            params = row.params
            if action_params is not None:
                kind = action_type_of(action_params)
                if kind.value != row.action_type:
                    raise InvalidRequestError(
                        f"Mitigation action {name} is a {row.action_type} action; its type "
                        "cannot change")
                params = {k: v for k, v in action_params.items() if v is not None}
            role = row.role_arn if role_arn is None else _check_role(role_arn)
            now = self._clock.now()
            uow.mitigation_actions.update(name, role_arn=role, params=params, now=now)
            row = MitigationActionRow(row.name, row.action_id, row.action_type, role, params,
                                      row.creation_date, now)
        return self._value(row)

    def delete_action(self, name: str) -> None:
        """DeleteMitigationAction (deleting a missing action is not an error, as in AWS)."""
        with self._store.transaction() as uow:
            uow.mitigation_actions.delete(name)

    def list_actions(self, *, action_type: str | None = None, max_results: int | None = None,
                     next_token: str | None = None) -> tuple[list[MitigationAction], str | None]:
        """ListMitigationActions, by name.

        :raises InvalidRequestError: a bad type, page size or token.
        """
        if action_type is not None and action_type not in MitigationActionType.__members__:
            raise InvalidRequestError(f"actionType {action_type!r} is not valid")
        limit = max_results or MAX_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"maxResults must be between 1 and {MAX_PAGE}")
        try:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.mitigation_actions.list_page(
                    action_type=action_type, limit=limit, token=next_token)
        except InvalidPageTokenError:
            raise InvalidRequestError("The nextToken is not valid") from None
        return [self._value(row) for row in rows], token

    def _value(self, row: MitigationActionRow) -> MitigationAction:
        return MitigationAction(row.name, self.arn(row.name), row.action_id,
                                MitigationActionType(row.action_type), row.role_arn,
                                dict(row.params), row.creation_date, row.last_modified_date)
