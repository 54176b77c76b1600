"""The tagging service, on both backends, and AWS's tag rules as a table."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.account import Account
from bastion.registry import (
    MAX_TAGS,
    IdentityService,
    InvalidRequestError,
    LimitExceededError,
    PolicyService,
    RegistryService,
    ResourceNotFoundError,
    TaggingService,
    check_tags,
)
from bastion.store import Store

from .conftest import ExternalCa

DOCUMENT = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*",' \
           '"Resource":"*"}]}'


@pytest.fixture
def tags(store: Store, account: Account) -> TaggingService:
    return TaggingService(store, account=account, page_size=2)


@pytest.mark.parametrize(("given", "expected"), [
    (None, {}),
    ([], {}),
    ([{"Key": "a"}], {"a": ""}),
    ([{"Key": "a", "Value": None}], {"a": ""}),
    ([{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}], {"a": "2"}),
    ([{"Key": "Ñandú 東京 ٣ _.:/=+-@", "Value": "x"}], {"Ñandú 東京 ٣ _.:/=+-@": "x"}),
    ([{"Key": "k" * 128, "Value": "v" * 256}], {"k" * 128: "v" * 256}),
    ([{"Key": "awsome", "Value": "aws:value is fine"}], {"awsome": "aws:value is fine"}),
], ids=["none", "empty", "no-value", "null-value", "last-wins", "unicode", "longest",
        "aws-in-value"])
def test_valid_tags(given: Any, expected: dict[str, str]) -> None:
    assert check_tags(given) == expected


@pytest.mark.parametrize("given", [
    [{"Key": "", "Value": ""}],
    [{"Key": "k" * 129}],
    [{"Key": "k", "Value": "v" * 257}],
    [{"Key": "aws:x"}], [{"Key": "AWS:x"}], [{"Key": "aWs:"}],
    [{"Key": "semi;colon"}], [{"Key": "new\nline"}], [{"Key": "tab\t"}], [{"Key": "a*"}],
    [{"Key": 3}], [{"Value": "no key"}], ["Key=a"], "Key=a",
    [{"Key": f"k{i}"} for i in range(MAX_TAGS + 1)],
], ids=["empty-key", "long-key", "long-value", "aws", "AWS", "aWs", "semicolon", "newline",
        "tab", "star", "number", "missing-key", "string-item", "string", "fifty-one"])
def test_invalid_tags(given: Any) -> None:
    with pytest.raises(InvalidRequestError):
        check_tags(given)


def test_tag_untag_list_with_paging(registry: RegistryService, tags: TaggingService) -> None:
    arn = registry.create_thing_group("g").thing_group_arn
    tags.tag_resource(arn, [{"Key": k, "Value": k.upper()} for k in "edcba"])
    first, token = tags.list_tags_for_resource(arn)
    assert first == [("a", "A"), ("b", "B")]
    second, token = tags.list_tags_for_resource(arn, next_token=token)
    third, end = tags.list_tags_for_resource(arn, next_token=token)
    assert second + third == [("c", "C"), ("d", "D"), ("e", "E")] and end is None
    tags.untag_resource(arn, ["a", "b", "zz"])
    assert tags.tags_of("thinggroup", "g") == {"c": "C", "d": "D", "e": "E"}
    with pytest.raises(InvalidRequestError):
        tags.list_tags_for_resource(arn, next_token="garbage")
    with pytest.raises(InvalidRequestError):
        tags.tag_resource(arn, [])
    with pytest.raises(TypeError):
        tags.untag_resource(arn, "abc")


def test_the_limit_counts_distinct_keys(registry: RegistryService,
                                        tags: TaggingService) -> None:
    arn = registry.create_thing_type("tt").thing_type_arn
    tags.tag_resource(arn, [{"Key": f"k{i}"} for i in range(MAX_TAGS - 1)])
    tags.tag_resource(arn, [{"Key": "k0", "Value": "again"}, {"Key": "last"}])
    with pytest.raises(LimitExceededError) as refused:
        tags.tag_resource(arn, [{"Key": "k1", "Value": "x"}, {"Key": "over"}])
    assert (refused.value.aws_error_type, refused.value.http_status) == (
        "LimitExceededException", 410)
    assert len(tags.tags_of("thingtype", "tt")) == MAX_TAGS
    assert tags.tags_of("thingtype", "tt")["k1"] == ""  # the refused call changed nothing


def test_which_arns_take_tags(registry: RegistryService, policies: PolicyService,
                              tags: TaggingService, account: Account, store: Store) -> None:
    thing = registry.create_thing("t").thing_arn
    with pytest.raises(InvalidRequestError):
        tags.tag_resource(thing, [{"Key": "a"}])
    with pytest.raises(InvalidRequestError):
        tags.list_tags_for_resource("arn:aws:iot:eu-west-1:111122223333:cert/" + "a" * 64)
    with pytest.raises(ResourceNotFoundError):
        tags.list_tags_for_resource(account.arn("thinggroup/none"))
    other_region = Account("us-west-2", account.account_id).arn("policy/p")
    policies.create_policy("p", DOCUMENT)
    with pytest.raises(ResourceNotFoundError):
        tags.tag_resource(other_region, [{"Key": "a"}])
    tags.tag_resource(account.arn("policy/p"), [{"Key": "a"}])
    policies.delete_policy("p")
    policies.create_policy("p", DOCUMENT)
    assert tags.tags_of("policy", "p") == {}
    with pytest.raises(ValueError):
        tags.tag_new_resource("thing", "t", {"a": ""})
    with pytest.raises(ResourceNotFoundError):
        tags.tag_new_resource("thinggroup", "never-created", {"a": ""})
    with pytest.raises(ValueError):
        TaggingService(store, page_size=0)


def test_ca_certificates_take_tags_and_lose_them_when_deleted(
        identity: IdentityService, tags: TaggingService, external_ca: ExternalCa) -> None:
    verification = external_ca.issue(identity.get_registration_code())
    record = identity.register_ca_certificate(external_ca.pem, verification)
    tags.tag_new_resource("cacert", record.certificate_id, {"issuer": "plant"})
    assert tags.list_tags_for_resource(record.certificate_arn) == ([("issuer", "plant")],
                                                                   None)
    identity.delete_ca_certificate(record.certificate_id)  # registered INACTIVE
    with pytest.raises(ResourceNotFoundError):
        tags.list_tags_for_resource(record.certificate_arn)
    assert tags.tags_of("cacert", record.certificate_id) == {}
