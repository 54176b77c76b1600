"""Nothing acknowledged is lost from the trail: a change and its record commit together.

A real ``bastion serve`` takes CreateThing calls from several boto3 clients at once and is
killed with SIGKILL while they are in flight, then started again on the same data
directory (SQLite, and PostgreSQL). Every thing that exists then — acknowledged or
committed just before the kill — has its CreateThing record, every acknowledged thing
exists, the restarted server trails its calls on the same chain, and ``bastion trail
verify`` passes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from bastion.access import AccessKeyService, Role
from bastion.store import Store
from bastion.trail import export
from support.clients import wait_for
from support.databases import BACKENDS
from support.served import ServedBastion, run_bastion

from .conftest import NO_RETRIES, REGION

WRITERS = 8
ACKNOWLEDGED_BEFORE_THE_KILL = 60


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest,
                 fresh_database_url: Callable[[str], str]) -> str:
    return fresh_database_url(request.param)


def _served(root: Path, database_url: str) -> tuple[ServedBastion, tuple[str, str]]:
    """A data directory on ``database_url`` (audit and detect off: nothing but the API
    writes), not started, and an operator key for it."""
    server = ServedBastion(root, database_url, {"audit": {"enabled": False},
                                                "detect": {"enabled": False}})
    with Store.open(database_url) as store:
        return server, AccessKeyService(store, server.datadir.open_keystore()
                                        ).create_access_key(Role.OPERATOR, "trail crash test")


def _client(server: ServedBastion, key: tuple[str, str]) -> Any:
    return boto3.client("iot", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        verify=str(server.data / "ca" / "root-ca.cert.pem"), config=NO_RETRIES)


def _things(iot: Any) -> set[str]:
    names: set[str] = set()
    token = ""
    while True:
        page = iot.list_things(maxResults=250, **({"nextToken": token} if token else {}))
        names.update(thing["thingName"] for thing in page["things"])
        token = page.get("nextToken", "")
        if not token:
            return names


def _created_in_trail(database_url: str) -> set[str]:
    with Store.open(database_url) as store:
        return {record["parameters"]["thingName"] for record in export(store)
                if record["operation"] == "CreateThing" and record["outcome"] == "allowed"}


def test_a_killed_bastion_leaves_no_change_without_its_record(
        tmp_path: Path, database_url: str) -> None:
    server, key = _served(tmp_path, database_url)
    server.start()
    acknowledged: set[str] = set()
    refused: list[BaseException] = []

    def write(writer: int) -> None:
        iot = _client(server, key)
        for number in range(100_000):
            name = f"crash-{writer}-{number}"
            try:
                iot.create_thing(thingName=name)
            except ClientError as error:  # an answer that is not a success: a defect
                refused.append(error)
                return
            except BotoCoreError:  # the connection died with the server
                return
            acknowledged.add(name)

    writers = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(WRITERS)]
    try:
        for thread in writers:
            thread.start()
        wait_for(lambda: len(acknowledged) >= ACKNOWLEDGED_BEFORE_THE_KILL or refused,
                 timeout=30, what="CreateThing calls acknowledged")
        server.kill()
        for thread in writers:
            thread.join(timeout=15)
        assert not refused, refused[0]
        assert not any(thread.is_alive() for thread in writers)

        server.start()
        iot = _client(server, key)
        existing = _things(iot)
        assert acknowledged <= existing, "an acknowledged CreateThing was lost"
        assert len(existing) >= ACKNOWLEDGED_BEFORE_THE_KILL
        iot.create_thing(thingName="after-the-restart")
        assert server.stop() == 0
    finally:
        server.kill()

    trailed = _created_in_trail(database_url)
    unrecorded = (existing | {"after-the-restart"}) - trailed
    assert not unrecorded, f"{len(unrecorded)} things exist without their CreateThing " \
                           f"record, e.g. {sorted(unrecorded)[:5]}"
    verified = run_bastion("trail", "verify", "--data-dir", str(server.data))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout
