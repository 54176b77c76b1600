"""The level a client gets: defaults, targets, thing-group inheritance (pure core)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.broker import LOG_DEBUG, LOG_DISABLED, LOG_ERROR, LOG_INFO, LOG_WARN
from bastion.iotlogs import LevelTable, group_levels, level_table

V2 = {"roleArn": "arn:aws:iam::123456789012:role/logs", "defaultLogLevel": "ERROR",
      "disableAllLogs": False}


def target(kind: str, name: str | None, level: str) -> dict[str, Any]:
    found: dict[str, Any] = {"targetType": kind, "logLevel": level}
    if name is not None:
        found["targetName"] = name
    return found


@pytest.mark.parametrize(("v1", "v2", "targets", "expected"), [
    (None, None, [], LOG_WARN),  # neither set: the configured fallback
    ({"logLevel": "DEBUG"}, None, [], LOG_DEBUG),
    ({"logLevel": "INFO"}, {**V2, "defaultLogLevel": "WARN"}, [], LOG_WARN),  # v2 wins
    (None, V2, [target("DEFAULT", None, "INFO")], LOG_INFO),  # DEFAULT target wins
    (None, {**V2, "defaultLogLevel": "DISABLED"}, [], LOG_DISABLED),
    (None, {**V2, "disableAllLogs": True}, [target("CLIENT_ID", "c", "DEBUG")],
     LOG_DISABLED),
], ids=["fallback", "v1", "v2-over-v1", "default-target", "disabled-default",
        "disable-all-logs"])
def test_default_level(v1: Any, v2: Any, targets: list[dict[str, Any]],
                       expected: int) -> None:
    table = level_table(v1, v2, targets, fallback=LOG_WARN)
    assert table.level_for("c", "10.0.0.1", "cert") == expected


def test_targets_override_the_default_and_the_most_verbose_wins() -> None:
    table = level_table(None, {**V2, "defaultLogLevel": "INFO"}, [
        target("CLIENT_ID", "quiet", "ERROR"),
        target("SOURCE_IP", "10.0.0.9", "DEBUG"),
        target("PRINCIPAL_ID", "cert-1", "WARN"),
    ], fallback=LOG_ERROR, things={"thing": LOG_DEBUG})
    assert table.level_for("other", "10.0.0.1", "cert-0") == LOG_INFO
    assert table.level_for("quiet", "10.0.0.1", "cert-0") == LOG_ERROR  # less verbose
    assert table.level_for("quiet", "10.0.0.1", "cert-1") == LOG_WARN
    assert table.level_for("quiet", "10.0.0.9", "cert-1") == LOG_DEBUG
    assert table.level_for("thing", "10.0.0.1", "cert-0") == LOG_DEBUG
    assert table.quietest == LOG_DEBUG


def test_targets_need_v2() -> None:
    table = level_table({"logLevel": "ERROR"}, None, [target("CLIENT_ID", "c", "DEBUG")],
                        fallback=LOG_ERROR)
    assert table.level_for("c", "", "") == LOG_ERROR


def test_a_child_group_overrides_its_parent_and_the_most_verbose_group_wins() -> None:
    # root ─ parent ─ child ; other (a second tree)
    ancestors = {"root": (), "parent": ("root",), "child": ("root", "parent"), "other": ()}
    members = {"root": ["r"], "parent": ["p"], "child": ["c", "both"], "other": ["both", "o"]}
    things = group_levels({"root": LOG_DEBUG, "child": LOG_ERROR, "other": LOG_INFO},
                          ancestors, members)
    assert things == {
        "r": LOG_DEBUG,        # its own group
        "p": LOG_DEBUG,        # through its parent group
        "c": LOG_ERROR,        # the child's own level overrides the root's
        "both": LOG_INFO,      # in two trees: the more verbose
        "o": LOG_INFO,
    }
    assert group_levels({}, ancestors, members) == {}


names = st.sampled_from(["a", "b", "c"])
levels = st.sampled_from([LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_DISABLED])
tables = st.dictionaries(names, levels, max_size=3)


@given(default=levels, client_ids=tables, source_ips=tables, principals=tables,
       things=tables, client=names, ip=names, principal=names)
def test_level_for_is_the_most_verbose_applicable_target_else_the_default(
        default: int, client_ids: dict[str, int], source_ips: dict[str, int],
        principals: dict[str, int], things: dict[str, int], client: str, ip: str,
        principal: str) -> None:
    table = LevelTable(default, False, client_ids, source_ips, principals, things)
    applicable = [found for found in (client_ids.get(client), source_ips.get(ip),
                                      principals.get(principal), things.get(client))
                  if found is not None]
    expected = min(applicable) if applicable else default
    assert table.level_for(client, ip, principal) == expected
    assert LevelTable(default, True, client_ids, source_ips, principals, things
                      ).level_for(client, ip, principal) == LOG_DISABLED
