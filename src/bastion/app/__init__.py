"""The composition root: builds a running Bastion from a config and a data directory.

Nothing else wires services together. ``bastion serve`` calls :func:`run`; tests use
:class:`App` directly inside their own event loop.
"""

from __future__ import annotations

from ._app import App, run
from ._listeners import WEBSOCKET_LISTENER
from ._model import BoundListener

__all__ = ["WEBSOCKET_LISTENER", "App", "BoundListener", "run"]
