"""The fleet provisioning topics of the MQTT door, and its payload codecs."""

from __future__ import annotations

import cbor2
import pytest

from bastion.provisioning import InvalidRequestError
from bastion.reserved.provisioning import (
    Operation,
    decode_payload,
    encode_payload,
    parse_provisioning_topic,
)


@pytest.mark.parametrize(("topic", "operation", "fmt", "template", "answer"), [
    ("$aws/certificates/create/json", Operation.CREATE_KEYS_AND_CERTIFICATE, "json", None, None),
    ("$aws/certificates/create/cbor", Operation.CREATE_KEYS_AND_CERTIFICATE, "cbor", None, None),
    ("$aws/certificates/create/json/accepted", Operation.CREATE_KEYS_AND_CERTIFICATE, "json",
     None, "accepted"),
    ("$aws/certificates/create-from-csr/json", Operation.CREATE_CERTIFICATE_FROM_CSR, "json",
     None, None),
    ("$aws/certificates/create-from-csr/cbor/rejected",
     Operation.CREATE_CERTIFICATE_FROM_CSR, "cbor", None, "rejected"),
    ("$aws/provisioning-templates/t-1/provision/json", Operation.REGISTER_THING, "json", "t-1",
     None),
    ("$aws/provisioning-templates/t-1/provision/cbor/accepted", Operation.REGISTER_THING,
     "cbor", "t-1", "accepted"),
])
def test_parse(topic: str, operation: Operation, fmt: str, template: str | None,
               answer: str | None) -> None:
    parsed = parse_provisioning_topic(topic)
    assert parsed is not None
    assert (parsed.operation, parsed.payload_format, parsed.template_name, parsed.answer) == (
        operation, fmt, template, answer)
    assert topic.startswith(parsed.request)
    assert parsed.accepted == parsed.request + "/accepted"


@pytest.mark.parametrize("topic", [
    "$aws/certificates/create", "$aws/certificates/create/xml", "$aws/certificates/create/json/x",
    "$aws/certificates/other/json", "$aws/provisioning-templates//provision/json",
    "$aws/provisioning-templates/t/provision", "$aws/provisioning-templates/t/other/json",
    "$aws/things/t/shadow/get", "certificates/create/json",
])
def test_not_provisioning_topics(topic: str) -> None:
    assert parse_provisioning_topic(topic) is None


def test_codecs() -> None:
    document = {"certificateOwnershipToken": "t", "parameters": {"a": "b"}}
    for fmt in ("json", "cbor"):
        assert decode_payload(encode_payload(document, fmt), fmt) == document
        assert decode_payload(b"", fmt) == {}
    assert cbor2.loads(encode_payload({"a": 1}, "cbor")) == {"a": 1}
    for payload, fmt in ((b"{", "json"), (b"[1]", "json"), (b"\xff\xff", "cbor"),
                         (cbor2.dumps([1]), "cbor")):
        with pytest.raises(InvalidRequestError):
            decode_payload(payload, fmt)
