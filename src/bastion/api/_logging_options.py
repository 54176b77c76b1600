"""AWS IoT logging options (v1 and v2), applied to Bastion's own log levels.

AWS sends IoT logs to CloudWatch; Bastion has its own log. The options are kept in the
``settings`` table (so they survive a restart) and applied to the ``bastion`` logger:

* v2, when set, wins: ``disableAllLogs`` silences the logger; otherwise the level of the
  ``DEFAULT`` log target (SetV2LoggingLevel) or else ``defaultLogLevel``;
* else v1's ``logLevel``;
* else the level the logger had before any option was set.

``DEBUG``/``INFO``/``WARN``/``ERROR`` map to Python's levels, ``DISABLED`` silences. Log
targets other than ``DEFAULT`` (thing groups, client ids, source IPs, principals) are
stored and listed but do not filter Bastion's log yet. The ``roleArn`` is kept and
returned; Bastion does not assume roles.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Final

from bastion.clock import Clock, SystemClock
from bastion.store import Store

from ._errors import ApiError

SETTINGS_KEY: Final = "api.logging_options"
MAX_LOG_TARGETS: Final = 1000
_LEVELS: Final = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "DISABLED": logging.CRITICAL + 10,
}


def not_configured() -> ApiError:
    return ApiError("NotConfiguredException", 404,
                    "V2 logging is not configured; call SetV2LoggingOptions first")


class LoggingOptions:
    """The current options, persisted in the store and applied to ``logger``.

    Thread-safe; every method except :meth:`apply` may touch the database.

    :param clock: dates the stored record.
    """

    __slots__ = ("_clock", "_lock", "_logger", "_original_level", "_state", "_store")

    def __init__(self, store: Store, logger: logging.Logger | None = None, *,
                 clock: Clock | None = None) -> None:
        self._store = store
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._logger = logger or logging.getLogger("bastion")
        self._original_level = self._logger.level
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"v1": None, "v2": None, "levels": []}

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
        """:raises ApiError: NotConfiguredException when v2 was never set."""
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
        """:raises ApiError: NotConfiguredException (v2 not set) or LimitExceededException."""
        with self._lock:
            if self._state["v2"] is None:
                raise not_configured()
            levels = [entry for entry in self._state["levels"]
                      if (entry["targetType"], entry.get("targetName")) != (target_type,
                                                                             target_name)]
            if len(levels) >= MAX_LOG_TARGETS:
                raise ApiError("LimitExceededException", 410,
                               f"At most {MAX_LOG_TARGETS} log targets can be configured")
            entry: dict[str, Any] = {"targetType": target_type, "logLevel": log_level}
            if target_name is not None:
                entry["targetName"] = target_name
            levels.append(entry)
            levels.sort(key=lambda item: (item["targetType"], item.get("targetName") or ""))
            self._state["levels"] = levels
            self._save()

    def list_levels(self, target_type: str | None) -> list[dict[str, Any]]:
        """:raises ApiError: NotConfiguredException when v2 was never set."""
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
