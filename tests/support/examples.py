"""The repository's ``examples/`` as modules, so tests run their own code in-process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(file_name: str) -> ModuleType:
    """``examples/<file_name>`` as a module (``examples/`` on the path for the modules
    it shares with the other examples)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.append(str(EXAMPLES))
    name = f"{Path(file_name).stem}_example"
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / file_name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
