"""Fixtures with the published ANI weights (read in place from ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ase import Atoms

from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.models.ani import ANIEnsemble
from ase_mlpot.testing import periodic_water_box
from ase_mlpot.testing.benchmarks import Reaction, reaction_energy, read_hc7_isol6

#: Helpers imported by the test modules (``reaction_energy`` is re-exported from the package).
__all__ = ["float64_calculator", "reaction_energy", "water_box"]


@pytest.fixture(scope="session")
def benchmark_molecules(shared_data: Path) -> dict[str, Atoms]:
    """HC7/ISOL6 molecules by file stem."""
    return read_hc7_isol6(shared_data / "hc7-isol6")[0]


@pytest.fixture(scope="session")
def benchmark_reactions(shared_data: Path) -> list[Reaction]:
    """Reactions of the HC7/ISOL6 README table (dE = products − reactants, kcal/mol)."""
    reactions = read_hc7_isol6(shared_data / "hc7-isol6")[1]
    assert len(reactions) == 12
    return reactions


def water_box(n_side: int = 4) -> Atoms:
    """A 192-atom periodic water box (cell > 2 × 5.2 Å)."""
    return periodic_water_box(n_side=n_side, spacing=3.1, seed=1)


def float64_calculator(model: ANIEnsemble) -> MLPotCalculator:
    return MLPotCalculator(model, device="cpu", dtype=torch.float64)

