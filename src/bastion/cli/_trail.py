"""``bastion trail verify|export|digest-key``: check and read the keyed, hash-chained
trail of API calls. ``verify`` exits 0 with ``intact: N records``, or 1 naming the first
record that fails and what broke (a :class:`~bastion.trail.Problem`), including a missing
master key. ``verify --digests`` checks the trail against its signed digests with the
public key alone (a :class:`~bastion.trail.DigestProblem` names the digest and record).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ..datadir import DataDir
from ..pki import Keystore, KeystoreError
from ..trail import (
    DigestVerdict,
    DirectorySink,
    TrailKeys,
    TrailRecord,
    VerifyResult,
    export,
    load_public_key,
    public_key_pem,
    read_digest_files,
    record_from_json,
    signing_key,
    verify,
    verify_chain,
    verify_digests,
    write_public_key,
)
from ._admin import DataDirOption, Local, console, data_dir_path, err, open_local

trail_app = typer.Typer(no_args_is_help=True,
                        help="The hash-chained trail of control-plane calls.")

_ANCHOR = re.compile(r"(\d+):([0-9a-fA-F]{64})")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time or date; without an offset it is UTC.

    :raises typer.BadParameter: not ISO 8601.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment


def _anchors(values: list[str]) -> dict[int, str]:
    anchors: dict[int, str] = {}
    for value in values:
        match = _ANCHOR.fullmatch(value.strip())
        if not match:
            raise typer.BadParameter(f"{value!r} is not SEQUENCE:SHA256HEX", param_hint="--anchor")
        anchors[int(match.group(1))] = match.group(2).lower()
    return anchors


def _report(result: VerifyResult, what: str) -> None:
    if result.ok:
        unkeyed = (f" ({result.unkeyed} of them unkeyed, written before the trail was "
                   "keyed)" if result.unkeyed else "")
        console.print(f"[green]{what} intact[/]: {result.checked} records{unkeyed}.")
        if result.last_sequence:
            print(f"Last record: {result.last_sequence}:{result.last_hash}", flush=True)
            print("  Note it down elsewhere: `bastion trail verify --anchor "
                  f"{result.last_sequence}:{result.last_hash}` later proves the chain up to "
                  "here was not rewritten.", flush=True)
        return
    where = ("" if result.first_broken_sequence is None
             else f" at record {result.first_broken_sequence}")
    problem = "" if result.problem is None else f" ({result.problem.value})"
    err.print(f"[red bold]{what} BROKEN{where}{problem}[/]: {result.reason}")
    err.print(f"{result.checked} records before it are intact.")
    raise typer.Exit(1)


def _keys_of(open_keystore: Callable[[], Keystore]) -> TrailKeys | None:
    """The trail keys, or ``None`` (said on stderr) when the master key is unavailable."""
    try:
        return TrailKeys.from_keystore(open_keystore())
    except (KeystoreError, FileNotFoundError) as exc:
        err.print(f"[yellow]the trail keys are unavailable:[/] {exc}")
        return None


def _verify_file(path: Path, anchors: dict[int, str],
                 keys: TrailKeys | None) -> VerifyResult | None:
    records = []
    number = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    records.append(record_from_json(json.loads(line)))
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        err.print(f"[red]cannot read {path}[/] (line {number}): {exc}")
        raise typer.Exit(2) from None
    if not records:
        return None
    first = records[0]
    return verify_chain(records, keys=keys, start_sequence=first.sequence - 1,
                        start_hash=first.previous_hash, anchors=anchors)


@trail_app.command("verify")
def verify_command(
    data_dir: DataDirOption = None,
    digests: Annotated[str | None, typer.Option(
        "--digests", help="Verify against the signed digests in this directory or "
                          "s3://bucket/prefix, with --public-key alone (no master key).")
    ] = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="The trail digest public key (PEM; `bastion trail "
                             "digest-key`).")] = None,
    trail_export: Annotated[Path | None, typer.Option(
        "--trail-export", help="With --digests: the records of this `bastion trail "
                               "export` file (from record 1) instead of the database.")
    ] = None,
    s3_endpoint_url: Annotated[str, typer.Option(
        "--s3-endpoint-url", help="With an s3:// --digests: the S3-compatible store "
                                  "(empty: AWS; credentials: boto3's usual chain).")] = "",
    s3_region: Annotated[str, typer.Option("--s3-region")] = "us-east-1",
    anchor: Annotated[list[str], typer.Option(
        "--anchor", help="SEQUENCE:HASH noted from an earlier run; must still hold "
                         "(repeatable).")] = [],  # noqa: B006
    file: Annotated[Path | None, typer.Option(
        "--file", help="Verify a JSON-lines export instead of the database (a window of "
                       "the chain is checked for internal consistency; keyed records need "
                       "the data directory's master key).")] = None,
) -> None:
    """Prove the trail intact (exit 0), or name the first record that fails and why
    (exit 1): record altered, link mismatch, gap, head missing, head not sealed, head
    seal invalid, truncated, record beyond head, key unavailable, anchor mismatch."""
    anchors = _anchors(anchor)
    if digests is not None or public_key is not None or trail_export is not None:
        if digests is None or public_key is None:
            raise typer.BadParameter("--digests and --public-key go together (and "
                                     "--trail-export needs them)")
        _verify_digests(digests, public_key, trail_export, data_dir,
                        endpoint_url=s3_endpoint_url, region=s3_region)
        return
    if file is not None:
        datadir = DataDir(data_dir_path(data_dir))
        result = _verify_file(file, anchors, _keys_of(datadir.open_keystore))
        if result is None:
            console.print(f"{file} holds no records.")
            return
        _report(result, f"Export {file}")
        return
    with open_local(data_dir) as local:
        result = verify(local.store, _local_keys(local), anchors=anchors)
    _report(result, "Trail")


def _local_keys(local: Local) -> TrailKeys | None:
    return _keys_of(local.keystore)


@trail_app.command("export")
def export_command(
    since: Annotated[str | None, typer.Option(
        help="Records at or after this ISO 8601 time (UTC unless an offset is given).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Records before this time.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")
                   ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write trail records as JSON lines (one record per line, in sequence order)."""
    start = None if since is None else parse_time(since)
    end = None if until is None else parse_time(until)
    with open_local(data_dir) as local:
        target = sys.stdout if out is None else out.open("w", encoding="utf-8")
        count = 0
        try:
            for record in export(local.store, start, end):
                target.write(json.dumps(record, separators=(",", ":")) + "\n")
                count += 1
            target.flush()
        finally:
            if out is not None:
                target.close()
    if out is not None:
        err.print(f"{count} records written to {out}")


def _verify_digests(location: str, public_key: Path, trail_export: Path | None,
                    data_dir: Path | None, *, endpoint_url: str, region: str) -> None:
    """``verify --digests``: exit 0 when intact, 1 naming the digest and record that
    fail, 2 when the inputs cannot be read."""
    try:
        key = load_public_key(public_key.read_bytes())
    except (OSError, ValueError) as exc:
        err.print(f"[red]cannot read the public key {public_key}:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        files = read_digest_files(location, endpoint_url=endpoint_url, region=region)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError or boto's: said, exit 2
        err.print(f"[red]cannot read the digests at {location}:[/] {exc}")
        raise typer.Exit(2) from None
    if trail_export is not None:
        verdict = verify_digests(files, key, _export_records(trail_export))
        _report_digests(verdict, f"Export {trail_export}")
        return
    with open_local(data_dir) as local:
        known = _delivered_through(local, location)
        records = (record_from_json(data) for data in export(local.store))
        verdict = verify_digests(files, key, records, known_newest=known)
    _report_digests(verdict, "Trail")


def _delivered_through(local: Local, location: str) -> int | None:
    """The last digest the store delivered to ``location``, when it is one of the
    configured sinks (``None`` when it is not: a copy elsewhere)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://"):].partition("/")
        sink = f"s3:{bucket}/{prefix}"
    else:
        sink = DirectorySink(Path(location).resolve()).id
    with local.store.transaction(readonly=True) as uow:
        through = uow.trail_digests.delivered_through(sink)
    return through or None


def _export_records(path: Path) -> list[TrailRecord]:
    records = []
    number = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    records.append(record_from_json(json.loads(line)))
    except (OSError, ValueError) as exc:
        err.print(f"[red]cannot read {path}[/] (line {number}): {exc}")
        raise typer.Exit(2) from None
    return records


def _report_digests(verdict: DigestVerdict, what: str) -> None:
    if verdict.ok:
        console.print(f"[green]{what} intact against its digests[/]: {verdict.digests} "
                      f"digests, {verdict.records} records.")
        if verdict.newest is not None:
            print(f"Newest digest: {verdict.newest}.", flush=True)
            print("  A digest is made every [trail] digest_interval_minutes while Bastion "
                  "runs: one much older than that means later digests are missing.",
                  flush=True)
        if verdict.uncovered:
            print(f"{verdict.uncovered} records after record {verdict.last_sequence} are "
                  "not covered by a digest yet.", flush=True)
        return
    where = []
    if verdict.digest is not None:
        where.append(f"digest {verdict.digest}")
    if verdict.sequence is not None:
        where.append(f"record {verdict.sequence}")
    at = f" at {', '.join(where)}" if where else ""
    problem = "" if verdict.problem is None else f" ({verdict.problem.value})"
    err.print(f"[red bold]{what} BROKEN{at}{problem}[/]: {verdict.reason}",
              soft_wrap=True)
    err.print(f"{verdict.digests} digests and {verdict.records} records before it are "
              "intact.")
    raise typer.Exit(1)


@trail_app.command("digest-key")
def digest_key_command(data_dir: DataDirOption = None) -> None:
    """Print the public key that verifies the trail's signed digests (PEM), made if
    missing, and write it beside the data (trail-digest.pub.pem)."""
    with open_local(data_dir) as local:
        key = signing_key(local.store, local.keystore(), datetime.now(UTC)).public_key()
        write_public_key(local.datadir.trail_digest_public_key_path, key)
    sys.stdout.write(public_key_pem(key).decode("ascii"))
    sys.stdout.flush()
    err.print(f"(also in {local.datadir.trail_digest_public_key_path})")


def create_digest_key(datadir: DataDir) -> None:
    """For ``bastion init``: make the trail signing key (if there is none) and write its
    public key."""
    with open_local(datadir.path) as local:
        key = signing_key(local.store, local.keystore(), datetime.now(UTC)).public_key()
        write_public_key(datadir.trail_digest_public_key_path, key)
    console.print(f"  trail digest public key: {datadir.trail_digest_public_key_path}")
