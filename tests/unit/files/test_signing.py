"""Presigned URLs: signing, verification, expiry with a fake clock, tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.files import EXPIRES_PARAM, SIGNATURE_PARAM, SignatureRejectedError, UrlSigner

KEY = bytes(range(32))
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
URL = "https://bastion.example:8443/_bastion/files/fw-1.2.bin"


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.path, parts.query


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_signed_url_verifies_until_it_expires() -> None:
    signer = UrlSigner(KEY)
    signed = signer.sign(URL, NOW + timedelta(seconds=60))
    assert signed.startswith(URL + "?")
    params = _params(signed)
    assert set(params) == {EXPIRES_PARAM, SIGNATURE_PARAM}
    assert int(params[EXPIRES_PARAM]) == int((NOW + timedelta(seconds=60)).timestamp())
    path, query = _split(signed)
    assert signer.verify(path, query, NOW) == NOW + timedelta(seconds=60)
    assert signer.verify(path, query, NOW + timedelta(seconds=59)) == NOW + timedelta(seconds=60)
    with pytest.raises(SignatureRejectedError) as refused:
        signer.verify(path, query, NOW + timedelta(seconds=60))
    assert refused.value.expired and refused.value.http_status == 403
    with pytest.raises(SignatureRejectedError, match="expired"):
        signer.verify(path, query, NOW + timedelta(days=1))


def test_host_and_scheme_are_not_signed() -> None:
    signer = UrlSigner(KEY)
    signed = signer.sign(URL, NOW + timedelta(seconds=60))
    other = signed.replace("https://bastion.example:8443", "http://10.0.0.5:9000")
    assert signer.verify(*_split(other), NOW) == NOW + timedelta(seconds=60)


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda p, q: (p.replace("fw-1.2", "fw-1.3"), q), id="other-file"),
    pytest.param(lambda p, q: (p, q.replace(f"{EXPIRES_PARAM}=", f"{EXPIRES_PARAM}=9")),
                 id="later-expiry"),
    pytest.param(lambda p, q: (p, q[:-1] + ("0" if q[-1] != "0" else "1")), id="signature-bit"),
    pytest.param(lambda p, q: (p, q.split("&")[0]), id="no-signature"),
    pytest.param(lambda p, q: (p, q.split("&")[1]), id="no-expiry"),
    pytest.param(lambda p, q: (p, ""), id="unsigned"),
    pytest.param(lambda p, q: (p, q + "&" + q.split("&")[1]), id="repeated-signature"),
    pytest.param(lambda p, q: (p, q.upper()), id="upper-case"),
])
def test_a_tampered_url_is_refused(tamper: object) -> None:
    signer = UrlSigner(KEY)
    path, query = _split(signer.sign(URL, NOW + timedelta(seconds=3600)))
    assert callable(tamper)
    bad_path, bad_query = tamper(path, query)
    with pytest.raises(SignatureRejectedError) as refused:
        signer.verify(bad_path, bad_query, NOW)
    assert not refused.value.expired


def test_another_key_does_not_verify() -> None:
    signed = UrlSigner(KEY).sign(URL, NOW + timedelta(seconds=60))
    with pytest.raises(SignatureRejectedError, match="does not match"):
        UrlSigner(bytes(32)).verify(*_split(signed), NOW)


def test_a_forged_expiry_with_a_reused_signature_is_refused() -> None:
    signer = UrlSigner(KEY)
    params = _params(signer.sign(URL, NOW + timedelta(seconds=60)))
    forged = urlencode({EXPIRES_PARAM: str(int(NOW.timestamp()) + 86400),
                        SIGNATURE_PARAM: params[SIGNATURE_PARAM]})
    with pytest.raises(SignatureRejectedError, match="does not match"):
        signer.verify(urlsplit(URL).path, forged, NOW + timedelta(seconds=120))


@pytest.mark.parametrize(("args", "error"), [
    pytest.param((URL + "?a=b", NOW), ValueError, id="query"),
    pytest.param((URL, datetime(2026, 1, 1)), ValueError, id="naive"),
    pytest.param((URL, 1767225600), TypeError, id="not-datetime"),
    pytest.param((b"https://x/y", NOW), TypeError, id="bytes-url"),
])
def test_sign_refuses_misuse(args: tuple[object, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        UrlSigner(KEY).sign(*args)  # type: ignore[arg-type]


def test_keys_must_be_long_bytes() -> None:
    with pytest.raises(ValueError):
        UrlSigner(b"short")
    with pytest.raises(TypeError):
        UrlSigner("k" * 32)  # type: ignore[arg-type]
    assert "00" not in repr(UrlSigner(KEY))


@given(st.text(max_size=200))
def test_verify_never_accepts_or_crashes_on_arbitrary_queries(query: str) -> None:
    with pytest.raises(SignatureRejectedError):
        UrlSigner(KEY).verify("/_bastion/files/x", query, NOW)


def test_an_upload_url_is_good_for_its_method_and_its_limits_only() -> None:
    signer = UrlSigner(KEY)
    upload = "https://bastion.example:8443/_bastion/uploads/job-1/sensor:1/3"
    signed = signer.sign(upload, NOW + timedelta(seconds=60), method="PUT",
                         limits={"X-Bastion-Max-Bytes": "1024"})
    path, query = _split(signed)
    assert signer.verify_limits(path, query, NOW, method="PUT") == (
        NOW + timedelta(seconds=60), {"X-Bastion-Max-Bytes": "1024"})
    refused = [
        (path, query, "GET"),  # a download with an upload's signature
        (path, query.replace("Max-Bytes=1024", "Max-Bytes=1025"), "PUT"),
        (path, query.replace("X-Bastion-Max-Bytes=1024&", ""), "PUT"),
        (path, query + "&X-Bastion-Max-Bytes=9", "PUT"),
        (path, query + "&X-Bastion-Other=1", "PUT"),
        (path.replace("/3", "/4"), query, "PUT"),
    ]
    for bad_path, bad_query, method in refused:
        with pytest.raises(SignatureRejectedError):
            signer.verify_limits(bad_path, bad_query, NOW, method=method)
    with pytest.raises(ValueError):
        signer.sign(upload, NOW, limits={"Max-Bytes": "1"})
