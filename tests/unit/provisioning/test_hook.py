"""Pre-provisioning hook decisions: only a clear allow in time allows (deny by default)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.provisioning import (
    HookCallError,
    InvalidRequestError,
    PreProvisioningHook,
    decide,
    hook_input,
    parse_hook,
)
from bastion.provisioning._hook import ask_hook


def answer(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(("status", "body", "allowed", "overrides"), [
    (200, answer({"allowProvisioning": True}), True, {}),
    (200, answer({"allowProvisioning": "true"}), True, {}),
    (200, answer({"allowProvisioning": "TRUE", "parameterOverrides": None}), True, {}),
    (204, answer({"allowProvisioning": True, "parameterOverrides": {"A": "b"}}), True,
     {"A": "b"}),
    (200, answer({"allowProvisioning": False}), False, {}),
    (200, answer({"allowProvisioning": "false"}), False, {}),
    (200, answer({"allowProvisioning": 1}), False, {}),
    (200, answer({"allowProvisioning": "yes"}), False, {}),
    (200, answer({}), False, {}),
    (200, answer([True]), False, {}),
    (200, b"allowProvisioning: true", False, {}),
    (200, b"\xff\xfe", False, {}),
    (200, b"", False, {}),
    (200, answer({"allowProvisioning": True, "parameterOverrides": {"A": 1}}), False, {}),
    (200, answer({"allowProvisioning": True, "parameterOverrides": ["A"]}), False, {}),
    (302, answer({"allowProvisioning": True}), False, {}),
    (403, answer({"allowProvisioning": True}), False, {}),
    (500, answer({"allowProvisioning": True}), False, {}),
], ids=["true", "string-true", "upper-string-true", "overrides", "false", "string-false",
        "one", "yes", "missing", "not-an-object", "not-json", "not-utf8", "empty",
        "override-not-a-string", "overrides-not-an-object", "redirect", "forbidden",
        "server-error"])
def test_decide(status: int, body: bytes, allowed: bool, overrides: dict[str, str]) -> None:
    decision = decide(status, body)
    assert decision.allowed is allowed
    assert dict(decision.parameter_overrides) == overrides
    assert decision.reason


class FakeClient:
    def __init__(self, result: tuple[int, bytes] | BaseException) -> None:
        self.result = result
        self.calls: list[tuple[str, bytes, float]] = []

    def post(self, url: str, payload: bytes, timeout: float) -> tuple[int, bytes]:
        self.calls.append((url, payload, timeout))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


HOOK = PreProvisioningHook("https://hooks.example/provision")


def test_ask_hook_posts_the_input_with_the_deadline() -> None:
    client = FakeClient((200, answer({"allowProvisioning": True})))
    payload = hook_input(claim_certificate_id="c" * 64, certificate_id="d" * 64,
                         certificate_pem="PEM", template_arn="arn:t", client_id="cl",
                         parameters={"A": "1"})
    assert ask_hook(client, HOOK, payload, 5.0).allowed
    url, body, timeout = client.calls[0]
    assert (url, timeout) == (HOOK.target_arn, 5.0)
    assert json.loads(body) == {"claimCertificateId": "c" * 64, "certificateId": "d" * 64,
                                "certificatePem": "PEM", "templateArn": "arn:t",
                                "clientId": "cl", "parameters": {"A": "1"}}


@pytest.mark.parametrize("failure", [HookCallError("no answer within 5 s"),
                                     RuntimeError("a broken client")],
                         ids=["timeout", "client-bug"])
def test_no_answer_denies(failure: BaseException) -> None:
    assert not ask_hook(FakeClient(failure), HOOK, {}, 5.0).allowed


@pytest.mark.parametrize(("hook", "expected"), [
    ({"targetArn": "https://h.example/x"}, PreProvisioningHook("https://h.example/x")),
    ({"targetArn": "http://127.0.0.1:9/x", "payloadVersion": "2020-04-01"},
     PreProvisioningHook("http://127.0.0.1:9/x", "2020-04-01")),
])
def test_parse_hook(hook: dict[str, str], expected: PreProvisioningHook) -> None:
    assert parse_hook(hook) == expected


@pytest.mark.parametrize("hook", [
    {}, {"targetArn": ""}, {"targetArn": "arn:aws:lambda:us-east-1:1:function:f"},
    {"targetArn": "ftp://h/x"}, {"targetArn": "https:///nohost"},
    {"targetArn": "https://h/x", "payloadVersion": "v1"}, "https://h/x",
], ids=["missing", "empty", "lambda-arn", "ftp", "no-host", "bad-version", "not-an-object"])
def test_parse_hook_refuses(hook: Any) -> None:
    with pytest.raises(InvalidRequestError):
        parse_hook(hook)
