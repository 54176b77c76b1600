"""Policies: versions (at most five, one default), deletion rules, attachments,
inheritance through thing groups, and the broker's principal resolution."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bastion.policy import Policy as ParsedPolicy
from bastion.registry import (
    CertificateRecord,
    CertificateStatus,
    DeleteConflictError,
    IdentityService,
    InvalidRequestError,
    LimitExceededError,
    MalformedPolicyDocumentError,
    PolicyAttachmentChanged,
    PolicyDefaultVersionChanged,
    PolicyDeleted,
    PolicyService,
    PolicySummary,
    RegistryService,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionsLimitExceededError,
)

from .conftest import EventLog


def document(topic: str = "a") -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Publish",
                       "Resource": f"arn:aws:iot:eu-west-1:111122223333:topic/{topic}"}],
    })


def test_create_and_get_policy(policies: PolicyService) -> None:
    created = policies.create_policy("p1", document())
    assert created.policy_arn == "arn:aws:iot:eu-west-1:111122223333:policy/p1"
    assert created.default_version_id == "1"
    assert created.policy_document == document()
    assert policies.get_policy("p1") == created
    with pytest.raises(ResourceAlreadyExistsError):
        policies.create_policy("p1", document())
    with pytest.raises(ResourceNotFoundError):
        policies.get_policy("nope")


@pytest.mark.parametrize("name", ["", "x" * 129, "sp ace", "slash/", "ü"],
                         ids=["empty", "too-long", "space", "slash", "unicode"])
def test_policy_name_rules(policies: PolicyService, name: str) -> None:
    with pytest.raises(InvalidRequestError):
        policies.create_policy(name, document())


def test_policy_names_allow_aws_punctuation(policies: PolicyService) -> None:
    policies.create_policy("a+b=c,d.e@f-g_h", document())


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"Statement": []}',
     '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publsh", "Resource": "*"}]}',
     json.dumps({"Version": "2012-10-17", "Statement": [
         {"Effect": "Allow", "Action": "iot:Publish", "Resource": "x" * 2100}]})],
    ids=["empty", "not-json", "array", "no-statements", "unknown-action", "too-long"],
)
def test_malformed_documents(policies: PolicyService, text: str) -> None:
    with pytest.raises(MalformedPolicyDocumentError) as caught:
        policies.create_policy("p", text)
    assert caught.value.aws_error_type == "MalformedPolicyException"
    assert caught.value.http_status == 400
    with pytest.raises(ResourceNotFoundError):
        policies.get_policy("p")


def test_at_most_five_versions(policies: PolicyService, events: EventLog) -> None:
    policies.create_policy("p", document("v1"))
    for index in range(2, 6):
        version = policies.create_policy_version("p", document(f"v{index}"))
        assert version.version_id == str(index)
        assert not version.is_default_version
    assert events.events == []
    with pytest.raises(VersionsLimitExceededError) as caught:
        policies.create_policy_version("p", document("v6"))
    assert caught.value.aws_error_type == "VersionsLimitExceededException"
    assert caught.value.http_status == 409
    assert [v.version_id for v in policies.list_policy_versions("p")] == ["5", "4", "3", "2", "1"]

    # Deleting a version makes room; ids are never reused.
    policies.delete_policy_version("p", "3")
    again = policies.create_policy_version("p", document("v6"), set_as_default=True)
    assert again.version_id == "6"
    assert again.is_default_version
    assert events.events == [PolicyDefaultVersionChanged("p", "6")]
    assert policies.get_policy("p").default_version_id == "6"
    assert policies.get_policy("p").policy_document == document("v6")


def test_default_version_rules(policies: PolicyService, events: EventLog) -> None:
    policies.create_policy("p", document("v1"))
    policies.create_policy_version("p", document("v2"))
    with pytest.raises(DeleteConflictError, match="default version"):
        policies.delete_policy_version("p", "1")
    policies.set_default_policy_version("p", "2")
    assert events.events == [PolicyDefaultVersionChanged("p", "2")]
    policies.set_default_policy_version("p", "2")  # already the default: no event
    assert len(events.events) == 1
    versions = {v.version_id: v.is_default_version for v in policies.list_policy_versions("p")}
    assert versions == {"1": False, "2": True}
    assert policies.get_policy_version("p", "1").policy_document == document("v1")
    policies.delete_policy_version("p", "1")
    with pytest.raises(ResourceNotFoundError):
        policies.get_policy_version("p", "1")
    with pytest.raises(ResourceNotFoundError):
        policies.set_default_policy_version("p", "1")
    with pytest.raises(ResourceNotFoundError):
        policies.delete_policy_version("p", "9")
    with pytest.raises(InvalidRequestError):
        policies.get_policy_version("p", "one")


def test_delete_policy_conflicts(policies: PolicyService, registry: RegistryService,
                                 events: EventLog) -> None:
    policies.create_policy("p", document())
    policies.create_policy_version("p", document("v2"))
    with pytest.raises(DeleteConflictError) as caught:
        policies.delete_policy("p")
    assert caught.value.aws_error_type == "DeleteConflictException"
    policies.delete_policy_version("p", "2")

    group = registry.create_thing_group("g")
    policies.attach_policy("p", group.thing_group_arn)
    with pytest.raises(DeleteConflictError, match="attached"):
        policies.delete_policy("p")
    policies.detach_policy("p", group.thing_group_arn)
    events.clear()
    policies.delete_policy("p")
    assert events.events == [PolicyDeleted("p")]
    with pytest.raises(ResourceNotFoundError):
        policies.delete_policy("p")


def test_attach_and_detach(policies: PolicyService, registry: RegistryService,
                           new_certificate: Callable[..., CertificateRecord],
                           events: EventLog) -> None:
    cert = new_certificate()
    group = registry.create_thing_group("g")
    policies.create_policy("p", document())
    events.clear()
    policies.attach_policy("p", cert.certificate_arn)
    policies.attach_policy("p", cert.certificate_arn)  # again: no-op
    policies.attach_policy("p", group.thing_group_arn)
    assert events.events == [
        PolicyAttachmentChanged("p", cert.certificate_arn, True),
        PolicyAttachmentChanged("p", group.thing_group_arn, True),
    ]
    targets, _ = policies.list_targets_for_policy("p")
    assert targets == [cert.certificate_arn, group.thing_group_arn]
    assert policies.list_attached_policies(cert.certificate_arn) == (
        [PolicySummary("p", "arn:aws:iot:eu-west-1:111122223333:policy/p")], None
    )
    events.clear()
    policies.detach_policy("p", cert.certificate_arn)
    policies.detach_policy("p", cert.certificate_arn)  # again: no-op
    assert events.events == [PolicyAttachmentChanged("p", cert.certificate_arn, False)]
    assert policies.list_attached_policies(cert.certificate_arn) == ([], None)


def test_attach_errors(policies: PolicyService, registry: RegistryService,
                       new_certificate: Callable[..., CertificateRecord]) -> None:
    cert = new_certificate()
    policies.create_policy("p", document())
    with pytest.raises(ResourceNotFoundError):
        policies.attach_policy("missing", cert.certificate_arn)
    with pytest.raises(ResourceNotFoundError):  # no such group
        policies.attach_policy("p", "arn:aws:iot:eu-west-1:111122223333:thinggroup/none")
    with pytest.raises(ResourceNotFoundError):  # another account
        policies.attach_policy("p", f"arn:aws:iot:eu-west-1:999999999999:cert/{'a' * 64}")
    for bad in ("not-an-arn", "arn:aws:iot:eu-west-1:111122223333:thing/dev"):
        with pytest.raises(InvalidRequestError):
            policies.attach_policy("p", bad)


def test_at_most_ten_policies_per_target(policies: PolicyService,
                                         new_certificate: Callable[..., CertificateRecord]) -> None:
    cert = new_certificate()
    for index in range(11):
        policies.create_policy(f"p{index:02d}", document())
    for index in range(10):
        policies.attach_policy(f"p{index:02d}", cert.certificate_arn)
    with pytest.raises(LimitExceededError):
        policies.attach_policy("p10", cert.certificate_arn)
    page, token = policies.list_attached_policies(cert.certificate_arn, page_size=4)
    assert [p.policy_name for p in page] == ["p00", "p01", "p02", "p03"]
    page, token = policies.list_attached_policies(cert.certificate_arn, page_size=4, marker=token)
    assert [p.policy_name for p in page] == ["p04", "p05", "p06", "p07"]
    page, token = policies.list_attached_policies(cert.certificate_arn, page_size=4, marker=token)
    assert [p.policy_name for p in page] == ["p08", "p09"]
    assert token is None


def test_list_policies_paginates(policies: PolicyService) -> None:
    for index in range(5):
        policies.create_policy(f"policy-{index}", document())
    names: list[str] = []
    token = None
    while True:
        page, token = policies.list_policies(max_results=2, next_token=token)
        names.extend(p.policy_name for p in page)
        if token is None:
            break
    assert names == [f"policy-{index}" for index in range(5)]


# -- inheritance and principal resolution ------------------------------------------------


@pytest.fixture
def fleet(registry: RegistryService, policies: PolicyService,
          new_certificate: Callable[..., CertificateRecord]) -> CertificateRecord:
    """root(p-root) ─ site(p-site) ─ line ; thing "dev" in "line" with cert attached;
    the cert itself has p-cert. A sibling group "other" has p-other."""
    registry.create_thing_group("root")
    registry.create_thing_group("site", parent_group_name="root")
    registry.create_thing_group("line", parent_group_name="site")
    registry.create_thing_group("other", parent_group_name="root")
    registry.create_thing("dev", attributes={"room": "lab"})
    registry.add_thing_to_thing_group(thing_group_name="line", thing_name="dev")
    cert = new_certificate(active=True)
    registry.attach_thing_principal("dev", cert.certificate_arn)
    for name, target in (("p-root", "root"), ("p-site", "site"), ("p-other", "other")):
        policies.create_policy(name, document(name))
        policies.attach_policy(name, registry.describe_thing_group(target).thing_group_arn)
    policies.create_policy("p-cert", document("cert"))
    policies.attach_policy("p-cert", cert.certificate_arn)
    # Attached both directly and through a group: listed once.
    policies.attach_policy("p-root", cert.certificate_arn)
    return cert


def test_policies_are_inherited_down_the_hierarchy(
        fleet: CertificateRecord, policies: PolicyService, registry: RegistryService) -> None:
    line_arn = registry.describe_thing_group("line").thing_group_arn
    assert policies.list_attached_policies(line_arn) == ([], None)
    inherited, _ = policies.list_attached_policies(line_arn, recursive=True)
    assert [p.policy_name for p in inherited] == ["p-root", "p-site"]

    effective = policies.get_effective_policies(thing_name="dev")
    assert [p.policy_name for p in effective] == ["p-root", "p-site"]
    both = policies.get_effective_policies(principal=fleet.certificate_arn, thing_name="dev")
    assert [p.policy_name for p in both] == ["p-cert", "p-root", "p-site"]
    assert {p.policy_name: p.target_arn for p in both}["p-root"] == fleet.certificate_arn
    with pytest.raises(InvalidRequestError):
        policies.get_effective_policies()
    with pytest.raises(ResourceNotFoundError):
        policies.get_effective_policies(thing_name="ghost")


def test_resolve_principal(fleet: CertificateRecord, identity: IdentityService,
                           policies: PolicyService) -> None:
    principal = identity.resolve_principal(fleet.certificate_id, client_id="dev")
    assert principal is not None
    assert principal.may_connect
    assert principal.status is CertificateStatus.ACTIVE
    assert principal.thing_names == ("dev",)
    assert principal.thing is not None
    assert principal.thing.attributes == {"room": "lab"}
    assert [p.policy_name for p in principal.policies] == ["p-cert", "p-root", "p-site"]
    parsed = [p.parse() for p in principal.policies]
    assert all(isinstance(p, ParsedPolicy) for p in parsed)
    assert parsed[0].version_id == "1"

    # A client id that is not an attached thing gets the certificate's policies only.
    stranger = identity.resolve_principal(fleet.certificate_id, client_id="someone-else")
    assert stranger is not None and stranger.thing is None
    assert [p.policy_name for p in stranger.policies] == ["p-cert", "p-root"]

    # The default version is what counts.
    policies.create_policy_version("p-cert", document("new"), set_as_default=True)
    principal = identity.resolve_principal(fleet.certificate_id, client_id="dev")
    assert principal is not None
    p_cert = next(p for p in principal.policies if p.policy_name == "p-cert")
    assert p_cert.version_id == "2"
    assert p_cert.policy_document == document("new")


def test_resolve_principal_reflects_state_changes(
        fleet: CertificateRecord, identity: IdentityService, registry: RegistryService) -> None:
    registry.remove_thing_from_thing_group(thing_group_name="line", thing_name="dev")
    principal = identity.resolve_principal(fleet.certificate_id, client_id="dev")
    assert principal is not None
    assert [p.policy_name for p in principal.policies] == ["p-cert", "p-root"]
    identity.update_certificate(fleet.certificate_id, "INACTIVE")
    principal = identity.resolve_principal(fleet.certificate_id, client_id="dev")
    assert principal is not None and not principal.may_connect


def test_deleting_a_group_detaches_its_policies(
        fleet: CertificateRecord, registry: RegistryService, policies: PolicyService,
        events: EventLog) -> None:
    other_arn = registry.describe_thing_group("other").thing_group_arn
    events.clear()
    registry.delete_thing_group("other")
    assert PolicyAttachmentChanged("p-other", other_arn, False) in events.events
    assert policies.list_targets_for_policy("p-other") == ([], None)
    policies.delete_policy("p-other")


def test_thing_principal_attachment_rules(
        registry: RegistryService, new_certificate: Callable[..., CertificateRecord]) -> None:
    cert = new_certificate()
    registry.create_thing("dev")
    with pytest.raises(ResourceNotFoundError):
        registry.attach_thing_principal("ghost", cert.certificate_arn)
    with pytest.raises(ResourceNotFoundError):
        registry.attach_thing_principal(
            "dev", f"arn:aws:iot:eu-west-1:111122223333:cert/{'0' * 64}")
    with pytest.raises(InvalidRequestError):
        registry.attach_thing_principal("dev", "arn:aws:iot:eu-west-1:111122223333:thing/x")
    registry.attach_thing_principal("dev", cert.certificate_arn)
    assert registry.list_thing_principals("dev") == ([cert.certificate_arn], None)
    assert registry.list_principal_things(cert.certificate_arn) == (["dev"], None)
    with pytest.raises(InvalidRequestError, match="still attached to one or more principals"):
        registry.delete_thing("dev")
    registry.detach_thing_principal("dev", cert.certificate_arn)
    registry.delete_thing("dev")
    assert registry.list_principal_things(cert.certificate_arn) == ([], None)
