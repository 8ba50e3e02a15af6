"""ase_mlpot: pretrained machine-learned interatomic potentials for ASE and pyiron.

>>> from ase_mlpot import load
>>> atoms.calc = load("ccx-general")  # doctest: +SKIP

Public API: :func:`load`, :func:`list_models`, :func:`download`, :class:`MLPotCalculator`.
Submodules are imported lazily; importing the package touches neither network nor files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ase_mlpot._version import __version__

if TYPE_CHECKING:
    from ase_mlpot.api import load
    from ase_mlpot.calculator import MLPotCalculator
    from ase_mlpot.hub import download, list_models

__all__ = ["MLPotCalculator", "__version__", "download", "list_models", "load"]

_LAZY = {
    "load": "ase_mlpot.api",
    "MLPotCalculator": "ase_mlpot.calculator",
    "list_models": "ase_mlpot.hub",
    "download": "ase_mlpot.hub",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ase_mlpot' has no attribute {name!r}")
