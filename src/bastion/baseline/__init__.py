"""The AWS IoT Security Baseline in one command: each control applied and checked on a
data directory (``bastion baseline apply|check``; ``docs/baseline.md``).

* :data:`CONTROLS` — the controls in order, each with ``apply`` and ``check``;
* :class:`Baseline` — what they work on (services, ``config.toml``, alert options);
* :class:`AlertOptions`, :class:`Verdict`, :class:`Control`.
"""

from __future__ import annotations

from ._controls import CONTROLS, AlertOptions, Baseline, Control, Verdict

__all__ = ["CONTROLS", "AlertOptions", "Baseline", "Control", "Verdict"]
