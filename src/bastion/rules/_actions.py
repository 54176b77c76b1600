"""Rule actions as the API describes them (AWS's ``Action`` shapes) → checked specs.

A rule's actions arrive in AWS's shapes, so boto3, the CLI and CloudFormation-style
tooling describe them unchanged; Bastion runs each one it supports with a local analog:

============== ====================================================================
AWS action     what Bastion does
============== ====================================================================
republish      publishes the result on an MQTT topic of this broker (QoS 0 or 1,
               MQTT 5 headers); the topic may not be reserved (``$...``)
http           POSTs the result to a URL under a confirmed topic rule destination (or,
               batching, a JSON array of several results)
cloudwatchLogs appends the result to a local JSON-lines file per log group (rotated)
dynamoDBv2     inserts the result as a row of a table in the operator's SQL database
               (``[rules] sql_url``): each top-level key fills the column of its name
dynamoDB       writes a row of a table there by key columns: ``hashKeyField`` (and
               ``rangeKeyField``) take their rendered templates, ``payloadField`` the
               result; ``operation`` INSERT or UPDATE replaces the row with those keys,
               DELETE removes it
kinesis        publishes the result to NATS JetStream (``[rules] nats_url``): the
               stream name is the subject, a JetStream stream must take it
s3             puts the result as an object into a bucket of the S3-compatible store
               the operator configures (``[rules] s3_endpoint_url``)
============== ====================================================================

Every other AWS action (lambda, sns, sqs, …) is refused when the rule is created,
naming the action, rather than accepted and never run. Parameters that AWS lets hold
substitution templates (``${...}``) are parsed here, so a bad template is the caller's
error at CreateTopicRule time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from ._errors import InvalidRuleError
from ._templates import Template, parse_template

MAX_ACTIONS = 10
"""AWS's limit of actions per rule."""

SUPPORTED_ACTIONS = (
    "republish", "http", "cloudwatchLogs", "dynamoDBv2", "dynamoDB", "kinesis", "s3")

_LOG_GROUP = re.compile(r"[A-Za-z0-9_.\-/#]{1,512}")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class RepublishSpec:
    topic: Template
    qos: int
    content_type: Template | None = None
    response_topic: Template | None = None
    correlation_data: Template | None = None
    message_expiry: Template | None = None
    payload_format_indicator: str | None = None
    user_properties: tuple[tuple[str, Template], ...] = ()

    kind = "republish"
    name = "RepublishAction"


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """The http action's ``batchConfig`` (AWS's bounds and defaults)."""

    max_open_ms: int = 20
    max_size: int = 10
    max_bytes: int = 5120
    across_topics: bool = False


@dataclass(frozen=True, slots=True)
class HttpSpec:
    url: Template
    confirmation_url: str
    headers: tuple[tuple[str, Template], ...] = ()
    batch: BatchSettings | None = None

    kind = "http"
    name = "HttpAction"


@dataclass(frozen=True, slots=True)
class LogFileSpec:
    log_group: Template

    kind = "cloudwatchLogs"
    name = "CloudwatchLogsAction"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    subject: Template
    partition_key: Template | None = None

    kind = "kinesis"
    name = "KinesisAction"


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    bucket: Template
    key: Template
    canned_acl: str | None = None

    kind = "s3"
    name = "S3Action"


@dataclass(frozen=True, slots=True)
class SqlTableSpec:
    table: Template

    kind = "dynamoDBv2"
    name = "DynamoDBv2Action"


@dataclass(frozen=True, slots=True)
class KeyColumn:
    """A key column of the dynamoDB action and the template that fills it."""

    name: str
    value: Template
    number: bool
    """``NUMBER``: the rendered value is written as a number (else as text)."""


@dataclass(frozen=True, slots=True)
class SqlKeyedSpec:
    table: Template
    keys: tuple[KeyColumn, ...]
    payload_column: str
    operation: Template | None
    """Renders to INSERT, UPDATE or DELETE; None is INSERT."""

    kind = "dynamoDB"
    name = "DynamoDBAction"


OPERATIONS = ("INSERT", "UPDATE", "DELETE")

ActionSpec: TypeAlias = (RepublishSpec | HttpSpec | LogFileSpec | SqlTableSpec | SqlKeyedSpec
                         | StreamSpec | ObjectSpec)


def _template(value: Any, what: str) -> Template:
    if not isinstance(value, str) or not value:
        raise InvalidRuleError(f"{what} must be a non-empty string")
    return parse_template(value)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRuleError(f"{what} must be an object")
    return value


def _pairs(value: Any, what: str) -> tuple[tuple[str, Template], ...]:
    """``[{"key": k, "value": v}, ...]`` (headers, user properties) with template values."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidRuleError(f"{what} must be a list of {{key, value}} objects")
    pairs = []
    for item in value:
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidRuleError(f"every key of {what} must be a non-empty string")
        pairs.append((key, _template(item.get("value"), f"the value of {what} {key!r}")))
    return tuple(pairs)


def _republish(params: dict[str, Any]) -> RepublishSpec:
    topic = _template(params.get("topic"), "republish.topic")
    literal = [part for part in topic.parts if isinstance(part, str)]
    if topic.parts and isinstance(topic.parts[0], str) and topic.parts[0].startswith("$"):
        raise InvalidRuleError(
            f"republish.topic {topic.source!r} is a reserved topic; a rule may not "
            "republish to $aws/... or other $ topics")
    if any("+" in part or "#" in part for part in literal):
        raise InvalidRuleError(f"republish.topic {topic.source!r} has a wildcard")
    qos = params.get("qos", 0)
    if isinstance(qos, bool) or qos not in (0, 1):
        raise InvalidRuleError("republish.qos must be 0 or 1")
    headers = _mapping(params.get("headers"), "republish.headers")
    indicator = headers.get("payloadFormatIndicator")
    if indicator not in (None, "UNSPECIFIED_BYTES", "UTF8_DATA"):
        raise InvalidRuleError("republish.headers.payloadFormatIndicator must be "
                               "UNSPECIFIED_BYTES or UTF8_DATA")

    def optional(key: str) -> Template | None:
        value = headers.get(key)
        return None if value is None else _template(value, f"republish.headers.{key}")

    properties = _pairs(headers.get("userProperties"), "republish.headers.userProperties")
    return RepublishSpec(topic, int(qos), optional("contentType"),
                         optional("responseTopic"), optional("correlationData"),
                         optional("messageExpiry"), indicator, properties)


def _http(params: dict[str, Any]) -> HttpSpec:
    url = _template(params.get("url"), "http.url")
    scheme = urlsplit(url.source).scheme
    if scheme not in ("https", "http"):
        raise InvalidRuleError("http.url must be an https:// (or http://) URL")
    confirmation = params.get("confirmationUrl")
    if confirmation is None:
        if not url.is_constant:
            raise InvalidRuleError("http.confirmationUrl is required when http.url holds "
                                   "a substitution template")
        confirmation = url.source
    if not isinstance(confirmation, str) or "${" in confirmation:
        raise InvalidRuleError("http.confirmationUrl must be a URL without templates")
    prefix = url.source.split("${", 1)[0]
    if not prefix.startswith(confirmation) and not confirmation.startswith(prefix):
        raise InvalidRuleError("http.url must start with http.confirmationUrl")
    if params.get("auth"):
        raise InvalidRuleError("http.auth (SigV4 to AWS services) is not supported by Bastion")
    batch: BatchSettings | None = None
    config = _mapping(params.get("batchConfig"), "http.batchConfig")
    if params.get("enableBatching"):
        batch = BatchSettings(
            _bounded(config, "maxBatchOpenMs", 5, 200, 20),
            _bounded(config, "maxBatchSize", 2, 10, 10),
            _bounded(config, "maxBatchSizeBytes", 100, 131072, 5120),
            bool(config.get("batchAcrossTopics", False)))
    return HttpSpec(url, confirmation, _pairs(params.get("headers"), "http.headers"), batch)


def _bounded(config: dict[str, Any], key: str, low: int, high: int, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRuleError(f"http.batchConfig.{key} must be between {low} and {high}")
    return value


def _log_file(params: dict[str, Any]) -> LogFileSpec:
    group = _template(params.get("logGroupName"), "cloudwatchLogs.logGroupName")
    if group.is_constant and not _LOG_GROUP.fullmatch(group.source):
        raise InvalidRuleError("cloudwatchLogs.logGroupName may hold letters, digits and "
                               "_ . - / # (at most 512)")
    if params.get("batchMode"):
        raise InvalidRuleError("cloudwatchLogs.batchMode is not supported by Bastion yet")
    return LogFileSpec(group)


def _sql_table(params: dict[str, Any]) -> SqlTableSpec:
    put = _mapping(params.get("putItem"), "dynamoDBv2.putItem")
    return SqlTableSpec(_table_name(put, "tableName", "dynamoDBv2.putItem.tableName"))


def _table_name(params: dict[str, Any], key: str, what: str) -> Template:
    table = _template(params.get(key), what)
    if table.is_constant and not _TABLE.fullmatch(table.source):
        raise InvalidRuleError(f"{what} must be a plain SQL table name (letters, digits, _; "
                               "at most 63)")
    return table


def _column(params: dict[str, Any], key: str, default: str | None = None) -> str:
    name = params.get(key, default)
    if not isinstance(name, str) or not _TABLE.fullmatch(name):
        raise InvalidRuleError(f"dynamoDB.{key} must be a plain SQL column name (letters, "
                               "digits, _; at most 63)")
    return name


def _key_type(params: dict[str, Any], key: str) -> bool:
    kind = params.get(key, "STRING")
    if kind not in ("STRING", "NUMBER"):
        raise InvalidRuleError(f"dynamoDB.{key} must be STRING or NUMBER")
    return bool(kind == "NUMBER")


def _sql_keyed(params: dict[str, Any]) -> SqlKeyedSpec:
    table = _table_name(params, "tableName", "dynamoDB.tableName")
    keys = [KeyColumn(_column(params, "hashKeyField"),
                      _template(params.get("hashKeyValue"), "dynamoDB.hashKeyValue"),
                      _key_type(params, "hashKeyType"))]
    if (params.get("rangeKeyField") is None) != (params.get("rangeKeyValue") is None):
        raise InvalidRuleError("dynamoDB.rangeKeyField and rangeKeyValue go together")
    if params.get("rangeKeyField") is not None:
        keys.append(KeyColumn(_column(params, "rangeKeyField"),
                              _template(params.get("rangeKeyValue"), "dynamoDB.rangeKeyValue"),
                              _key_type(params, "rangeKeyType")))
    payload = _column(params, "payloadField", "payload")
    if len({key.name for key in keys} | {payload}) != len(keys) + 1:
        raise InvalidRuleError("dynamoDB: the key and payload columns must differ")
    operation = params.get("operation")
    template = None if operation is None else _template(operation, "dynamoDB.operation")
    if template is not None and template.is_constant and template.source not in OPERATIONS:
        raise InvalidRuleError(f"dynamoDB.operation must be one of {', '.join(OPERATIONS)}")
    return SqlKeyedSpec(table, tuple(keys), payload, template)


_SUBJECT = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")


def _stream(params: dict[str, Any]) -> StreamSpec:
    subject = _template(params.get("streamName"), "kinesis.streamName")
    if subject.is_constant and not _SUBJECT.fullmatch(subject.source):
        raise InvalidRuleError("kinesis.streamName is the NATS subject: tokens of letters, "
                               "digits, _ and - separated by dots, no wildcards")
    key = params.get("partitionKey")
    return StreamSpec(subject, None if key is None else _template(key, "kinesis.partitionKey"))


_CANNED_ACLS = frozenset({
    "private", "public-read", "public-read-write", "aws-exec-read", "authenticated-read",
    "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"})


def _object(params: dict[str, Any]) -> ObjectSpec:
    bucket = _template(params.get("bucketName"), "s3.bucketName")
    key = _template(params.get("key"), "s3.key")
    acl = params.get("cannedAcl")
    if acl is not None and acl not in _CANNED_ACLS:
        raise InvalidRuleError(f"s3.cannedAcl {acl!r} is not a canned ACL")
    return ObjectSpec(bucket, key, acl)


_BUILDERS: dict[str, Callable[[dict[str, Any]], ActionSpec]] = {"republish": _republish, "http": _http, "cloudwatchLogs": _log_file,
             "dynamoDBv2": _sql_table, "dynamoDB": _sql_keyed, "kinesis": _stream,
             "s3": _object}


def parse_action(action: Any) -> ActionSpec:
    """One AWS ``Action`` → its spec.

    :raises InvalidRuleError: not exactly one action in it, or one Bastion does not run.
    :raises SqlParseError: a substitution template does not parse.
    """
    if not isinstance(action, dict):
        raise InvalidRuleError("an action must be an object")
    kinds = [key for key, value in action.items() if value is not None]
    if len(kinds) != 1:
        raise InvalidRuleError(f"an action names exactly one kind, not {len(kinds)}")
    kind = kinds[0]
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise InvalidRuleError(
            f"the {kind} action is not supported by Bastion; supported: "
            f"{', '.join(SUPPORTED_ACTIONS)} (see docs/rules.md)")
    params = action[kind]
    if not isinstance(params, dict):
        raise InvalidRuleError(f"{kind} must be an object")
    return builder(params)


def describe_resource(spec: ActionSpec) -> str:
    """What the action writes to, for an error action's ``failedResource``."""
    if isinstance(spec, RepublishSpec):
        return spec.topic.source
    if isinstance(spec, HttpSpec):
        return spec.url.source
    if isinstance(spec, LogFileSpec):
        return spec.log_group.source
    if isinstance(spec, StreamSpec):
        return spec.subject.source
    if isinstance(spec, ObjectSpec):
        return f"{spec.bucket.source}/{spec.key.source}"
    return spec.table.source
