"""AWS IoT logging options (v1 and v2), applied to Bastion's own log levels.

AWS sends IoT logs to CloudWatch; Bastion has its own log. The options are kept in the
``settings`` table (so they survive a restart) and applied to the ``bastion`` logger:

* v2, when set, wins: ``disableAllLogs`` silences the logger; otherwise the level of the
  ``DEFAULT`` log target (SetV2LoggingLevel) or else ``defaultLogLevel``;
* else v1's ``logLevel``;
* else the level the logger had before any option was set.

``DEBUG``/``INFO``/``WARN``/``ERROR`` map to Python's levels, ``DISABLED`` silences. Log
targets other than ``DEFAULT`` (thing groups, client ids, source IPs, principals) do not
filter Bastion's own log: they choose the level of each device's AWS IoT log entries
(:mod:`bastion.iotlogs`, which reads these options and hears of every change through
:meth:`LoggingOptions.on_change`). The ``roleArn`` is kept and returned; Bastion does not
assume roles.

One :class:`LoggingOptions` per running Bastion serves both its users: the REST API
(Get/Set logging options) and Device Defender audit, which reads the effective state
(LOGGING_DISABLED_CHECK, :meth:`LoggingOptions.state`) and turns logging on for the
ENABLE_IOT_LOGGING mitigation (:meth:`LoggingOptions.enable`). A change made by either is
in force at once, for both.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from bastion.clock import Clock, SystemClock
from bastion.errors import ServiceError
from bastion.store import Store

SETTINGS_KEY: Final = "api.logging_options"
MAX_LOG_TARGETS: Final = 1000
_LEVELS: Final = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "DISABLED": logging.CRITICAL + 10,
}


_LOGGING_LEVELS: Final = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR")


class LoggingOptionsError(ServiceError):
    """A request on the logging options that is refused: the caller's fault."""

    aws_error_type = "InvalidRequestException"
    http_status = 400


class NotConfiguredError(LoggingOptionsError):
    aws_error_type = "NotConfiguredException"
    http_status = 404


class LogTargetLimitError(LoggingOptionsError):
    aws_error_type = "LimitExceededException"
    http_status = 410


def not_configured() -> NotConfiguredError:
    return NotConfiguredError("V2 logging is not configured; call SetV2LoggingOptions first")


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




class LoggingOptions:
    """The current options, persisted in the store and applied to ``logger``.

    Thread-safe; every method except :meth:`apply` may touch the database.

    :param clock: dates the stored record.
    """

    __slots__ = ("_clock", "_fallback", "_listeners", "_lock", "_logger", "_original_level",
                 "_state", "_store")

    def __init__(self, store: Store, logger: logging.Logger | None = None, *,
                 fallback_level: str = "INFO", clock: Clock | None = None) -> None:
        self._store = store
        self._fallback = fallback_level
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._logger = logger or logging.getLogger("bastion")
        self._original_level = self._logger.level
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"v1": None, "v2": None, "levels": []}
        self._listeners: tuple[Callable[[], None], ...] = ()

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (in the thread that made the change, under this object's
        lock: it must not block nor call back) after every change made through this object. Returns a
        function that stops it. Changes another process makes are seen by :meth:`state`
        only."""
        self._listeners = (*self._listeners, listener)

        def stop() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)
        return stop

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                logging.getLogger("bastion.logging_options").exception(
                    "a logging options listener failed")

    def load(self) -> None:
        """Read the stored options (if any) and apply them."""
        with self._store.transaction(readonly=True) as uow:
            text = uow.settings.get(SETTINGS_KEY)
        with self._lock:
            if text:
                try:
                    state = json.loads(text)
                except ValueError:
                    state = None
                if isinstance(state, dict):
                    self._state = {"v1": state.get("v1"), "v2": state.get("v2"),
                                   "levels": list(state.get("levels") or [])}
            self._apply()

    # -- v1 ---------------------------------------------------------------------------

    def get_v1(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state["v1"] or {})

    def set_v1(self, role_arn: str, log_level: str | None) -> None:
        with self._lock:
            self._state["v1"] = {"roleArn": role_arn, "logLevel": log_level or "ERROR"}
            self._save()

    # -- v2 ---------------------------------------------------------------------------

    def get_v2(self) -> dict[str, Any]:
        """:raises NotConfiguredError: v2 was never set."""
        with self._lock:
            if self._state["v2"] is None:
                raise not_configured()
            return dict(self._state["v2"])

    def set_v2(self, options: dict[str, Any]) -> None:
        with self._lock:
            current = dict(self._state["v2"] or {})
            current.update({key: value for key, value in options.items() if value is not None})
            current.setdefault("defaultLogLevel", "ERROR")
            current.setdefault("disableAllLogs", False)
            self._state["v2"] = current
            self._save()

    def set_level(self, target_type: str, target_name: str | None, log_level: str) -> None:
        """:raises NotConfiguredError: v2 not set.
        :raises LogTargetLimitError: too many log targets."""
        with self._lock:
            if self._state["v2"] is None:
                raise not_configured()
            levels = [entry for entry in self._state["levels"]
                      if (entry["targetType"], entry.get("targetName")) != (target_type,
                                                                             target_name)]
            if len(levels) >= MAX_LOG_TARGETS:
                raise LogTargetLimitError(
                    f"At most {MAX_LOG_TARGETS} log targets can be configured")
            entry: dict[str, Any] = {"targetType": target_type, "logLevel": log_level}
            if target_name is not None:
                entry["targetName"] = target_name
            levels.append(entry)
            levels.sort(key=lambda item: (item["targetType"], item.get("targetName") or ""))
            self._state["levels"] = levels
            self._save()

    def list_levels(self, target_type: str | None) -> list[dict[str, Any]]:
        """:raises NotConfiguredError: v2 was never set."""
        with self._lock:
            if self._state["v2"] is None:
                raise not_configured()
            return [dict(entry) for entry in self._state["levels"]
                    if target_type is None or entry["targetType"] == target_type]

    def delete_level(self, target_type: str, target_name: str) -> None:
        with self._lock:
            levels = self._state["levels"]
            kept = [entry for entry in levels
                    if (entry["targetType"], entry.get("targetName") or "")
                    != (target_type, target_name)]
            if len(kept) != len(levels):
                self._state["levels"] = kept
                self._save()

    # -- Device Defender audit ---------------------------------------------------------

    def state(self) -> LoggingState:
        """The options in force (as stored: another node may have changed them)."""
        self.load()
        with self._lock:
            v1, v2 = self._state["v1"], self._state["v2"]
            levels = tuple(e for e in self._state["levels"] if isinstance(e, dict))
            return LoggingState(v1 if isinstance(v1, dict) else None,
                                v2 if isinstance(v2, dict) else None, levels, self._fallback)

    def enable(self, role_arn: str, level: str) -> None:
        """ENABLE_IOT_LOGGING: v2 options with ``defaultLogLevel=level`` and
        ``disableAllLogs=false``; a ``DEFAULT`` log target's level becomes ``level`` too."""
        self.load()
        with self._lock:
            v2 = dict(self._state["v2"] or {})
            v2.update(roleArn=role_arn, defaultLogLevel=level, disableAllLogs=False)
            self._state["v2"] = v2
            self._state["levels"] = [
                dict(e, logLevel=level) if e.get("targetType") == "DEFAULT" else e
                for e in self._state["levels"] if isinstance(e, dict)]
            self._save()

    # -- all ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every option (emulator reset) and restore the original level."""
        with self._lock:
            self._state = {"v1": None, "v2": None, "levels": []}
            self._save()

    @property
    def effective_level(self) -> int:
        """The level the ``bastion`` logger has now."""
        return self._logger.level

    def _save(self) -> None:
        text = json.dumps(self._state, separators=(",", ":"))
        with self._store.transaction() as uow:
            uow.settings.put(SETTINGS_KEY, text, self._clock.now())
        self._apply()
        self._changed()

    def _apply(self) -> None:
        name = self._wanted_level()
        self._logger.setLevel(self._original_level if name is None else _LEVELS[name])

    def _wanted_level(self) -> str | None:
        v2 = self._state["v2"]
        if v2 is not None:
            if v2.get("disableAllLogs"):
                return "DISABLED"
            for entry in self._state["levels"]:
                if entry["targetType"] == "DEFAULT" and entry["logLevel"] in _LEVELS:
                    return str(entry["logLevel"])
            level = v2.get("defaultLogLevel")
            return str(level) if level in _LEVELS else None
        v1 = self._state["v1"]
        if v1 is not None and v1.get("logLevel") in _LEVELS:
            return str(v1["logLevel"])
        return None
