"""The Device Defender metrics report a device publishes (pure: bytes in, values out).

Both key forms are accepted (``header``/``hed``, ``metrics``/``met``, …), even mixed,
as AWS does. A valid report becomes :class:`DeviceReport`: its id and the datapoints it
carries (network statistics are deltas, port and connection lists are sets). Anything
AWS would refuse raises :class:`~._errors.ReportRejected` with the error code the device
sees on ``…/rejected``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from ._errors import ReportRejected
from ._model import MetricType, MetricValue

MALFORMED: Final = "Malformed metrics report"

_LONG: Final = {
    "hed": "header", "rid": "report_id", "v": "version", "met": "metrics",
    "cmet": "custom_metrics", "tc": "tcp_connections", "ec": "established_connections",
    "cs": "connections", "rad": "remote_addr", "lp": "local_port", "li": "local_interface",
    "t": "total", "tp": "listening_tcp_ports", "up": "listening_udp_ports", "pts": "ports",
    "pt": "port", "if": "interface", "ns": "network_stats", "bi": "bytes_in",
    "bo": "bytes_out", "pi": "packets_in", "po": "packets_out",
}
_CUSTOM_KEYS: Final = {"number": MetricType.NUMBER, "number_list": MetricType.NUMBER_LIST,
                       "string_list": MetricType.STRING_LIST,
                       "ip_list": MetricType.IP_ADDRESS_LIST}


@dataclass(frozen=True, slots=True)
class DeviceReport:
    report_id: int
    version: str
    values: tuple[tuple[str, MetricValue], ...]
    """(metric name, value) for every metric the report carries."""


def decode_payload(payload: bytes, encoding: str) -> object:
    """Decode a JSON or CBOR payload.

    :raises ReportRejected: not decodable.
    """
    try:
        if encoding == "cbor":
            return cbor2.loads(payload)
        return json.loads(payload)
    except Exception:  # noqa: BLE001 - any decoder failure is a malformed report
        raise ReportRejected("InvalidPayload", MALFORMED) from None


def report_id_of(document: object) -> int | None:
    """The report id, when one can be found even in a refused report (for the reply)."""
    if not isinstance(document, Mapping):
        return None
    header = document.get("header", document.get("hed"))
    if not isinstance(header, Mapping):
        return None
    rid = header.get("report_id", header.get("rid"))
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else None


def parse_report(document: object, custom: Mapping[str, MetricType]) -> DeviceReport:
    """Validate a decoded report.

    :param custom: the custom metrics that exist (name → type).
    :raises ReportRejected: malformed, or a custom metric that does not exist or has
        the wrong type.
    """
    doc = _normalise(document)
    if not isinstance(doc, dict):
        raise ReportRejected("InvalidPayload", MALFORMED)
    header = doc.get("header")
    if not isinstance(header, dict):
        raise ReportRejected("InvalidPayload", MALFORMED)
    rid = header.get("report_id")
    if isinstance(rid, bool) or not isinstance(rid, int) or rid < 0:
        raise ReportRejected("InvalidPayload", MALFORMED)
    version = header.get("version")
    if not isinstance(version, str) or version.split(".")[0] != "1":
        raise ReportRejected("InvalidPayload", "Unsupported report version")
    metrics = doc.get("metrics")
    customs = doc.get("custom_metrics")
    if metrics is None and customs is None:
        raise ReportRejected("InvalidPayload", MALFORMED)
    values: list[tuple[str, MetricValue]] = []
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise ReportRejected("InvalidPayload", MALFORMED)
        values.extend(_builtin(metrics))
    if customs is not None:
        if not isinstance(customs, dict):
            raise ReportRejected("InvalidPayload", MALFORMED)
        values.extend(_custom(customs, custom))
    return DeviceReport(rid, version, tuple(values))


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {(_LONG.get(k, k) if isinstance(k, str) else k): _normalise(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportRejected("InvalidPayload", MALFORMED)
    return value


def _builtin(metrics: dict[str, Any]) -> list[tuple[str, MetricValue]]:
    out: list[tuple[str, MetricValue]] = []
    stats = metrics.get("network_stats")
    if stats is not None:
        if not isinstance(stats, dict):
            raise ReportRejected("InvalidPayload", MALFORMED)
        for key, metric in (("bytes_in", "aws:all-bytes-in"), ("bytes_out", "aws:all-bytes-out"),
                            ("packets_in", "aws:all-packets-in"),
                            ("packets_out", "aws:all-packets-out")):
            if key in stats:
                out.append((metric, MetricValue(count=_count(stats[key]))))
    for key, kind in (("listening_tcp_ports", "tcp"), ("listening_udp_ports", "udp")):
        block = metrics.get(key)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise ReportRejected("InvalidPayload", MALFORMED)
        ports: list[int] = []
        listed = block.get("ports", [])
        if not isinstance(listed, list):
            raise ReportRejected("InvalidPayload", MALFORMED)
        for entry in listed:
            if not isinstance(entry, dict):
                raise ReportRejected("InvalidPayload", MALFORMED)
            port = _count(entry.get("port"))
            if not 0 < port <= 65535:
                raise ReportRejected("InvalidPayload", MALFORMED)
            ports.append(port)
        total = _count(block["total"]) if "total" in block else len(ports)
        out.append((f"aws:listening-{kind}-ports", MetricValue(ports=tuple(sorted(set(ports))))))
        out.append((f"aws:num-listening-{kind}-ports", MetricValue(count=total)))
    tcp = metrics.get("tcp_connections")
    if tcp is not None:
        if not isinstance(tcp, dict):
            raise ReportRejected("InvalidPayload", MALFORMED)
        established = tcp.get("established_connections")
        if established is not None:
            if not isinstance(established, dict):
                raise ReportRejected("InvalidPayload", MALFORMED)
            connections = established.get("connections", [])
            if not isinstance(connections, list):
                raise ReportRejected("InvalidPayload", MALFORMED)
            addresses: list[str] = []
            for connection in connections:
                if not isinstance(connection, dict) or not isinstance(
                        connection.get("remote_addr"), str):
                    raise ReportRejected("InvalidPayload", MALFORMED)
                addresses.append(_ip_of(connection["remote_addr"]))
            total = (_count(established["total"]) if "total" in established
                     else len(connections))
            out.append(("aws:num-established-tcp-connections", MetricValue(count=total)))
            out.append(("aws:destination-ip-addresses",
                        MetricValue(cidrs=tuple(sorted(set(addresses))))))
    return out


def _ip_of(remote: str) -> str:
    """``"10.0.0.1:443"`` / ``"[::1]:443"`` / ``"::1"`` → the address."""
    text = remote.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ReportRejected("InvalidPayload", MALFORMED) from None


def _custom(block: dict[str, Any], known: Mapping[str, MetricType]
            ) -> list[tuple[str, MetricValue]]:
    out: list[tuple[str, MetricValue]] = []
    for name, entries in block.items():
        metric_type = known.get(name)
        if metric_type is None:
            raise ReportRejected("InvalidPayload", f"Unknown custom metric {name}")
        if not isinstance(entries, list) or len(entries) != 1 or not isinstance(
                entries[0], dict) or len(entries[0]) != 1:
            raise ReportRejected("InvalidPayload", MALFORMED)
        (key, value), = entries[0].items()
        if _CUSTOM_KEYS.get(key) is not metric_type:
            raise ReportRejected("InvalidPayload",
                                 f"Custom metric {name} is of type {metric_type.value}")
        if metric_type is MetricType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ReportRejected("InvalidPayload", MALFORMED)
            out.append((name, MetricValue(number=float(value))))
            continue
        if not isinstance(value, list):
            raise ReportRejected("InvalidPayload", MALFORMED)
        if metric_type is MetricType.NUMBER_LIST:
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise ReportRejected("InvalidPayload", MALFORMED)
            out.append((name, MetricValue(numbers=tuple(float(v) for v in value))))
        elif metric_type is MetricType.STRING_LIST:
            if not all(isinstance(v, str) for v in value):
                raise ReportRejected("InvalidPayload", MALFORMED)
            out.append((name, MetricValue(strings=tuple(value))))
        else:
            ips = []
            for v in value:
                if not isinstance(v, str):
                    raise ReportRejected("InvalidPayload", MALFORMED)
                ips.append(_ip_of(v))
            out.append((name, MetricValue(cidrs=tuple(ips))))
    return out
