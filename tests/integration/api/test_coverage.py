"""Every operation of the three models either has a handler or answers, through boto3,
``NotImplementedException`` naming it: the API never pretends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from botocore.model import ListShape, Shape, StringShape, StructureShape

from bastion.api import SERVICE_NAMES, implemented_operations, load_catalog

from .conftest import KEYS, NO_RETRIES, REGION, ApiBastion


def sample(shape: Shape) -> Any:
    """The smallest value botocore's client-side validation accepts for ``shape``."""
    kind = shape.type_name
    low = shape.metadata.get("min")
    if isinstance(shape, StructureShape):
        names = list(shape.required_members)
        if shape.is_tagged_union and not names:
            names = list(shape.members)[:1]
        return {name: sample(shape.members[name]) for name in names}
    if isinstance(shape, ListShape):
        return [sample(shape.member) for _ in range(int(low or 0))]
    if kind == "map":
        return {}
    if isinstance(shape, StringShape):
        return shape.enum[0] if shape.enum else "a" * max(int(low or 1), 1)
    if kind in ("integer", "long"):
        return int(low if low is not None else 1)
    if kind in ("double", "float"):
        return float(low if low is not None else 1)
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime.now(UTC)
    if kind == "blob":
        return b"x"
    return None


def test_every_operation_is_handled_or_refused_by_name(api_bastion: ApiBastion) -> None:
    catalog = load_catalog()
    summary = []
    for service in SERVICE_NAMES:
        api = catalog.services[service]
        client = api_bastion.client(service)
        # Operations with an endpoint host prefix (signer's ``data-``: GetRevocationStatus,
        # SignPayload) reach an endpoint URL only without it.
        key_id, secret = KEYS["admin"]
        unprefixed = boto3.client(
            service, endpoint_url=api_bastion.url, region_name=REGION,
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            verify=api_bastion.verify,
            config=NO_RETRIES.merge(BotoConfig(inject_host_prefix=False)))
        implemented = implemented_operations(service)
        names = api.operation_names
        assert implemented <= set(names), implemented - set(names)
        for name in names:
            if name in implemented:
                continue
            operation = api.operation(name)
            params = sample(operation.input_shape) if operation.input_shape else {}
            caller = unprefixed if (operation.endpoint or {}).get("hostPrefix") else client
            try:
                caller._make_api_call(name, params)
            except ClientError as error:
                assert error.response["Error"]["Code"] == "NotImplementedException", name
                assert error.response["Error"]["Message"] == \
                    f"{service}:{name} is not implemented by Bastion"
            else:
                raise AssertionError(f"{service}:{name} answered without a handler")
        summary.append(f"{service} {len(implemented)}/{len(names)}")
    print("implemented operations:", ", ".join(summary))


TAGS_AND_BILLING_GROUPS = frozenset({
    "TagResource", "UntagResource", "ListTagsForResource", "CreateBillingGroup",
    "DescribeBillingGroup", "UpdateBillingGroup", "DeleteBillingGroup", "ListBillingGroups",
    "AddThingToBillingGroup", "RemoveThingFromBillingGroup", "ListThingsInBillingGroup"})


def test_tag_and_billing_group_operations_are_handled() -> None:
    assert TAGS_AND_BILLING_GROUPS <= implemented_operations("iot")
    # 167 iot operations had handlers before these eleven.
    assert len(implemented_operations("iot")) >= 167 + len(TAGS_AND_BILLING_GROUPS)


def test_signing_and_ota_operations_are_handled() -> None:
    assert {"ListSigningPlatforms", "GetSigningPlatform", "PutSigningProfile",
            "GetSigningProfile", "ListSigningProfiles", "CancelSigningProfile",
            "RevokeSigningProfile", "StartSigningJob", "DescribeSigningJob",
            "ListSigningJobs", "RevokeSignature"} <= implemented_operations("signer")
    assert {"CreateOTAUpdate", "GetOTAUpdate", "ListOTAUpdates",
            "DeleteOTAUpdate"} <= implemented_operations("iot")


def test_stream_and_payload_operations_are_handled() -> None:
    assert {"CreateStream", "DescribeStream", "ListStreams", "UpdateStream",
            "DeleteStream"} <= implemented_operations("iot")
    assert {"SignPayload", "GetRevocationStatus"} <= implemented_operations("signer")
