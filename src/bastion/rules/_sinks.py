"""Where actions deliver: the I/O behind each action spec (:mod:`._actions`).

Every ``deliver`` runs in one of the engine's worker threads, may block (bounded by the
action timeout), and raises :class:`ActionFailed` when the delivery did not happen;
``retry`` on the error says whether trying again may help (a refused republish topic will
not; an HTTP 503 may).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import http.client
import json
import logging
import os
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from ._actions import (
    OPERATIONS,
    HttpSpec,
    KeyColumn,
    LogFileSpec,
    ObjectSpec,
    RepublishSpec,
    SqlKeyedSpec,
    SqlTableSpec,
    StreamSpec,
)
from ._evaluate import MessageContext, RuleOutput
from ._service import ConfirmationRequest
from ._values import to_number

log = logging.getLogger("bastion.rules")

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_LOG_GROUP = re.compile(r"[A-Za-z0-9_.\-/#]{1,512}")


class ActionFailed(Exception):
    """A delivery that did not happen.

    :param retry: trying again may succeed (a transient failure).
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class Republication:
    """A message a republish action asks the broker to publish."""

    topic: str
    payload: bytes
    qos: int
    payload_format_indicator: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    message_expiry_interval: int | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    rule_name: str = ""


Republisher = Callable[[Republication], None]
"""Hands a message to the broker (thread-safe); raises ``RuntimeError`` when it cannot."""


def republish(spec: RepublishSpec, output: RuleOutput, ctx: MessageContext,
              rule_name: str, publisher: Republisher) -> None:
    """:raises ActionFailed: the rendered topic is reserved or not a topic name."""
    topic = spec.topic.render(ctx)
    if not topic or topic.startswith("$") or "+" in topic or "#" in topic \
            or "\0" in topic or len(topic.encode("utf-8")) > 65535:
        raise ActionFailed(f"republish topic {topic!r} is reserved or not a topic name",
                           retry=False)
    expiry: int | None = None
    if spec.message_expiry is not None:
        text = spec.message_expiry.render(ctx)
        try:
            expiry = int(text)
        except ValueError:
            raise ActionFailed(f"messageExpiry {text!r} is not a number", retry=False) \
                from None
        if not 0 <= expiry < 2**32:
            raise ActionFailed(f"messageExpiry {expiry} is out of range", retry=False)

    def optional(template: Any) -> str | None:
        return None if template is None else template.render(ctx)

    correlation = optional(spec.correlation_data)
    indicator = {None: None, "UNSPECIFIED_BYTES": 0, "UTF8_DATA": 1}[
        spec.payload_format_indicator]
    try:
        publisher(Republication(
            topic, output.payload(), spec.qos, indicator, optional(spec.content_type),
            optional(spec.response_topic),
            None if correlation is None else correlation.encode("utf-8"), expiry,
            tuple((key, value.render(ctx)) for key, value in spec.user_properties),
            rule_name))
    except RuntimeError as error:
        raise ActionFailed(f"the broker did not take the message: {error}") from None


_OPEN_FILES = 512
"""Log files kept open at most; past that they are all closed and opened again on use."""


class LogFiles:
    """The cloudwatchLogs action's local analog: one JSON-lines file per log group under
    ``directory``, rotated past ``max_bytes`` (``group.jsonl`` → ``group.jsonl.1`` → …,
    ``kept`` old files)."""

    def __init__(self, directory: Path, *, max_bytes: int, kept: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.kept = kept
        self._lock = threading.Lock()
        self._open: dict[Path, tuple[Any, int]] = {}
        """Files kept open for appending, with their size: one write per line."""

    def path_of(self, group: str) -> Path:
        return self.directory / (group.replace("/", "_").replace("#", "_") + ".jsonl")

    def deliver(self, spec: LogFileSpec, output: RuleOutput, ctx: MessageContext,
                rule_name: str) -> None:
        """:raises ActionFailed: a bad group name, or the file cannot be written."""
        group = spec.log_group.render(ctx)
        if not _LOG_GROUP.fullmatch(group) or group.strip("._") == "":
            raise ActionFailed(f"log group {group!r} is not a valid name", retry=False)
        message: Any = ({"base64": base64.b64encode(output.raw).decode("ascii")}
                        if output.raw is not None else output.value)
        line = json.dumps({
            "timestamp": datetime.fromtimestamp(ctx.timestamp_ms / 1000, UTC).isoformat(),
            "ruleName": rule_name, "topic": ctx.topic, "clientId": ctx.client_id,
            "message": message}, separators=(",", ":"), ensure_ascii=False) + "\n"
        data = line.encode("utf-8")
        path = self.path_of(group)
        try:
            with self._lock:
                out, size = self._open.get(path) or self._open_file(path)
                if size and size + len(data) > self.max_bytes:
                    out.close()
                    self._rotate(path)
                    out, size = self._open_file(path)
                out.write(data)
                self._open[path] = (out, size + len(data))
        except OSError as error:
            self._forget(path)
            raise ActionFailed(f"cannot write {path}: {error}") from None

    def _open_file(self, path: Path) -> tuple[Any, int]:
        if len(self._open) >= _OPEN_FILES:
            self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        out = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open for the next lines
        entry = (out, out.seek(0, os.SEEK_END))
        self._open[path] = entry
        return entry

    def _forget(self, path: Path) -> None:
        with self._lock:
            entry = self._open.pop(path, None)
        if entry is not None:
            entry[0].close()

    def close(self) -> None:
        """Close the files kept open (the next line opens its file again)."""
        open_files, self._open = self._open, {}
        for out, _ in open_files.values():
            out.close()

    def _rotate(self, path: Path) -> None:
        oldest = path.with_name(f"{path.name}.{self.kept}")
        if oldest.exists():
            oldest.unlink()
        for number in range(self.kept - 1, 0, -1):
            older = path.with_name(f"{path.name}.{number}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{number + 1}"))
        if self.kept > 0:
            os.replace(path, path.with_name(f"{path.name}.1"))
        else:
            path.unlink()


class SqlTables:
    """The DynamoDB actions' analog: rows in a table of the operator's database
    (``[rules] sql_url``). dynamoDBv2 inserts a row per result, each top-level key filling
    the column of the same name (keys without a column are left out); dynamoDB writes or
    deletes the row with the rendered key columns, its payload column taking the result.
    Objects and arrays are stored as JSON text (as they are, in a JSON column). Table
    columns are read once per table (again after a failed write)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._engine: sa.Engine | None = None
        self._tables: dict[str, sa.Table] = {}
        self._lock = threading.Lock()

    def _engine_for(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                options: dict[str, Any] = {"pool_pre_ping": True}
                if self.url.startswith("postgresql"):
                    options["connect_args"] = {"connect_timeout": max(1, int(self.timeout))}
                self._engine = sa.create_engine(self.url, **options)
            return self._engine

    def _table(self, engine: sa.Engine, name: str) -> sa.Table:
        with self._lock:
            table = self._tables.get(name)
        if table is None:
            table = sa.Table(name, sa.MetaData(), autoload_with=engine)
            with self._lock:
                self._tables[name] = table
        return table

    def deliver(self, spec: SqlTableSpec, output: RuleOutput, ctx: MessageContext,
                rule_name: str) -> None:
        """dynamoDBv2: insert the result's keys as columns.

        :raises ActionFailed: no database configured, no such table, not an object,
            or the insert failed."""
        if not isinstance(output.value, dict):
            raise ActionFailed("the rule's result is not an object: it has no columns",
                               retry=False)
        result = output.value

        def insert(conn: sa.Connection, table: sa.Table) -> None:
            row = {key: _column_value(value) for key, value in result.items()
                   if key in table.c}
            if not row:
                raise ActionFailed(f"no key of the result is a column of {table.name}",
                                   retry=False)
            conn.execute(table.insert().values(**row))

        self._write(spec.kind, spec.table.render(ctx), insert)

    def deliver_keyed(self, spec: SqlKeyedSpec, output: RuleOutput, ctx: MessageContext,
                      rule_name: str) -> None:
        """dynamoDB: write (INSERT, UPDATE: replace) or DELETE the row with the rendered
        key columns; the payload column takes the result.

        :raises ActionFailed: as :meth:`deliver`, or a key or operation that renders to
            something unusable."""
        operation = "INSERT" if spec.operation is None else spec.operation.render(ctx)
        if operation not in OPERATIONS:
            raise ActionFailed(f"operation {operation!r} is not one of "
                               f"{', '.join(OPERATIONS)}", retry=False)
        keys = {key.name: _key_value(key, ctx) for key in spec.keys}
        payload: Any = (output.value if output.raw is None
                        else {"base64": base64.b64encode(output.raw).decode("ascii")})

        def write(conn: sa.Connection, table: sa.Table) -> None:
            missing = [name for name in (*keys, spec.payload_column) if name not in table.c]
            if missing:
                raise ActionFailed(f"{table.name} has no column {', '.join(missing)}",
                                   retry=False)
            match = sa.and_(*(table.c[name] == value for name, value in keys.items()))
            if operation == "DELETE":
                conn.execute(table.delete().where(match))
                return
            column = table.c[spec.payload_column]
            value = payload if isinstance(column.type, sa.JSON) else _column_value(payload)
            changed = conn.execute(table.update().where(match).values(
                {spec.payload_column: value}))
            if changed.rowcount == 0:
                conn.execute(table.insert().values({**keys, spec.payload_column: value}))

        self._write(spec.kind, spec.table.render(ctx), write)

    def _write(self, kind: str, name: str,
               body: Callable[[sa.Connection, sa.Table], None]) -> None:
        """Run ``body`` in one transaction on the table ``name``.

        :raises ActionFailed: no database configured, a bad or missing table, or the
            database refused."""
        if not self.url:
            raise ActionFailed(f"the {kind} action needs [rules] sql_url", retry=False)
        if not _TABLE.fullmatch(name):
            raise ActionFailed(f"table {name!r} is not a plain table name", retry=False)
        try:
            engine = self._engine_for()
            table = self._table(engine, name)
            with engine.begin() as conn:
                body(conn, table)
        except sa.exc.NoSuchTableError:
            raise ActionFailed(f"no table {name!r} in the rules database",
                               retry=False) from None
        except sa.exc.SQLAlchemyError as error:
            with self._lock:
                self._tables.pop(name, None)
            raise ActionFailed(f"writing to {name} failed: "
                               f"{type(error).__name__}: {error.args[0] if error.args else ''}"
                               ) from None

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def _key_value(key: KeyColumn, ctx: MessageContext) -> str | int | float:
    text = key.value.render(ctx)
    if not key.number:
        return text
    number = to_number(text)
    if number is None:
        raise ActionFailed(f"{key.name} is a NUMBER key but {key.value.source} gave {text!r}",
                           retry=False)
    return number


def _column_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


_NATS_SUBJECT = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")


class NatsStreams:
    """The kinesis action's analog: JetStream publishes to the operator's NATS
    (``[rules] nats_url``, else the cluster's). The stream name is the subject; a
    JetStream stream must take it (as a Kinesis stream must exist), and the publish
    waits for the stream's acknowledgement. ``partitionKey`` travels as the
    ``Bastion-Partition-Key`` header. The connection lives on the engine's event loop;
    deliveries from worker threads wait for it there."""

    def __init__(self, url: str, *, timeout: float,
                 loop: Callable[[], asyncio.AbstractEventLoop | None]) -> None:
        self.url = url
        self.timeout = timeout
        self._loop = loop
        self._nc: Any = None
        self._connecting: asyncio.Lock | None = None

    def deliver(self, spec: StreamSpec, output: RuleOutput, ctx: MessageContext,
                rule_name: str) -> None:
        """:raises ActionFailed: no NATS configured, a bad subject, no stream takes it,
            or no acknowledgement in time."""
        if not self.url:
            raise ActionFailed("the kinesis action needs [rules] nats_url (or a cluster)",
                               retry=False)
        subject = spec.subject.render(ctx)
        if not _NATS_SUBJECT.fullmatch(subject):
            raise ActionFailed(f"{subject!r} is not a NATS subject", retry=False)
        headers = None
        if spec.partition_key is not None:
            headers = {"Bastion-Partition-Key": spec.partition_key.render(ctx)}
        loop = self._loop()
        if loop is None or loop.is_closed():
            raise ActionFailed("the engine is not running")
        future = asyncio.run_coroutine_threadsafe(
            self._publish(subject, output.payload(), headers), loop)
        try:
            future.result(self.timeout + 1.0)
        except ActionFailed:
            raise
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ActionFailed(f"no acknowledgement from JetStream for {subject!r} "
                               "in time") from None

    async def _connection(self) -> Any:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._nc is None or self._nc.is_closed:
                import nats

                self._nc = await nats.connect(self.url, name="bastion-rules",
                                              max_reconnect_attempts=-1,
                                              connect_timeout=self.timeout)
        return self._nc

    async def _publish(self, subject: str, payload: bytes,
                       headers: dict[str, str] | None) -> None:
        import nats.errors
        import nats.js.errors

        try:
            nc = await self._connection()
            await nc.jetstream().publish(subject, payload, timeout=self.timeout,
                                         headers=headers)
        except nats.js.errors.NoStreamResponseError:
            raise ActionFailed(f"no JetStream stream takes the subject {subject!r}",
                               retry=False) from None
        except (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError) as error:
            raise ActionFailed(f"JetStream publish to {subject!r}: "
                               f"{type(error).__name__}: {error}") from None

    async def aclose(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception as error:  # noqa: BLE001 - closing is best effort
                log.info("rules: closing the NATS connection: %s", error)


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


class ObjectStores:
    """The s3 action: one object per result in a bucket of the S3-compatible store at
    ``endpoint_url`` (any: MinIO, Ceph, Garage, AWS itself when empty), through boto3 with
    path-style addressing. Credentials come from boto3's usual chain (the environment,
    the shared credentials file, an instance role), never from Bastion's configuration.
    The bucket must exist."""

    def __init__(self, endpoint_url: str, *, region: str, timeout: float) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self.endpoint_url or None, region_name=self.region,
                    config=BotoConfig(s3={"addressing_style": "path"},
                                      connect_timeout=self.timeout,
                                      read_timeout=self.timeout,
                                      retries={"max_attempts": 1}))
            return self._client

    def deliver(self, spec: ObjectSpec, output: RuleOutput, ctx: MessageContext,
                rule_name: str) -> None:
        """:raises ActionFailed: a bad bucket or key, no such bucket, no credentials, or
            the store did not take the object."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        bucket = spec.bucket.render(ctx)
        key = spec.key.render(ctx)
        if not _BUCKET.fullmatch(bucket):
            raise ActionFailed(f"{bucket!r} is not a bucket name", retry=False)
        if not key or len(key.encode("utf-8")) > 1024:
            raise ActionFailed(f"{key!r} is not an object key (1 to 1024 bytes)",
                               retry=False)
        extra: dict[str, Any] = {}
        if spec.canned_acl is not None:
            extra["ACL"] = spec.canned_acl
        try:
            self._s3().put_object(
                Bucket=bucket, Key=key, Body=output.payload(),
                ContentType="application/json" if output.raw is None
                else "application/octet-stream", **extra)
        except NoCredentialsError:
            raise ActionFailed("no credentials for the object store (set them as for any "
                               "boto3 client: environment, shared file, instance role)",
                               retry=False) from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise ActionFailed(f"put {bucket}/{key}: {code or status}",
                               retry=status >= 500 or status in (408, 429)) from None
        except BotoCoreError as error:
            raise ActionFailed(f"put {bucket}/{key}: {error}") from None


class HttpDeliveries:
    """The http action: POST the result to a URL under an ``ENABLED`` destination.

    :param enabled_urls: the confirmation URLs of the enabled destinations (read on each
        delivery; the engine keeps it current).
    """

    def __init__(self, enabled_urls: Callable[[], frozenset[str]], *, timeout: float,
                 cafile: str | None = None) -> None:
        self._enabled_urls = enabled_urls
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=cafile or None)

    def deliver(self, spec: HttpSpec, output: RuleOutput, ctx: MessageContext,
                rule_name: str) -> None:
        """:raises ActionFailed: the URL is under no enabled destination, or the POST did
            not answer 2xx."""
        headers = tuple((key, template.render(ctx)) for key, template in spec.headers)
        self.post(spec, spec.url.render(ctx), headers, output.payload(),
                  "application/json" if output.raw is None else "application/octet-stream")

    def post(self, spec: HttpSpec, url: str, headers: tuple[tuple[str, str], ...],
             body: bytes, content_type: str = "application/json") -> None:
        """POST ``body`` to ``url`` (a result, or a batch's JSON array).

        :raises ActionFailed: the URL is under no enabled destination, or no 2xx answer.
        """
        if spec.confirmation_url not in self._enabled_urls() \
                or not url.startswith(spec.confirmation_url):
            raise ActionFailed(f"{url} is under no ENABLED topic rule destination "
                               "(CreateTopicRuleDestination, then confirm it)", retry=False)
        sent = {"content-type": content_type}
        sent.update(headers)
        post(url, body, sent, timeout=self.timeout, context=self._context)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         context: ssl.SSLContext) -> None:
    """POST ``body`` to ``url``.

    :raises ActionFailed: no connection, or not a 2xx answer (a 4xx other than 408 and
        429 is not retried).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout,
                                                 context=context)
    else:
        connection = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        status = response.status
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        raise ActionFailed(f"POST {url}: {type(error).__name__}: {error}") from None
    finally:
        connection.close()
    if not 200 <= status < 300:
        retry = status >= 500 or status in (408, 429)
        raise ActionFailed(f"POST {url}: HTTP {status}", retry=retry)


def confirmation_sender(*, cafile: str | None, timeout: float
                        ) -> Callable[[ConfirmationRequest], None]:
    """The :class:`~._service.RuleService`'s ``confirm``: POST the handshake's JSON to
    the destination's URL.

    :raises ActionFailed: (from the returned function) no 2xx answer.
    """
    context = ssl.create_default_context(cafile=cafile)

    def send(request: ConfirmationRequest) -> None:
        post(request.url, json.dumps(request.body()).encode("utf-8"),
             {"content-type": "application/json"}, timeout=timeout, context=context)

    return send
