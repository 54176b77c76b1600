"""Run a real Bastion (listeners, TLS, broker) on its own event loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import uvloop

from bastion.app import App
from bastion.config import Config
from bastion.datadir import DataDir

T = TypeVar("T")


class RunningBastion:
    """``App`` on a uvloop in a daemon thread; ``port`` is the bound MQTT/TLS port."""

    def __init__(self, config: Config, datadir: DataDir, **options: Any) -> None:
        """``options`` go to :class:`App` (credentials, trail, clocks)."""
        self.config = config
        self.datadir = datadir
        self.loop = uvloop.new_event_loop()
        self.app = App(config, datadir, **options)
        self._thread = threading.Thread(target=self._run, name="bastion", daemon=True)
        self._ready: Future[None] = Future()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.app.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting test thread
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        self.loop.run_forever()
        self.loop.run_until_complete(self.app.stop())
        # What the app left running (a client library's tasks) is cancelled and awaited
        # here, as asyncio.run does, rather than destroyed pending with the loop.
        left = asyncio.all_tasks(self.loop)
        for task in left:
            task.cancel()
        if left:
            self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> RunningBastion:
        self._thread.start()
        self._ready.result(timeout=10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

    @property
    def port(self) -> int:
        return self.app.port("mqtts")

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the broker's loop and return its result."""
        future: Future[T] = Future()

        def runner() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(runner)
        return future.result(timeout)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
