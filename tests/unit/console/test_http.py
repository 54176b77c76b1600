"""The console's form, query and cookie parsing, and the headers of every answer."""

from __future__ import annotations

import pytest

from bastion.console._http import (
    Answer,
    parse_cookies,
    parse_form,
    parse_query,
    response_headers,
    session_cookie,
)


def test_form_takes_the_first_value_of_each_name() -> None:
    assert parse_form(b"csrf=a&csrf=b&new_status=REVOKED&empty=") == {
        "csrf": "a", "new_status": "REVOKED", "empty": ""}
    assert parse_form(b"document=%7B%22a%22%3A+1%7D") == {"document": '{"a": 1}'}
    with pytest.raises(ValueError):
        parse_form(b"name=\xff")
    with pytest.raises(ValueError):  # too many fields
        parse_form(b"&".join(b"f%d=1" % i for i in range(100)))


def test_query_never_raises() -> None:
    assert parse_query(b"page=2&prefix=a%2Fb") == {"page": "2", "prefix": "a/b"}
    assert parse_query(b"\xff=1") == {}
    assert parse_query(b"&".join(b"f%d=1" % i for i in range(100))) == {}


def test_cookies() -> None:
    assert parse_cookies("a=1; __Host-bastion-console=tok") == {
        "a": "1", "__Host-bastion-console": "tok"}
    assert parse_cookies('bad="') == {}
    name, value = session_cookie("tok")
    assert name == "set-cookie"
    assert value == "__Host-bastion-console=tok; Path=/; Secure; HttpOnly; SameSite=Strict"


def test_pages_are_never_stored_assets_may_be() -> None:
    page = dict(response_headers(Answer(200, b"x")))
    asset = dict(response_headers(Answer(200, b"x", "text/css", cacheable=True)))
    assert page[b"cache-control"] == b"no-store"
    assert asset[b"cache-control"] == b"private, max-age=300"
    for headers in (page, asset):
        assert headers[b"x-content-type-options"] == b"nosniff"
        assert headers[b"referrer-policy"] == b"no-referrer"
        assert b"frame-ancestors 'none'" in headers[b"content-security-policy"]
