"""Import the maintenance scripts under ``zoo/`` (not a package) by file path, for testing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def load_zoo_script(name: str) -> ModuleType:
    """The module ``zoo/<name>.py``, executed fresh."""
    spec = importlib.util.spec_from_file_location(name, ZOO / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
