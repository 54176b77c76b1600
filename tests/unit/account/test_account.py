"""bastion.account: the one place ARNs are written, and their splitting back into parts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.account import Account, Arn, format_arn, parse_arn
from bastion.config import ConfigError, load_config

ACCOUNT = Account("eu-west-1", "111122223333")


@pytest.mark.parametrize(("resource", "service", "expected"), [
    ("thing/dev1", "iot", "arn:aws:iot:eu-west-1:111122223333:thing/dev1"),
    ("topic/a/b/c", "iot", "arn:aws:iot:eu-west-1:111122223333:topic/a/b/c"),
    ("topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*", "iot",
     ("arn:aws:iot:eu-west-1:111122223333:topicfilter/$aws/things/"
      "${iot:Connection.Thing.ThingName}/*")),
    ("cert/" + "ab" * 32, "iot", "arn:aws:iot:eu-west-1:111122223333:cert/" + "ab" * 32),
    ("ops-alerts", "sns", "arn:aws:sns:eu-west-1:111122223333:ops-alerts"),
    ("role/bastion-provisioning", "iam", "arn:aws:iam::111122223333:role/bastion-provisioning"),
    ("", "iot", "arn:aws:iot:eu-west-1:111122223333:"),
], ids=["thing", "topic-with-slashes", "policy-variable", "certificate", "sns-target",
        "iam-is-global", "prefix"])
def test_arn_formatting(resource: str, service: str, expected: str) -> None:
    assert ACCOUNT.arn(resource, service=service) == expected


def test_the_defaults_are_an_unconfigured_installation() -> None:
    assert Account() == Account("us-east-1", "123456789012")
    assert Account().arn("thing/x") == "arn:aws:iot:us-east-1:123456789012:thing/x"


@pytest.mark.parametrize("region", [
    "", "us-east-1:evil", "us-east-1/evil", "us-east-1 ", "US-EAST-1", "us-east", "*",
    "us-east-1\n", "arn:aws:iot", "eu-west-100",
], ids=repr)
def test_hostile_regions_are_refused(region: str) -> None:
    with pytest.raises(ValueError, match="region"):
        Account(region, "111122223333")


@pytest.mark.parametrize("account_id", [
    "", "11112222333", "1111222233334", "11112222333a", "111122223333:", "1111/2222333",
    "*", " 111122223333", "１１１１２２２２３３３３",  # full-width digits are not ASCII digits
], ids=repr)
def test_account_ids_must_be_12_digits(account_id: str) -> None:
    with pytest.raises(ValueError, match="account_id"):
        Account("eu-west-1", account_id)


@pytest.mark.parametrize(("region", "account_id"), [
    (None, "111122223333"), ("eu-west-1", 111122223333), (b"eu-west-1", "111122223333"),
])
def test_wrong_types_are_type_errors(region: object, account_id: object) -> None:
    with pytest.raises(TypeError):
        Account(region, account_id)  # type: ignore[arg-type]


def test_an_account_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ACCOUNT.region = "us-west-2"  # type: ignore[misc]


@pytest.mark.parametrize("service", ["", "IOT", "iot:thing", "i/o"])
def test_service_names_are_checked(service: str) -> None:
    with pytest.raises(ValueError, match="service"):
        ACCOUNT.arn("thing/x", service=service)


@pytest.mark.parametrize(("text", "expected"), [
    ("arn:aws:iot:eu-west-1:111122223333:thing/dev1",
     Arn("aws", "iot", "eu-west-1", "111122223333", "thing/dev1")),
    ("arn:aws:iot:eu-west-1:111122223333:topic/a:b/c",
     Arn("aws", "iot", "eu-west-1", "111122223333", "topic/a:b/c")),
    ("arn:aws:iam::111122223333:role/r", Arn("aws", "iam", "", "111122223333", "role/r")),
    ("arn:aws-cn:iot:*:*:topic/x", Arn("aws-cn", "iot", "*", "*", "topic/x")),
], ids=["thing", "colon-in-resource", "global-service", "wildcards"])
def test_parse_arn(text: str, expected: Arn) -> None:
    assert parse_arn(text) == expected


@pytest.mark.parametrize("text", [
    "", "arn", "arn:aws:iot:eu-west-1:111122223333", "arn:aws:iot:eu-west-1:111122223333:",
    "arn::iot:eu-west-1:111122223333:thing/x", "arn:aws::eu-west-1:111122223333:thing/x",
    "urn:aws:iot:eu-west-1:111122223333:thing/x", "thing/x",
], ids=repr)
def test_parse_arn_refuses_what_is_not_an_arn(text: str) -> None:
    with pytest.raises(ValueError):
        parse_arn(text)


def test_parse_arn_needs_a_string() -> None:
    with pytest.raises(TypeError):
        parse_arn(None)  # type: ignore[arg-type]


def test_owns() -> None:
    assert ACCOUNT.owns(parse_arn(ACCOUNT.arn("thing/x")))
    assert ACCOUNT.owns(parse_arn(ACCOUNT.arn("ops", service="sns")), service="sns")
    assert ACCOUNT.owns(parse_arn(ACCOUNT.arn("role/r", service="iam")), service="iam")
    assert not ACCOUNT.owns(parse_arn(ACCOUNT.arn("ops", service="sns")))
    assert not ACCOUNT.owns(parse_arn("arn:aws:iot:us-east-1:111122223333:thing/x"))
    assert not ACCOUNT.owns(parse_arn("arn:aws:iot:eu-west-1:444455556666:thing/x"))
    assert not ACCOUNT.owns(parse_arn("arn:aws-cn:iot:eu-west-1:111122223333:thing/x"))


_FIELD = st.text(st.characters(blacklist_characters=":", blacklist_categories=("Cs",)),
                 max_size=12)
_RESOURCE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(partition=_FIELD.filter(bool), service=_FIELD.filter(bool), region=_FIELD,
       account_id=_FIELD, resource=_RESOURCE)
def test_format_and_parse_are_inverse(partition: str, service: str, region: str,
                                      account_id: str, resource: str) -> None:
    text = format_arn(resource, partition=partition, service=service, region=region,
                      account_id=account_id)
    assert parse_arn(text) == Arn(partition, service, region, account_id, resource)


@given(resource=_RESOURCE)
def test_every_arn_of_the_account_is_its_own(resource: str) -> None:
    arn = parse_arn(ACCOUNT.arn(resource))
    assert ACCOUNT.owns(arn) and arn.resource == resource


def test_the_account_section_of_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[account]\nregion = "ap-southeast-2"\naccount_id = "444455556666"\n')
    assert load_config(path).account == Account("ap-southeast-2", "444455556666")
    path.write_text('[account]\nregion = "ap-southeast-2:x"\n')
    with pytest.raises(ConfigError, match="region"):
        load_config(path)
    path.write_text('[account]\naccount_id = "4444"\n')
    with pytest.raises(ConfigError, match="account_id"):
        load_config(path)
