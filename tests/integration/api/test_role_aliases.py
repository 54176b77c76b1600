"""Role aliases through boto3 over HTTPS with SigV4: create, describe, update, list in
both orders and by page, delete, tags, and the requests Bastion refuses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from .conftest import ACCOUNT, KEYS, REGION, ApiBastion

Unique = Callable[[str], str]
OPERATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion-operator"
AUDITOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion-auditor"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion-admin"


def _unvalidated(api: ApiBastion) -> Any:
    """A client that sends what botocore would refuse, so that Bastion's own checks answer."""
    key_id, secret = KEYS["admin"]
    return boto3.client("iot", endpoint_url=api.url, region_name=REGION,
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        verify=api.verify,
                        config=BotoConfig(retries={"max_attempts": 1},
                                          parameter_validation=False))


def test_create_describe_update_delete(iot: Any, unique: Unique) -> None:
    name = unique("alias")
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:rolealias/{name}"
    created = iot.create_role_alias(roleAlias=name, roleArn=OPERATOR_ROLE,
                                    tags=[{"Key": "team", "Value": "fleet"}])
    assert (created["roleAlias"], created["roleAliasArn"]) == (name, arn)
    described = iot.describe_role_alias(roleAlias=name)["roleAliasDescription"]
    assert described["roleAlias"] == name
    assert described["roleAliasArn"] == arn
    assert described["roleArn"] == OPERATOR_ROLE
    assert described["owner"] == ACCOUNT
    assert described["credentialDurationSeconds"] == 3600  # AWS's default
    assert isinstance(described["creationDate"], datetime)
    assert described["lastModifiedDate"] == described["creationDate"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "team", "Value": "fleet"}]

    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_role_alias(roleAlias=name, roleArn=AUDITOR_ROLE)

    # An update replaces what it names and keeps the rest.
    updated = iot.update_role_alias(roleAlias=name, credentialDurationSeconds=900)
    assert (updated["roleAlias"], updated["roleAliasArn"]) == (name, arn)
    described = iot.describe_role_alias(roleAlias=name)["roleAliasDescription"]
    assert (described["roleArn"], described["credentialDurationSeconds"]) == (
        OPERATOR_ROLE, 900)
    iot.update_role_alias(roleAlias=name, roleArn=AUDITOR_ROLE)
    described = iot.describe_role_alias(roleAlias=name)["roleAliasDescription"]
    assert (described["roleArn"], described["credentialDurationSeconds"]) == (
        AUDITOR_ROLE, 900)
    assert described["lastModifiedDate"] >= described["creationDate"]

    iot.tag_resource(resourceArn=arn, tags=[{"Key": "site", "Value": "lyon"}])
    assert len(iot.list_tags_for_resource(resourceArn=arn)["tags"]) == 2

    iot.delete_role_alias(roleAlias=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_role_alias(roleAlias=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_role_alias(roleAlias=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_role_alias(roleAlias=name, credentialDurationSeconds=1200)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=arn)
    # Its tags went with it: an alias of the same name starts bare.
    iot.create_role_alias(roleAlias=name, roleArn=OPERATOR_ROLE)
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []
    iot.delete_role_alias(roleAlias=name)


def test_list_in_both_orders_and_by_page(iot: Any, unique: Unique) -> None:
    prefix = unique("list")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        iot.create_role_alias(roleAlias=name, roleArn=AUDITOR_ROLE,
                              credentialDurationSeconds=43200)

    def listed(**kwargs: Any) -> list[str]:
        found: list[str] = []
        marker: str | None = None
        while True:
            page = iot.list_role_aliases(pageSize=2, **kwargs,
                                         **({"marker": marker} if marker else {}))
            assert len(page["roleAliases"]) <= 2
            found.extend(page["roleAliases"])
            marker = page.get("nextMarker")
            if not marker:
                return [name for name in found if name.startswith(prefix)]

    assert listed() == names
    assert listed(ascendingOrder=True) == names
    assert listed(ascendingOrder=False) == names[::-1]
    paginated = [name for page in iot.get_paginator("list_role_aliases").paginate(
        PaginationConfig={"PageSize": 3}) for name in page["roleAliases"]]
    assert [name for name in paginated if name.startswith(prefix)] == names
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_role_aliases(marker="bm90LW91cnM=")
    for name in names:
        iot.delete_role_alias(roleAlias=name)


@pytest.mark.parametrize("role_arn", [
    ADMIN_ROLE,                                           # never on a device
    f"arn:aws:iam::{ACCOUNT}:role/devices/bastion-admin",  # nor behind an IAM path
    f"arn:aws:iam::{ACCOUNT}:role/light_bulb_role_001",   # names no Bastion role
    "arn:aws:iam::210987654321:role/bastion-operator",    # another account
    f"arn:aws:iot:{REGION}:{ACCOUNT}:role/bastion-operator",  # not IAM
    "not an arn at all, but long enough",
], ids=["admin", "admin-with-path", "unknown-role", "other-account", "not-iam", "not-arn"])
def test_refused_role_arns(iot: Any, unique: Unique, role_arn: str) -> None:
    name = unique("refused")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_role_alias(roleAlias=name, roleArn=role_arn)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_role_alias(roleAlias=name)
    iot.create_role_alias(roleAlias=name, roleArn=AUDITOR_ROLE)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_role_alias(roleAlias=name, roleArn=role_arn)
    described = iot.describe_role_alias(roleAlias=name)["roleAliasDescription"]
    assert described["roleArn"] == AUDITOR_ROLE
    iot.delete_role_alias(roleAlias=name)


def test_an_operator_path_is_accepted(iot: Any, unique: Unique) -> None:
    name = unique("path")
    role = f"arn:aws:iam::{ACCOUNT}:role/devices/bastion-operator"
    iot.create_role_alias(roleAlias=name, roleArn=role)
    assert iot.describe_role_alias(roleAlias=name)["roleAliasDescription"]["roleArn"] == role
    iot.delete_role_alias(roleAlias=name)


def test_bastion_checks_what_botocore_would(api_bastion: ApiBastion, unique: Unique) -> None:
    iot = _unvalidated(api_bastion)
    name = unique("checked")
    for duration in (899, 43201, 0):
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.create_role_alias(roleAlias=name, roleArn=OPERATOR_ROLE,
                                  credentialDurationSeconds=duration)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_role_alias(roleAlias="has space", roleArn=OPERATOR_ROLE)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_role_alias(roleAlias="x" * 129, roleArn=OPERATOR_ROLE)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_role_alias(roleAlias=name, roleArn=OPERATOR_ROLE,
                              tags=[{"Key": "aws:reserved", "Value": "x"}])
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_role_alias(roleAlias=name)  # a bad tag created nothing
    # AWS's alias pattern takes = , @ and - besides word characters.
    odd = f"{name}=a,b@c"
    iot.create_role_alias(roleAlias=odd, roleArn=OPERATOR_ROLE)
    assert iot.describe_role_alias(roleAlias=odd)["roleAliasDescription"]["roleAlias"] == odd
    iot.delete_role_alias(roleAlias=odd)


def test_roles_that_may_manage_aliases(api_bastion: ApiBastion, unique: Unique) -> None:
    name = unique("roles")
    operator = api_bastion.client(role="operator")
    operator.create_role_alias(roleAlias=name, roleArn=AUDITOR_ROLE)
    auditor = api_bastion.client(role="auditor")
    assert auditor.describe_role_alias(roleAlias=name)["roleAliasDescription"]["roleAlias"] == name
    with pytest.raises(auditor.exceptions.ClientError) as refused:
        auditor.create_role_alias(roleAlias=unique("nope"), roleArn=AUDITOR_ROLE)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    operator.delete_role_alias(roleAlias=name)
