"""Temporary credentials: what a session token carries, and every way one is refused
(tampered, for another key id, under another master key, expired, its certificate gone,
a role it may not carry)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.access import (
    ASSUMABLE_ROLES,
    ExpiredSessionTokenError,
    InvalidSessionTokenError,
    Role,
    TemporaryCredentialService,
    role_arn,
    role_of_arn,
)
from bastion.access._session_tokens import (
    SESSION_KEY_ID_PATTERN,
    SessionClaims,
    TokenError,
    open_claims,
    seal_claims,
)
from bastion.account import Account
from bastion.pki import Keystore
from support.clock import ManualClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KEYSTORE = Keystore.generate()


def _service(active: set[str] | None = None, clock: ManualClock | None = None
             ) -> TemporaryCredentialService:
    allowed = {"c" * 64} if active is None else active
    return TemporaryCredentialService(KEYSTORE, certificate_active=allowed.__contains__,
                                      clock=clock or ManualClock(START))


def test_issue_then_resolve() -> None:
    clock = ManualClock(START)
    service = _service(clock=clock)
    issued = service.issue(role=Role.OPERATOR, role_alias="uploader", thing_name="dev1",
                           certificate_id="c" * 64, duration_seconds=900)
    assert SESSION_KEY_ID_PATTERN.fullmatch(issued.access_key_id)
    assert len(issued.secret_access_key) == 40
    assert issued.expiration == START + timedelta(seconds=900)
    assert issued.secret_access_key not in repr(issued)
    claims = service.resolve(issued.access_key_id, issued.session_token)
    assert (claims.secret_access_key, claims.role, claims.role_alias, claims.thing_name,
            claims.certificate_id) == (issued.secret_access_key, Role.OPERATOR, "uploader",
                                       "dev1", "c" * 64)
    # The secret is not readable from the token without the master key.
    assert issued.secret_access_key.encode() not in base64.b64decode(issued.session_token)


def test_expiry_is_exact() -> None:
    clock = ManualClock(START)
    service = _service(clock=clock)
    issued = service.issue(role=Role.AUDITOR, role_alias="a", thing_name=None,
                           certificate_id="c" * 64, duration_seconds=900)
    clock.advance(timedelta(seconds=899))
    service.resolve(issued.access_key_id, issued.session_token)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(ExpiredSessionTokenError) as refused:
        service.resolve(issued.access_key_id, issued.session_token)
    assert (refused.value.aws_error_type, refused.value.http_status) == (
        "ExpiredTokenException", 403)


def test_refused_tokens() -> None:
    active = {"c" * 64}
    service = _service(active)
    issued = service.issue(role=Role.AUDITOR, role_alias="a", thing_name=None,
                           certificate_id="c" * 64, duration_seconds=3600)
    other = service.issue(role=Role.AUDITOR, role_alias="a", thing_name=None,
                          certificate_id="c" * 64, duration_seconds=3600)
    raw = bytearray(base64.b64decode(issued.session_token))
    raw[-1] ^= 1
    tampered = base64.b64encode(bytes(raw)).decode()
    foreign = TemporaryCredentialService(Keystore.generate(),
                                         certificate_active=active.__contains__,
                                         clock=ManualClock(START)).issue(
        role=Role.AUDITOR, role_alias="a", thing_name=None, certificate_id="c" * 64,
        duration_seconds=3600)
    for key_id, token in [(issued.access_key_id, tampered),
                          (issued.access_key_id, other.session_token),
                          (foreign.access_key_id, foreign.session_token),
                          (issued.access_key_id, ""),
                          (issued.access_key_id, "é"),
                          ("AKIAAAAAAAAAAAAAAAAA", issued.session_token)]:
        with pytest.raises(InvalidSessionTokenError) as refused:
            service.resolve(key_id, token)
        assert (refused.value.aws_error_type, refused.value.http_status) == (
            "UnrecognizedClientException", 403)
    # The certificate leaves ACTIVE: its credentials stop at once; back, they work again.
    active.clear()
    with pytest.raises(InvalidSessionTokenError):
        service.resolve(issued.access_key_id, issued.session_token)
    active.add("c" * 64)
    service.resolve(issued.access_key_id, issued.session_token)


def test_admin_is_never_issued_nor_accepted() -> None:
    service = _service()
    with pytest.raises(ValueError, match="admin"):
        service.issue(role=Role.ADMIN, role_alias="a", thing_name=None,
                      certificate_id="c" * 64, duration_seconds=900)
    # A token saying admin opens (it was sealed with the master key) but is refused.
    claims = SessionClaims("ASIAAAAAAAAAAAAAAAAA", "s" * 40, Role.ADMIN, "a", None, "c" * 64,
                           START, START + timedelta(hours=1))
    token = seal_claims(KEYSTORE, claims)
    assert open_claims(KEYSTORE, claims.access_key_id, token).role is Role.ADMIN
    with pytest.raises(InvalidSessionTokenError):
        service.resolve(claims.access_key_id, token)


@pytest.mark.parametrize("duration", [899, 43201, 0, True])
def test_durations_outside_aws_range(duration: int) -> None:
    with pytest.raises(ValueError):
        _service().issue(role=Role.AUDITOR, role_alias="a", thing_name=None,
                         certificate_id="c" * 64, duration_seconds=duration)


@given(st.text(max_size=200))
def test_no_string_opens_as_a_token(text: str) -> None:
    with pytest.raises(TokenError):
        open_claims(KEYSTORE, "ASIAAAAAAAAAAAAAAAAA", text)


def test_role_arns() -> None:
    account = Account("eu-west-1", "111122223333")
    for role in Role:
        assert role_of_arn(account, role_arn(account, role)) is role
    assert role_arn(account, Role.OPERATOR) == "arn:aws:iam::111122223333:role/bastion-operator"
    assert role_of_arn(account, "arn:aws:iam::111122223333:role/a/b/bastion-auditor") is (
        Role.AUDITOR)
    assert ASSUMABLE_ROLES == {Role.OPERATOR, Role.AUDITOR}
    for wrong in ("arn:aws:iam::999999999999:role/bastion-operator",
                  "arn:aws:iam::111122223333:user/bastion-operator",
                  "arn:aws:iam::111122223333:role/bastion-operators",
                  "arn:aws-cn:iam::111122223333:role/bastion-operator",
                  "bastion-operator"):
        with pytest.raises(ValueError):
            role_of_arn(account, wrong)
