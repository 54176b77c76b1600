"""Presigned MQTT-over-WebSocket URLs (``iotdevicegateway``) signed by awscrt's SigV4
signer — the one the AWS IoT Device SDKs use — verified by the API's SigV4 code."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from awscrt import auth
from awscrt import http as crt_http

from bastion.access import Role
from bastion.api import PresignedUrlAuthenticator, StaticCredentials
from bastion.api._sigv4 import HttpRequest, SignatureError, parse_presigned
from bastion.broker import KeyIdentity, UpgradeRefused
from support.clock import ManualClock

KEY = "AKIAWEBSOCKETKEY0001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HOST = "iot.example.com:443"
SIGNED_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def presign(*, key: str = KEY, secret: str = SECRET, token: str | None = None,
            service: str = "iotdevicegateway", region: str = "us-east-1",
            expires: int | None = None, path: str = "/mqtt") -> str:
    request = crt_http.HttpRequest("GET", path, crt_http.HttpHeaders([("Host", HOST)]))
    options: dict[str, Any] = {}
    if expires is not None:
        options["expiration_in_seconds"] = expires
    config = auth.AwsSigningConfig(
        algorithm=auth.AwsSigningAlgorithm.V4,
        signature_type=auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS,
        credentials_provider=auth.AwsCredentialsProvider.new_static(key, secret, token),
        region=region, service=service, date=SIGNED_AT, omit_session_token=True, **options)
    auth.aws_sign_request(request, config).result(10)
    return str(request.path)


class Claims:
    secret_access_key = "temporary-secret/abcdefghijklmnopqrstuvwxyz"
    role = Role.AUDITOR
    role_alias = "browser-alias"
    thing_name = None
    certificate_id = "0" * 64


class Sessions:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def resolve(self, access_key_id: str, session_token: str) -> Claims:
        self.asked.append((access_key_id, session_token))
        return Claims()


def authenticator(now: datetime, sessions: Sessions | None = None) -> PresignedUrlAuthenticator:
    clock = ManualClock(now)
    return PresignedUrlAuthenticator(
        "us-east-1", StaticCredentials({KEY: (SECRET, Role.AUDITOR)}), sessions, clock)


def verify(target: str, now: datetime = SIGNED_AT, sessions: Sessions | None = None,
           host: str = HOST) -> KeyIdentity:
    return asyncio.run(authenticator(now, sessions).authenticate_upgrade(
        target, (("host", host),)))


def test_a_url_signed_by_the_sdk_signer_names_its_key():
    assert verify(presign(expires=3600)) == KeyIdentity(KEY)


def test_without_x_amz_expires_the_url_is_good_within_five_minutes():
    target = presign()
    assert "X-Amz-Expires" not in target  # what the SDK's websocket builder sends
    assert verify(target, SIGNED_AT + timedelta(minutes=4, seconds=59)).access_key_id == KEY
    with pytest.raises(UpgradeRefused, match="Signature expired"):
        verify(target, SIGNED_AT + timedelta(minutes=5, seconds=1))


def test_x_amz_expires_is_honoured_to_the_second():
    target = presign(expires=600)
    assert verify(target, SIGNED_AT + timedelta(seconds=600)).access_key_id == KEY
    with pytest.raises(UpgradeRefused, match="expired") as refused:
        verify(target, SIGNED_AT + timedelta(seconds=601))
    assert refused.value.status == 403


def test_a_url_signed_in_the_future_is_refused():
    with pytest.raises(UpgradeRefused, match="not yet current"):
        verify(presign(expires=3600), SIGNED_AT - timedelta(minutes=6))


def test_the_security_token_is_not_signed():
    sessions = Sessions()
    target = presign(key="ASIATEMPORARYKEY0001", secret=Claims.secret_access_key,
                     token="the-session-token")
    assert "X-Amz-Security-Token=the-session-token" in target
    key = verify(target, sessions=sessions)
    assert key == KeyIdentity("ASIATEMPORARYKEY0001", "browser-alias")
    # Another token under the same signature: the signature still matches (the session
    # source, not the signature, decides whether a token is good).
    verify(target.replace("the-session-token", "another-token"), sessions=sessions)
    assert sessions.asked == [("ASIATEMPORARYKEY0001", "the-session-token"),
                              ("ASIATEMPORARYKEY0001", "another-token")]


def test_a_token_without_a_session_source_is_refused():
    target = presign(key="ASIATEMPORARYKEY0001", token="t")
    with pytest.raises(UpgradeRefused, match="UnrecognizedClient"):
        verify(target)


@pytest.mark.parametrize(("change", "match"), [
    ({"secret": SECRET[:-1] + "X"}, "does not match"),
    ({"key": "AKIAUNKNOWN000000000"}, "UnrecognizedClient"),
    ({"service": "iotdata"}, "iotdevicegateway"),
    ({"region": "eu-west-1"}, "region"),
    ({"path": "/other"}, None),
], ids=["secret", "key", "service", "region", "path"])
def test_refused(change, match):
    target = presign(expires=3600, **change)
    if change.get("path"):
        target = target.replace("/other", "/mqtt", 1)  # signed for another path
        match = "does not match"
    with pytest.raises(UpgradeRefused, match=match):
        verify(target)


def test_the_host_header_is_signed():
    with pytest.raises(UpgradeRefused, match="does not match"):
        verify(presign(expires=3600), host="evil.example.com:443")


@pytest.mark.parametrize(("query", "error"), [
    ("", "MissingAuthenticationToken"),
    ("X-Amz-Signature=" + "0" * 64, "IncompleteSignature"),
], ids=["unsigned", "incomplete"])
def test_malformed_queries(query, error):
    with pytest.raises(SignatureError) as raised:
        parse_presigned(HttpRequest("GET", "/mqtt", query, (("host", HOST),), b""))
    assert raised.value.aws_error_type == f"{error}Exception"


def test_repeated_or_out_of_range_expires_is_refused():
    target = presign(expires=60)
    with pytest.raises(UpgradeRefused, match="X-Amz-Expires"):
        verify(target + "&X-Amz-Expires=60")
    with pytest.raises(UpgradeRefused, match="X-Amz-Expires"):
        verify(target.replace("X-Amz-Expires=60", "X-Amz-Expires=604801"))
