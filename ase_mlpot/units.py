"""Unit conversion factors, all taken from :mod:`ase.units` (one table for the package).

Models compute in their native units (ANI: Hartree and Å), recorded in their ``config.json``;
conversion to eV and Å happens once, in the calculator.
"""

from typing import Final

from ase import units as _ase_units

__all__ = [
    "ENERGY_UNITS_TO_EV",
    "EV_TO_KCAL_PER_MOL",
    "HARTREE_TO_EV",
    "HARTREE_TO_KCAL_PER_MOL",
    "KCAL_PER_MOL_TO_EV",
    "LENGTH_UNITS_TO_A",
]

HARTREE_TO_EV: Final[float] = float(_ase_units.Hartree)
KCAL_PER_MOL_TO_EV: Final[float] = float(_ase_units.kcal / _ase_units.mol)
EV_TO_KCAL_PER_MOL: Final[float] = 1.0 / KCAL_PER_MOL_TO_EV
HARTREE_TO_KCAL_PER_MOL: Final[float] = HARTREE_TO_EV / KCAL_PER_MOL_TO_EV

#: Energy unit names accepted in ``config.json`` and their value in eV.
ENERGY_UNITS_TO_EV: Final[dict[str, float]] = {
    "eV": 1.0,
    "Hartree": HARTREE_TO_EV,
    "kcal/mol": KCAL_PER_MOL_TO_EV,
    "meV": 1e-3,
}
#: Length unit names accepted in ``config.json`` and their value in Å.
LENGTH_UNITS_TO_A: Final[dict[str, float]] = {"Angstrom": 1.0, "Bohr": float(_ase_units.Bohr)}
