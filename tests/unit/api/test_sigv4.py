"""SigV4 verification against requests signed by botocore's own signer."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bastion.api._sigv4 import (
    HttpRequest,
    SignatureError,
    canonical_path,
    canonical_query,
    check_clock,
    parse_authorization,
    verify_signature,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HOST = "127.0.0.1:8443"


def signed(method: str = "POST", url: str = "/topics/a%2Fb%20c?qos=1&retain=true",
           body: bytes = b'{"a": 1}', headers: dict[str, str] | None = None,
           service: str = "iotdata", region: str = "eu-west-1",
           secret: str = SECRET, token: str | None = None) -> HttpRequest:
    """A request signed by botocore, as the server receives it."""
    request = AWSRequest(method, f"https://{HOST}{url}", data=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials("AKIDEXAMPLE", secret, token), service, region).add_auth(request)
    parts = urlsplit(request.url)
    received = [(name.lower(), str(value)) for name, value in request.headers.items()]
    received.append(("host", HOST))
    return HttpRequest(method, parts.path, parts.query, tuple(received), body)


def verify(request: HttpRequest, secret: str = SECRET) -> None:
    auth = parse_authorization(request)
    check_clock(auth, datetime.now(UTC))
    verify_signature(request, auth, secret)


def replace_header(request: HttpRequest, name: str, value: str) -> HttpRequest:
    headers = tuple((key, value if key == name else old) for key, old in request.headers)
    return dataclasses.replace(request, headers=headers)


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", "/topics/a%2Fb%20c?qos=1&retain=true", b'{"a": 1}'),
    ("GET", "/things", b""),
    ("GET", "/things?maxResults=7&nextToken=abc%3D%3D", b""),
    ("PUT", "/things/dev-1/principals", b""),
    ("GET", "/retainedMessage/%24aws%2Fthings%2Fx", b""),
    ("GET", "/destinations/arn%3Aaws%3Aiot/x/y", b""),
    ("POST", "/q?b=2&a=1&a=0&empty=&flag", b"\x00\xffbinary"),
    ("GET", "/things?attributeValue=a%20b%2Bc~d", b""),
], ids=["publish", "plain", "query", "put", "dollar", "greedy", "sorting", "reserved"])
def test_botocore_signatures_verify(method: str, url: str, body: bytes) -> None:
    verify(signed(method, url, body))


def test_session_token_and_extra_headers_are_covered() -> None:
    request = signed(headers={"x-amz-mqtt5-user-properties": "W3siYSI6ImIifV0="},
                     token="session-token")
    verify(request)
    with pytest.raises(SignatureError) as caught:
        verify(replace_header(request, "x-amz-security-token", "other"))
    assert caught.value.aws_error_type == "InvalidSignatureException"


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(signed(), secret="not-the-secret")
    assert caught.value.aws_error_type == "InvalidSignatureException"
    assert caught.value.http_status == 403
    assert "signature we calculated does not match" in caught.value.message
    assert SECRET not in caught.value.message


def test_tampered_body_is_refused() -> None:
    request = signed(body=b'{"topic": "a"}')
    with pytest.raises(SignatureError):
        verify(dataclasses.replace(request, body=b'{"topic": "b"}'))


def test_tampered_signed_header_is_refused() -> None:
    request = signed()
    with pytest.raises(SignatureError):
        verify(replace_header(request, "content-type", "text/plain"))


def test_tampered_path_and_query_are_refused() -> None:
    request = signed()
    with pytest.raises(SignatureError):
        verify(dataclasses.replace(request, raw_path="/topics/a%2Fb%20d"))
    with pytest.raises(SignatureError):
        verify(dataclasses.replace(request, raw_query="qos=0&retain=true"))
    with pytest.raises(SignatureError):
        verify(dataclasses.replace(request, method="PUT"))


def test_host_is_signed() -> None:
    with pytest.raises(SignatureError):
        verify(replace_header(signed(), "host", "evil.example:8443"))


def test_content_sha256_header_must_match_the_body() -> None:
    body = b"payload"
    request = signed(body=body, headers={"X-Amz-Content-SHA256": "0" * 64})
    with pytest.raises(SignatureError) as caught:
        verify(request)
    assert "x-amz-content-sha256" in caught.value.message
    unsigned = signed(body=body, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(SignatureError) as caught:
        verify(unsigned)
    assert "Unsigned" in caught.value.message


def test_clock_skew_of_five_minutes() -> None:
    auth = parse_authorization(signed())
    check_clock(auth, auth.timestamp + timedelta(minutes=4, seconds=59))
    check_clock(auth, auth.timestamp - timedelta(minutes=4, seconds=59))
    with pytest.raises(SignatureError) as caught:
        check_clock(auth, auth.timestamp + timedelta(minutes=5, seconds=1))
    assert caught.value.message.startswith("Signature expired: ")
    with pytest.raises(SignatureError) as caught:
        check_clock(auth, auth.timestamp - timedelta(minutes=5, seconds=1))
    assert caught.value.message.startswith("Signature not yet current: ")
    with pytest.raises(ValueError):
        check_clock(auth, datetime.now())


def test_scope_date_must_be_the_signing_date() -> None:
    request = signed()
    amz_date = request.header("x-amz-date")
    assert amz_date is not None
    other = (datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ") + timedelta(days=1)).strftime(
        "%Y%m%dT%H%M%SZ")
    with pytest.raises(SignatureError) as caught:
        parse_authorization(replace_header(request, "x-amz-date", other))
    assert "Date in Credential scope does not match" in caught.value.message


def test_date_header_instead_of_x_amz_date() -> None:
    request = signed(headers={"Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert request.header("x-amz-date") is None
    auth = parse_authorization(request)
    verify_signature(request, auth, SECRET)


@pytest.mark.parametrize(("authorization", "code"), [
    (None, "MissingAuthenticationTokenException"),
    ("Bearer abc", "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + "0" * 64,
     "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=AK/2024/eu-west-1/iot/aws4_request, SignedHeaders=host, "
     "Signature=" + "0" * 64, "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/iot/aws5_request, "
     "SignedHeaders=host, Signature=" + "0" * 64, "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/iot/aws4_request, "
     "SignedHeaders=x-amz-date, Signature=" + "0" * 64, "InvalidSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/iot/aws4_request, SignedHeaders=host, "
     + "Signature=xyz", "IncompleteSignatureException"),
], ids=["missing", "scheme", "no-credential", "bad-date", "terminator", "host-unsigned",
        "bad-signature"])
def test_malformed_authorization(authorization: str | None, code: str) -> None:
    headers: list[tuple[str, str]] = [("host", HOST), ("x-amz-date", "20240101T000000Z")]
    if authorization is not None:
        headers.append(("authorization", authorization))
    request = HttpRequest("GET", "/things", "", tuple(headers), b"")
    with pytest.raises(SignatureError) as caught:
        parse_authorization(request)
    assert caught.value.aws_error_type == code
    assert caught.value.http_status == 403


def test_canonical_forms() -> None:
    assert canonical_path("/topics/a%2Fb") == "/topics/a%252Fb"
    assert canonical_path("/a/./b/../c//d/") == "/a/c/d/"
    assert canonical_path("") == "/"
    assert canonical_query("b=2&a=1&a=0&c") == "a=0&a=1&b=2&c="
    assert canonical_query("k=a%20b&s=%7e") == "k=a%20b&s=~"
