"""Date and time patterns: AWS IoT SQL's ``parse_time`` and ``time_to_epoch``.

Theory of operation
-------------------
AWS documents ``parse_time(pattern, millis[, zone])`` with Joda-Time's patterns and
``time_to_epoch(text, pattern)`` with java.time's; both spell a pattern the same way for
everything rules use: a run of one letter is a field (its length picks the width or the
form: ``M`` 7, ``MM`` 07, ``MMM`` Jul, ``MMMM`` July), text in single quotes is literal
(``''`` is a quote), and any other character is itself. :func:`tokens` splits a pattern
once into literals and ``(letter, count)`` fields.

:func:`format_millis` prints a moment with those fields in a zone (IANA names through
:mod:`zoneinfo`, ``UTC``, or a fixed offset such as ``+01:00`` or ``UTC+01:00``).
:func:`parse_to_millis` turns the pattern into one regular expression with a group per
field, reads the fields back and builds the moment; a text without a zone is UTC, as AWS
documents. Either gives ``None`` for what it cannot do (an unknown letter or zone, a text
that does not match): the SQL functions turn that into Undefined.

Letters: ``G`` era, ``y u Y`` year, ``M`` month, ``d`` day of month, ``D`` day of year,
``E`` day name, ``a`` AM/PM, ``H`` hour 0-23, ``k`` 1-24, ``h`` 1-12, ``K`` 0-11, ``m``
minute, ``s`` second, ``S`` fraction of a second, ``z`` zone name (``zzzz``: its id),
``Z`` offset (``+0100``; ``ZZ`` ``+01:00``; ``ZZZ`` the zone id), ``X x`` offsets (``X``
prints ``Z`` for UTC), ``VV`` zone id, ``O`` ``GMT+1``.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Token = str | tuple[str, int]
"""A literal, or a field: its letter and how many times it is repeated."""

_LETTERS = frozenset("GyuYMdDEaHkhKmsSzZXxVO")
_MONTHS = tuple(calendar.month_name)[1:]
_DAYS = tuple(calendar.day_name)
_OFFSET = re.compile(r"(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?")


@functools.lru_cache(maxsize=256)
def tokens(pattern: str) -> tuple[Token, ...] | None:
    """``pattern`` split into literals and fields; None for an unknown letter or an
    unclosed quote."""
    out: list[Token] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            end = index + 1
            text = []
            while True:
                if end >= len(pattern):
                    return None
                if pattern[end] == "'":
                    if end + 1 < len(pattern) and pattern[end + 1] == "'":
                        text.append("'")
                        end += 2
                        continue
                    break
                text.append(pattern[end])
                end += 1
            out.append("".join(text) if end > index + 1 else "'")
            index = end + 1
        elif char.isascii() and char.isalpha():
            if char not in _LETTERS:
                return None
            end = index
            while end < len(pattern) and pattern[end] == char:
                end += 1
            out.append((char, end - index))
            index = end
        else:
            out.append(char)
            index += 1
    return tuple(out)


def zone_named(name: str) -> tzinfo | None:
    """An IANA zone, ``UTC``/``GMT``/``Z``, or a fixed offset (``+01:00``, ``UTC+1``)."""
    if name in ("UTC", "GMT", "Z", "UT", "Etc/UTC"):
        return UTC
    match = _OFFSET.fullmatch(name)
    if match is not None:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=18):
            return None
        return timezone(-delta if sign == "-" else delta)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _zone_id(moment: datetime) -> str:
    zone = moment.tzinfo
    if isinstance(zone, ZoneInfo):
        return zone.key
    if zone is UTC:
        return "UTC"
    return _offset(moment, colon=True, zulu=False)


def _offset(moment: datetime, *, colon: bool, zulu: bool) -> str:
    delta = moment.utcoffset() or timedelta(0)
    if zulu and not delta:
        return "Z"
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}{':' if colon else ''}{minutes % 60:02d}"


def _number(value: int, count: int) -> str:
    return str(value).zfill(count)


def _field(moment: datetime, letter: str, count: int) -> str | None:
    if letter == "G":
        return "AD" if moment.year > 0 else "BC"
    if letter in "yuY":
        return f"{moment.year % 100:02d}" if count == 2 else _number(moment.year, count)
    if letter == "M":
        if count >= 4:
            return _MONTHS[moment.month - 1]
        if count == 3:
            return _MONTHS[moment.month - 1][:3]
        return _number(moment.month, count)
    if letter == "d":
        return _number(moment.day, count)
    if letter == "D":
        return _number(moment.timetuple().tm_yday, count)
    if letter == "E":
        name = _DAYS[moment.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    hour = moment.hour
    numbers = {"H": hour, "k": hour or 24, "h": hour % 12 or 12, "K": hour % 12,
               "m": moment.minute, "s": moment.second}
    if letter in numbers:
        return _number(numbers[letter], count)
    if letter == "S":
        return f"{moment.microsecond:06d}"[:count].ljust(count, "0")
    if letter == "z":
        return _zone_id(moment) if count >= 4 else (moment.tzname() or _zone_id(moment))
    if letter == "Z":
        return _zone_id(moment) if count >= 3 else _offset(moment, colon=count == 2, zulu=False)
    if letter in "Xx":
        text = _offset(moment, colon=count >= 3, zulu=letter == "X")
        return text[:3] if count == 1 and text.endswith("00") else text
    if letter == "V":
        return _zone_id(moment)
    if letter == "O":
        delta = moment.utcoffset() or timedelta(0)
        if not delta:
            return "GMT"
        text = _offset(moment, colon=True, zulu=False)
        hours = str(int(text[1:3]))
        return f"GMT{text[0]}{hours}" + ("" if text.endswith(":00") else text[3:])
    return None


def format_millis(pattern: str, millis: int, zone: str = "UTC") -> str | None:
    """``millis`` after the epoch, printed with ``pattern`` in ``zone``; None when the
    pattern or the zone is not one this module knows, or the moment is out of range."""
    parts = tokens(pattern)
    where = zone_named(zone)
    if parts is None or where is None:
        return None
    try:
        moment = datetime.fromtimestamp(millis / 1000, UTC).astimezone(where)
    except (OverflowError, OSError, ValueError):
        return None
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        text = _field(moment, *part)
        if text is None:
            return None
        out.append(text)
    return "".join(out)


_NAMES = "|".join(sorted({*_MONTHS, *(m[:3] for m in _MONTHS)}, key=len, reverse=True))
_DAY_NAMES = "|".join(sorted({*_DAYS, *(d[:3] for d in _DAYS)}, key=len, reverse=True))
_ZONE_TEXT = r"[A-Za-z][A-Za-z0-9_/+\-:]*|[+-]\d{2}:?\d{2}"
_OFFSET_TEXT = r"Z|[+-]\d{2}:?\d{2}|[+-]\d{2}"
MAX_TEXT = 256
"""Longer texts are not dates: time_to_epoch gives Undefined without reading them."""


def _field_regex(letter: str, count: int) -> str | None:
    """What one field may read. A repeated digit field is exactly that wide (``yyyyMMdd``
    reads 20170609); a single letter takes one or two digits (nine for a year)."""
    if letter == "G":
        return "AD|BC"
    if letter in "yuY":
        return r"[+-]?\d{1,9}" if count == 1 else rf"\d{{{count}}}"
    if letter == "M" and count >= 3:
        return _NAMES
    if letter in "MdHkhKms":
        return r"\d{1,2}" if count == 1 else rf"\d{{{count}}}"
    if letter == "D":
        return rf"\d{{{count}}}" if count >= 3 else r"\d{1,3}"
    if letter == "E":
        return _DAY_NAMES
    if letter == "a":
        return "AM|PM|am|pm"
    if letter == "S":
        return rf"\d{{{count}}}"
    if letter in "zVO" or letter == "Z" and count >= 3:
        return _ZONE_TEXT
    if letter in "ZXx":
        return _OFFSET_TEXT
    return None


@functools.lru_cache(maxsize=256)
def _parser(pattern: str) -> tuple[re.Pattern[str], tuple[tuple[str, int], ...]] | None:
    parts = tokens(pattern)
    if parts is None:
        return None
    regex: list[str] = []
    fields: list[tuple[str, int]] = []
    for part in parts:
        if isinstance(part, str):
            regex.append(re.escape(part))
            continue
        piece = _field_regex(*part)
        if piece is None:
            return None
        # Atomic: a field never gives back what it read, as java.time's parser does not;
        # so the time to match is linear in the text, whatever the pattern.
        regex.append(f"((?>{piece}))")
        fields.append(part)
    return re.compile("".join(regex), re.IGNORECASE), tuple(fields)


def parse_to_millis(text: str, pattern: str) -> int | None:
    """``text`` read with ``pattern``, as milliseconds after the epoch (UTC when the text
    names no zone); None when it does not match or names an impossible date."""
    parser = _parser(pattern)
    if parser is None:
        return None
    regex, fields = parser
    if len(text) > MAX_TEXT:
        return None
    match = regex.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, micros = 1970, 1, 1, 0, 0, 0, 0
    day_of_year: int | None = None
    afternoon: bool | None = None
    twelve = False
    zone: tzinfo = UTC
    for (letter, count), value in zip(fields, match.groups(), strict=True):
        if letter in "yuY":
            year = int(value) + (2000 if count == 2 else 0)
        elif letter == "M":
            month = (int(value) if value.isdigit() else
                     [m[:3].lower() for m in _MONTHS].index(value[:3].lower()) + 1)
        elif letter == "d":
            day = int(value)
        elif letter == "D":
            day_of_year = int(value)
        elif letter in "Hk":
            hour = int(value) % 24
        elif letter in "hK":
            hour, twelve = int(value) % 12, True
        elif letter == "m":
            minute = int(value)
        elif letter == "s":
            second = int(value)
        elif letter == "S":
            micros = int(value[:6].ljust(6, "0"))
        elif letter == "a":
            afternoon = value.upper() == "PM"
        elif letter in "zZXxVO":
            found = zone_named(value)
            if found is None:
                return None
            zone = found
    if twelve and afternoon:
        hour += 12
    try:
        if day_of_year is not None:
            moment = datetime(year, 1, 1, hour, minute, second, micros, tzinfo=zone) + \
                timedelta(days=day_of_year - 1)
        else:
            moment = datetime(year, month, day, hour, minute, second, micros, tzinfo=zone)
    except (ValueError, OverflowError):
        return None
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
