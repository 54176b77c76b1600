"""parse_time and time_to_epoch: AWS's documented examples through whole statements, the
edges that give Undefined, and Hypothesis: what parse_time prints, time_to_epoch reads
back to the same millisecond."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bastion.rules import UNDEFINED, MessageContext, evaluate, parse
from bastion.rules._compile import compile_statement
from bastion.rules._time import format_millis, parse_to_millis, tokens, zone_named

NOW_MS = 1_496_999_986_000  # 2017-06-09 09:19:46 UTC


def select(expression: str) -> Any:
    statement = parse(f"SELECT {expression} AS v FROM 'a/b'")
    ctx = MessageContext("a/b", b"{}", client_id="c", timestamp_ms=NOW_MS)
    output = evaluate(statement, ctx)
    assert output is not None
    assert compile_statement(statement).evaluate(
        MessageContext("a/b", b"{}", client_id="c", timestamp_ms=NOW_MS)) == output
    return output.value.get("v", UNDEFINED) if isinstance(output.value, dict) else UNDEFINED


@pytest.mark.parametrize(("expression", "expected"), [
    # AWS's examples for parse_time ...
    ("""parse_time("yyyy.MM.dd G 'at' HH:mm:ss z", 100000000, 'America/Belize')""",
     "1970.01.01 AD at 21:46:40 CST"),
    ("""parse_time("yyyy.MM.dd G 'at' HH:mm:ss z", timestamp())""",
     "2017.06.09 AD at 09:19:46 UTC"),
    ("parse_time('yyyy', timestamp(), 'UTC')", "2017"),
    # ... and for time_to_epoch
    ("""time_to_epoch("2020-04-03 09:45:18 UTC+01:00", "yyyy-MM-dd HH:mm:ss VV")""",
     1585903518000),
    ("""time_to_epoch("18 December 2015", "dd MMMM yyyy")""", 1450396800000),
    ("""time_to_epoch("2007-12-03 10:15:30.592 America/Los_Angeles",
                      "yyyy-MM-dd HH:mm:ss.SSS z")""", 1196705730592),
    # more fields
    ("""parse_time("EEEE d MMM yy, h:mm a, DDD", timestamp(), 'Asia/Kolkata')""",
     "Friday 9 Jun 17, 2:49 PM, 160"),
    ("""parse_time("yyyy-MM-dd'T'HH:mm:ss.SSSZZ", 1496999986123, 'America/Sao_Paulo')""",
     "2017-06-09T06:19:46.123-03:00"),
    ("""parse_time("HH:mm X Z O", 0, '+05:30')""", "05:30 +0530 +0530 GMT+5:30"),
    ("""parse_time("''yyyy''", 0)""", "'1970'"),
    ("""time_to_epoch("09/06/2017 02:49:46 PM +05:30", "dd/MM/yyyy hh:mm:ss a XXX")""",
     NOW_MS),
    ("""time_to_epoch(parse_time("yyyy-MM-dd HH:mm:ss.SSS VV", timestamp(),
                                 'Europe/Paris'), "yyyy-MM-dd HH:mm:ss.SSS VV")""", NOW_MS),
    # what gives Undefined: unknown letters and zones, text that does not match,
    # impossible dates, arguments of the wrong kind
    ("parse_time('yyyy q', timestamp())", UNDEFINED),
    ("parse_time('yyyy', timestamp(), 'Mars/Olympus_Mons')", UNDEFINED),
    ("parse_time('yyyy', timestamp(), '../../etc/passwd')", UNDEFINED),
    ("parse_time('yyyy', 'soon')", UNDEFINED),
    ("parse_time(5, timestamp())", UNDEFINED),
    ("parse_time('yyyy', 1e300)", UNDEFINED),
    ("parse_time(\"'unclosed\", timestamp())", UNDEFINED),
    ("time_to_epoch('2017-02-30', 'yyyy-MM-dd')", UNDEFINED),
    ("time_to_epoch('yesterday', 'yyyy-MM-dd')", UNDEFINED),
    ("time_to_epoch(20170609, 'yyyyMMdd')", UNDEFINED),
])
def test_time_functions(expression: str, expected: Any) -> None:
    assert select(expression) == expected


def test_a_pattern_is_split_into_fields_and_literals() -> None:
    assert tokens("yyyy-MM 'at' HH''") == (("y", 4), "-", ("M", 2), " ", "at", " ",
                                           ("H", 2), "'")
    assert tokens("yyyy b") is None


ZONES = ["UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Kathmandu", "+01:00",
         "Australia/Lord_Howe"]


@settings(max_examples=300, deadline=None)
@given(millis=st.integers(min_value=0, max_value=4_000_000_000_000),  # (offsets of whole minutes)
       zone=st.sampled_from(ZONES),
       pattern=st.sampled_from(["yyyy-MM-dd HH:mm:ss.SSS VV", "dd MMMM yyyy hh:mm:ss.SSS a ZZ",
                                "yyyyMMdd'T'HHmmss.SSSxx", "EEE, d MMM yyyy HH:mm:ss.SSS XXX",
                                "yyyy DDD HH:mm:ss.SSS zzzz"]))
def test_what_is_printed_reads_back_to_the_same_moment(millis: int, zone: str,
                                                       pattern: str) -> None:
    text = format_millis(pattern, millis, zone)
    assert text is not None
    if pattern.endswith(("VV", "zzzz")):
        # A zone's name alone cannot tell the two moments of a repeated hour apart (at
        # the end of summer time): like java.time, the earlier one is read back.
        where = zone_named(zone)
        assert where is not None
        local = datetime.fromtimestamp(millis / 1000, UTC).astimezone(where)
        assume(local.replace(fold=1 - local.fold).utcoffset() == local.utcoffset())
    assert parse_to_millis(text, pattern) == millis, text


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40), pattern=st.text(max_size=20))
def test_any_text_and_pattern_give_a_value_or_none(text: str, pattern: str) -> None:
    result = parse_to_millis(text, pattern)
    assert result is None or isinstance(result, int)
    printed = format_millis(pattern, 0)
    assert printed is None or isinstance(printed, str)



def test_a_hostile_text_cannot_make_the_parser_backtrack() -> None:
    # Sixteen adjacent fields that could each take any part of the letters: a parser that
    # tried every split would not finish (pytest's timeout ends the test); fields that
    # never give back what they read fail at once.
    assert parse_to_millis("a" * 250 + "!", "zVzVzVzVzVzVzVzV") is None
    assert parse_to_millis("1" * 300, "yyyyMMdd") is None
