"""The device metrics report: long and short keys, validation, custom metrics."""

from __future__ import annotations

import json
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.defender.detect import (
    MetricType,
    MetricValue,
    ReportRejected,
    decode_payload,
    parse_report,
    report_id_of,
)

LONG = {"header": {"report_id": 1530304554, "version": "1.0"},
        "metrics": {
            "listening_tcp_ports": {"ports": [{"interface": "eth0", "port": 24800},
                                              {"interface": "eth0", "port": 22}],
                                    "total": 2},
            "listening_udp_ports": {"ports": [{"interface": "eth0", "port": 5353}],
                                    "total": 1},
            "network_stats": {"bytes_in": 29358693495, "bytes_out": 26485035,
                              "packets_in": 10013573555, "packets_out": 11382615},
            "tcp_connections": {"established_connections": {
                "connections": [{"local_interface": "eth0", "local_port": 80,
                                 "remote_addr": "192.168.0.1:8000"}], "total": 1}}},
        "custom_metrics": {"temp": [{"number": 21.5}],
                           "nets": [{"ip_list": ["10.0.0.1", "fe80::1"]}]}}
SHORT = {"hed": {"rid": 1530304554, "v": "1.0"},
         "met": {"tp": {"pts": [{"if": "eth0", "pt": 24800}, {"if": "eth0", "pt": 22}], "t": 2},
                 "up": {"pts": [{"if": "eth0", "pt": 5353}], "t": 1},
                 "ns": {"bi": 29358693495, "bo": 26485035, "pi": 10013573555,
                        "po": 11382615},
                 "tc": {"ec": {"cs": [{"li": "eth0", "lp": 80, "rad": "192.168.0.1:8000"}],
                               "t": 1}}},
         "cmet": {"temp": [{"number": 21.5}], "nets": [{"ip_list": ["10.0.0.1", "fe80::1"]}]}}
CUSTOM = {"temp": MetricType.NUMBER, "nets": MetricType.IP_ADDRESS_LIST}


def test_long_and_short_forms_mean_the_same() -> None:
    long, short = parse_report(LONG, CUSTOM), parse_report(SHORT, CUSTOM)
    assert long == short
    values = dict(long.values)
    assert long.report_id == 1530304554
    assert values["aws:listening-tcp-ports"] == MetricValue(ports=(22, 24800))
    assert values["aws:num-listening-tcp-ports"] == MetricValue(count=2)
    assert values["aws:listening-udp-ports"] == MetricValue(ports=(5353,))
    assert values["aws:all-bytes-in"] == MetricValue(count=29358693495)
    assert values["aws:all-packets-out"] == MetricValue(count=11382615)
    assert values["aws:num-established-tcp-connections"] == MetricValue(count=1)
    assert values["aws:destination-ip-addresses"] == MetricValue(cidrs=("192.168.0.1",))
    assert values["temp"] == MetricValue(number=21.5)
    assert values["nets"] == MetricValue(cidrs=("10.0.0.1", "fe80::1"))


def test_cbor_decodes_like_json() -> None:
    assert decode_payload(cbor2.dumps(SHORT), "cbor") == decode_payload(
        json.dumps(SHORT).encode(), "json")


@pytest.mark.parametrize("document", [
    pytest.param({}, id="empty"),
    pytest.param({"header": {"report_id": 1, "version": "1.0"}}, id="no-metrics"),
    pytest.param({"header": {"version": "1.0"}, "metrics": {}}, id="no-report-id"),
    pytest.param({"header": {"report_id": "1", "version": "1.0"}, "metrics": {}},
                 id="string-report-id"),
    pytest.param({"header": {"report_id": 1, "version": "1.0"},
                  "metrics": {"network_stats": {"bytes_in": -1}}}, id="negative-delta"),
    pytest.param({"header": {"report_id": 1, "version": "1.0"},
                  "metrics": {"listening_tcp_ports": {"ports": [{"port": 70000}]}}},
                 id="bad-port"),
    pytest.param({"header": {"report_id": 1, "version": "1.0"},
                  "metrics": {"tcp_connections": {"established_connections": {
                      "connections": [{"remote_addr": "not-an-ip:1"}]}}}}, id="bad-addr"),
    pytest.param({"header": {"report_id": 1, "version": "1.0"},
                  "custom_metrics": {"temp": {"number": 1}}}, id="custom-not-a-list"),
    pytest.param({"header": {"report_id": 1, "version": "1.0"},
                  "custom_metrics": {"temp": [{"string_list": ["a"]}]}},
                 id="custom-wrong-type"),
    pytest.param({"header": {"report_id": 1, "version": "1.0"},
                  "custom_metrics": {"unknown": [{"number": 1}]}}, id="custom-unknown"),
    pytest.param({"header": {"report_id": 1, "version": "2.0"}, "metrics": {}},
                 id="unsupported-version"),
])
def test_refused_reports(document: dict[str, Any]) -> None:
    with pytest.raises(ReportRejected) as caught:
        parse_report(document, CUSTOM)
    assert caught.value.mqtt_code == "InvalidPayload"


def test_report_id_is_found_in_a_refused_report() -> None:
    assert report_id_of({"hed": {"rid": 42}}) == 42
    assert report_id_of({"header": {"report_id": True}}) is None
    assert report_id_of([1]) is None


def test_undecodable_payloads() -> None:
    for payload, encoding in ((b"{", "json"), (b"\xff\xff", "cbor")):
        with pytest.raises(ReportRejected):
            decode_payload(payload, encoding)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.sampled_from(
                        ["hed", "rid", "v", "met", "cmet", "tp", "pts", "pt", "ns", "bi",
                         "tc", "ec", "cs", "rad", "t", "temp", "number", "x"]), kids,
                        max_size=5), max_leaves=30))
def test_parser_only_ever_accepts_or_rejects(document: object) -> None:
    try:
        report = parse_report(document, CUSTOM)
    except ReportRejected:
        return
    assert report.values
