"""Architectures by registry name, written out by hand (no import-time registration)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from ase_mlpot.models.ani import ANIConfig, ANIEnsemble
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.so3krates import So3krates, So3kratesConfig

__all__ = ["ARCHITECTURES", "CONFIGS", "get_architecture"]

#: Model class of each architecture name.
ARCHITECTURES: dict[str, type[PotentialModel]] = {"ani": ANIEnsemble, "so3krates": So3krates}
#: Config class of each architecture name.
CONFIGS: dict[str, Any] = {"ani": ANIConfig, "so3krates": So3kratesConfig}


def get_architecture(name: str) -> tuple[type[PotentialModel], Any]:
    """Model and config class of architecture ``name``.

    Third-party architectures may come from the entry-point group ``ase_mlpot.architectures``
    (an object with ``model_class`` and ``config_class``), read only for a name not built in.

    Raises:
        KeyError: No such architecture.
    """
    if name in ARCHITECTURES:
        return ARCHITECTURES[name], CONFIGS[name]
    for entry in entry_points(group="ase_mlpot.architectures"):
        if entry.name == name:
            plugin = entry.load()
            return plugin.model_class, plugin.config_class
    raise KeyError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
