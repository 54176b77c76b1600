"""PostgreSQL unreachable: a new CONNECT is refused with "server unavailable" (MQTT 5
0x88, 3.1.1 0x03) rather than dropped; a live session keeps the policies it was bound
with and goes on; readiness says why; once the database is back, devices connect again.
A real PostgreSQL behind a forwarder the test takes down (the machine's server itself
stays up), a real Bastion, real mutual-TLS paho clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bastion.config import ApiConfig, Config, MQTTConfig, StoreConfig
from support.clients import V5, V311, Client, wait_for
from support.cluster import provision_fleet
from support.databases import _pg_schemas, fresh_database_url, require_postgres
from support.health import probe
from support.running import RunningBastion
from support.tcp_proxy import Partitionable

__all__ = ["_pg_schemas", "fresh_database_url"]


@pytest.fixture
def proxied(fresh_database_url: Callable[[str], str]) -> Iterator[tuple[str, Partitionable]]:
    """A fresh PostgreSQL database reached through a forwarder: (its URL, the forwarder)."""
    require_postgres()
    url = make_url(fresh_database_url("postgresql"))
    forwarder = Partitionable((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield url.set(host="127.0.0.1", port=forwarder.port).render_as_string(
            hide_password=False), forwarder
    finally:
        forwarder.close()


def test_a_database_that_is_down_refuses_new_devices_and_spares_live_ones(
        tmp_path: Path, proxied: tuple[str, Partitionable]) -> None:
    url, forwarder = proxied
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    store=StoreConfig(database_url=url),
                    api=ApiConfig(host="127.0.0.1", port=0))
    datadir, devices = provision_fleet(config, tmp_path, ("stayer", "late", "older"))
    running = RunningBastion(config, datadir).start()
    try:
        def ready() -> tuple[int, dict[str, Any]]:
            return probe(running.app.api_port, datadir.ca_cert_path)

        live = Client(devices["stayer"], running.port, version=V5,
                      client_id="stayer").connect()
        live.subscribe("plant/stayer/#", qos=1)
        assert ready()[0] == 200
        forwarder.down()
        refused = Client(devices["late"], running.port, version=V5, client_id="late")
        refused.connect(expect_success=False)
        assert refused.connack == 0x88  # Server unavailable, not a dropped connection
        refused.stop()
        older = Client(devices["older"], running.port, version=V311, client_id="older")
        older.connect(expect_success=False)
        assert str(older.connack) == "Server unavailable"  # 3.1.1: return code 3
        older.stop()
        # The live device keeps its bound policy: it publishes and receives as before.
        live.publish("plant/stayer/temp", b"21.5", qos=1)
        assert live.expect(1)[0].payload == b"21.5"
        status, body = ready()
        assert status == 503 and body["checks"]["database"].startswith("unreachable")
        forwarder.up()
        wait_for(lambda: ready()[0] == 200, 20, "the database to be back")
        Client(devices["late"], running.port, version=V5, client_id="late").connect(
        ).disconnect()
        live.disconnect()
    finally:
        forwarder.up()
        running.stop()
