"""Which Bastion file a URL designates, and the replacement of presigned-URL placeholders
in job documents."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.files import file_name_of, placeholder_urls, replace_placeholders


@pytest.mark.parametrize(("url", "name"), [
    pytest.param("https://bastion.example:8443/_bastion/files/fw.bin", "fw.bin", id="bastion"),
    pytest.param("http://127.0.0.1:8080/_bastion/files/fw.bin", "fw.bin", id="bastion-http"),
    pytest.param("s3://any-bucket/fw_1-2.bin", "fw_1-2.bin", id="s3"),
    pytest.param("https://s3.amazonaws.com/bucket/fw.bin", "fw.bin", id="s3-path-style"),
    pytest.param("https://s3.eu-west-1.amazonaws.com/bucket/fw.bin", "fw.bin",
                 id="s3-regional-path-style"),
    pytest.param("https://bucket.s3.amazonaws.com/fw.bin", "fw.bin", id="s3-virtual-host"),
    pytest.param("https://bucket.s3.us-east-1.amazonaws.com/fw.bin", "fw.bin",
                 id="s3-regional-virtual-host"),
    pytest.param("s3://bucket/dir/fw.bin", None, id="s3-directory"),
    pytest.param("s3:///fw.bin", None, id="s3-no-bucket"),
    pytest.param("https://example.com/fw.bin", None, id="other-host"),
    pytest.param("https://bastion/_bastion/files/../secret", None, id="dot-dot"),
    pytest.param("https://bastion/_bastion/files/.hidden", None, id="hidden"),
    pytest.param("https://bastion/_bastion/files/", None, id="no-name"),
    pytest.param("https://bastion/_bastion/files/fw.bin?x=1", None, id="query"),
    pytest.param("https://dynamodb.us-east-1.amazonaws.com/fw.bin", None, id="not-s3"),
    pytest.param("ftp://bastion/_bastion/files/fw.bin", None, id="ftp"),
    pytest.param("https://[::1/_bastion/files/fw.bin", None, id="malformed"),
])
def test_file_name_of(url: str, name: str | None) -> None:
    assert file_name_of(url) == name


DOCUMENT = json.dumps({
    "operation": "ota",
    "files": [
        {"url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/fw.bin}"},
        {"url": "${aws:iot:s3-presigned-url:s3://b/notes.txt}", "size": 3},
    ],
    "other": "${aws:iot:s3-presigned-url:https://example.com/elsewhere}",
    "text": "plain ${not:a:placeholder}",
})


def test_placeholders_are_found_in_order() -> None:
    assert placeholder_urls(DOCUMENT) == ["https://s3.amazonaws.com/b/fw.bin", "s3://b/notes.txt",
                                          "https://example.com/elsewhere"]


def test_placeholders_of_bastion_files_are_replaced() -> None:
    asked: list[str] = []

    def presign(name: str) -> str | None:
        asked.append(name)
        return None if name == "notes.txt" else f"https://h/_bastion/files/{name}?sig=1&x=2"

    replaced = json.loads(replace_placeholders(DOCUMENT, presign))
    assert asked == ["fw.bin", "notes.txt"]
    assert replaced["files"][0]["url"] == "https://h/_bastion/files/fw.bin?sig=1&x=2"
    # presign declined: left as it was; no Bastion file: left as it was
    assert replaced["files"][1]["url"] == "${aws:iot:s3-presigned-url:s3://b/notes.txt}"
    assert replaced["other"] == "${aws:iot:s3-presigned-url:https://example.com/elsewhere}"
    assert replaced["text"] == "plain ${not:a:placeholder}"


@given(st.text(max_size=300))
def test_file_name_of_is_total_and_safe(url: str) -> None:
    name = file_name_of(url)
    assert name is None or ("/" not in name and not name.startswith(".") and name)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=10),
       st.sampled_from(["s3://b/fw.bin", "https://x/_bastion/files/a.b", "s3://b/a/b"]))
def test_replacement_keeps_documents_json(value: object, url: str) -> None:
    document = json.dumps({"v": value, "u": f"${{aws:iot:s3-presigned-url:{url}}}"})
    replaced = replace_placeholders(document, lambda name: f"https://h/_bastion/files/{name}?a=1")
    assert json.loads(replaced)["v"] == value
