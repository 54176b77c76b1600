"""A node cut off from NATS misses the relayed change events; when it is back, it reads
the rules again, so a rule created meanwhile through another node runs there too."""

from __future__ import annotations

import dataclasses
import time

from support.clients import wait_for
from support.tcp_proxy import Partitionable

from .test_sessions_across_nodes import Fleet, PrivateNats, fleet, private

__all__ = ["fleet", "private"]


def test_a_rule_created_while_a_node_was_cut_off_runs_there_once_it_is_back(
        fleet: Fleet, private: PrivateNats) -> None:
    cutter = Partitionable(("127.0.0.1", private.port))
    try:
        cluster = fleet.config.cluster
        fleet.config = dataclasses.replace(fleet.config, cluster=dataclasses.replace(
            cluster, nats_url=private.url))
        one = fleet.start("node-1")
        fleet.config = dataclasses.replace(fleet.config, cluster=dataclasses.replace(
            cluster, nats_url=f"nats://127.0.0.1:{cutter.port}"))
        two = fleet.start("node-2")
        engine = two.app.rules
        assert engine is not None
        cutter.down()  # node-2's connections to NATS close, and new ones are refused
        one.app.services.rules.create_topic_rule("while_away", {
            "sql": "SELECT * FROM 'plant/#'",
            "actions": [{"republish": {"roleArn": "arn:aws:iam::123456789012:role/r",
                                       "topic": "copies/x"}}]})
        time.sleep(1.0)  # the change event went out while node-2 could not hear it
        assert "while_away" not in engine.enabled_rules()
        cutter.up()
        wait_for(lambda: "while_away" in engine.enabled_rules(), timeout=20,
                 what="node-2 to read the rules again once NATS is back")
    finally:
        cutter.close()
