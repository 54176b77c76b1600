"""The connection layer's pure parts: the per-source counts, the response written before
any request is parsed, and the ``[api]`` settings that drive them."""

from __future__ import annotations

import json
from pathlib import Path

import h11
import pytest

from bastion.api._connections import SourceCounts, early_response, guarded_h11_protocol
from bastion.api._errors import ApiError, request_timeout, throttled
from bastion.api._server import ApiConfigError, check_api_config
from bastion.config import ApiConfig, ConfigError, load_config


def test_counts_admit_up_to_the_limit_per_source() -> None:
    counts = SourceCounts(2)
    assert counts.admit("10.0.0.1") and counts.admit("10.0.0.1")
    assert not counts.admit("10.0.0.1")          # the third from one address
    assert counts.admit("10.0.0.2")              # another address is not affected
    assert counts.open_from("10.0.0.1") == 2     # a refusal is not counted
    counts.release("10.0.0.1")
    assert counts.admit("10.0.0.1")
    counts.release("10.0.0.2")
    assert counts.open_from("10.0.0.2") == 0


def test_a_double_release_is_a_value_error() -> None:
    counts = SourceCounts(1)
    counts.admit("a")
    counts.release("a")
    with pytest.raises(ValueError):
        counts.release("a")


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_a_value_error(limit: int) -> None:
    with pytest.raises(ValueError):
        SourceCounts(limit)


def test_the_protocol_class_is_bound_per_server() -> None:
    first = guarded_h11_protocol(SourceCounts(1), 1.0)
    second = guarded_h11_protocol(SourceCounts(5), 2.5)
    assert (first.sources.limit, first.header_timeout) == (1, 1.0)
    assert (second.sources.limit, second.header_timeout) == (5, 2.5)
    with pytest.raises(ValueError):
        guarded_h11_protocol(SourceCounts(1), 0)


@pytest.mark.parametrize(("error", "status", "error_type"), [
    (throttled("too many"), 429, "ThrottlingException"),
    (request_timeout("too slow"), 408, "RequestTimeoutException"),
], ids=["throttled", "timeout"])
def test_the_early_response_is_http_in_aws_error_shape(error: ApiError, status: int,
                                                       error_type: str) -> None:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "bastion")]))
    client.send(h11.EndOfMessage())
    client.receive_data(early_response(error))
    head = client.next_event()
    assert isinstance(head, h11.Response) and head.status_code == status
    headers = {name.decode(): value.decode() for name, value in head.headers}
    assert headers["x-amzn-errortype"] == error_type
    assert headers["connection"] == "close"
    assert headers["x-amzn-requestid"]
    body = client.next_event()
    assert isinstance(body, h11.Data)
    assert json.loads(body.data) == {"message": error.message}
    assert isinstance(client.next_event(), h11.EndOfMessage)
    assert client.their_state is h11.MUST_CLOSE


@pytest.mark.parametrize("field", ["header_timeout", "body_timeout"])
@pytest.mark.parametrize("seconds", [0.0, -1.0, 3601.0])
def test_timeouts_out_of_range_are_refused(field: str, seconds: float) -> None:
    with pytest.raises(ApiConfigError, match=field):
        check_api_config(ApiConfig(**{field: seconds}))  # type: ignore[arg-type]


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ApiConfigError, match="max_connections_per_source"):
        check_api_config(ApiConfig(max_connections_per_source=0))


def test_the_settings_load_from_the_api_section(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[api]\nheader_timeout = 5\nbody_timeout = 12.5\n"
                    "max_connections_per_source = 8\n")
    api = load_config(path).api
    assert (api.header_timeout, api.body_timeout, api.max_connections_per_source) == (
        5.0, 12.5, 8)
    check_api_config(api)
    path.write_text('[api]\nmax_connections_per_source = "many"\n')
    with pytest.raises(ConfigError):
        load_config(path)


def test_defaults() -> None:
    api = ApiConfig()
    assert (api.header_timeout, api.body_timeout, api.max_connections_per_source) == (
        10.0, 30.0, 64)
