"""Bastion's IoT logging options as the audit sees and changes them.

The API keeps AWS's v1/v2 logging options in the ``settings`` table under
``api.logging_options`` (``{"v1": {...} | null, "v2": {...} | null, "levels": [...]}``)
and applies them to the ``bastion`` logger. The audit reads the same record to decide
LOGGING_DISABLED_CHECK and, for the ENABLE_IOT_LOGGING mitigation, writes v2 options
through a :class:`LoggingControl` — the running API's own options object when there is
one (so its in-memory state and the logger change at once), else the stored record.

The effective state follows the API's precedence: v2 when set (``disableAllLogs``, then
the ``DEFAULT`` log target's level, then ``defaultLogLevel``), else v1's ``logLevel``,
else Bastion's configured log level. Logging is *disabled* when that comes out as
``DISABLED`` (or the configured level is above ERROR, i.e. errors are not logged).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from bastion.clock import Clock, SystemClock
from bastion.store import Store

SETTINGS_KEY: Final = "api.logging_options"
_LOGGING_LEVELS: Final = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class LoggingState:
    """The options in force: ``v1``/``v2`` as stored (``None`` when never set), the log
    target levels, and the level Bastion logs at when neither is set."""

    v1: Mapping[str, Any] | None
    v2: Mapping[str, Any] | None
    levels: tuple[Mapping[str, Any], ...] = ()
    fallback_level: str = "INFO"

    @property
    def effective_level(self) -> str:
        if self.v2 is not None:
            if self.v2.get("disableAllLogs"):
                return "DISABLED"
            for entry in self.levels:
                if entry.get("targetType") == "DEFAULT" and entry.get("logLevel"):
                    return str(entry["logLevel"])
            return str(self.v2.get("defaultLogLevel") or "ERROR")
        if self.v1 is not None:
            return str(self.v1.get("logLevel") or "ERROR")
        return self.fallback_level.upper()

    @property
    def disabled(self) -> bool:
        return self.effective_level not in _LOGGING_LEVELS

    @property
    def source(self) -> str:
        """Which options decided: ``v2``, ``v1`` or ``config``."""
        return "v2" if self.v2 is not None else "v1" if self.v1 is not None else "config"


class LoggingControl(Protocol):
    """Read the logging options; turn logging on (ENABLE_IOT_LOGGING)."""

    def state(self) -> LoggingState: ...

    def enable(self, role_arn: str, level: str) -> None:
        """SetV2LoggingOptions with ``defaultLogLevel=level``, ``disableAllLogs=false``;
        a ``DEFAULT`` log target level is set to ``level`` as well."""
        ...


class StoredLoggingOptions:
    """:class:`LoggingControl` over the stored record.

    :param changed: called after a write (the app reloads the API's options with it).
    :param fallback_level: Bastion's configured log level (``[log] level``).
    :param clock: dates the stored record.
    """

    __slots__ = ("_changed", "_clock", "_fallback", "_store")

    def __init__(self, store: Store, *, fallback_level: str = "INFO",
                 changed: Callable[[], None] | None = None,
                 clock: Clock | None = None) -> None:
        self._store = store
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._fallback = fallback_level
        self._changed = changed

    def _read(self) -> dict[str, Any]:
        with self._store.transaction(readonly=True) as uow:
            text = uow.settings.get(SETTINGS_KEY)
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def state(self) -> LoggingState:
        data = self._read()
        v1, v2 = data.get("v1"), data.get("v2")
        levels = tuple(e for e in data.get("levels") or [] if isinstance(e, dict))
        return LoggingState(v1 if isinstance(v1, dict) else None,
                            v2 if isinstance(v2, dict) else None, levels, self._fallback)

    def enable(self, role_arn: str, level: str) -> None:
        with self._store.transaction() as uow:
            text = uow.settings.get(SETTINGS_KEY)
            try:
                data = json.loads(text) if text else {}
            except ValueError:
                data = {}
            if not isinstance(data, dict):
                data = {}
            v2 = dict(data.get("v2") or {})
            v2.update(roleArn=role_arn, defaultLogLevel=level, disableAllLogs=False)
            levels = [dict(e, logLevel=level) if e.get("targetType") == "DEFAULT" else e
                      for e in data.get("levels") or [] if isinstance(e, dict)]
            data = {"v1": data.get("v1"), "v2": v2, "levels": levels}
            uow.settings.put(SETTINGS_KEY, json.dumps(data, separators=(",", ":")),
                             self._clock.now())
        if self._changed is not None:
            self._changed()
