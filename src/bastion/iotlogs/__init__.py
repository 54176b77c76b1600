"""AWS IoT logs: the broker's log entries in AWS IoT's JSON format, at the levels set
with AWS IoT's logging options (v2: default, ``disableAllLogs``, per-target levels), to a
size-rotated JSON-lines file and optionally syslog. See ``docs/logging.md``.

:class:`IoTLogs` is the component; :meth:`IoTLogs.on_error` is where a consumer (the
threat detector) gets every ERROR entry as a dict.
"""

from __future__ import annotations

from ._entries import AUTHORIZATION_FAILURE, entry, timestamp
from ._levels import LEVELS, LevelTable, group_levels, level_table, parse_level
from ._service import ErrorListener, IoTLogs
from ._writer import EntryWriter

__all__ = [
    "AUTHORIZATION_FAILURE",
    "LEVELS",
    "EntryWriter",
    "ErrorListener",
    "IoTLogs",
    "LevelTable",
    "entry",
    "group_levels",
    "level_table",
    "parse_level",
    "timestamp",
]
