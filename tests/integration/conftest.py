"""Fixtures with the published ANI weights (read in place from ../shared/data)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read

from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.models.ani import ANIEnsemble
from ase_mlpot.testing import periodic_water_box


@dataclass(frozen=True)
class Reaction:
    """A benchmark reaction: Σ coefficient · E(molecule), with its reference values."""

    id: str
    terms: tuple[tuple[float, str], ...]
    reference: float
    published: dict[str, float]


@pytest.fixture(scope="session")
def benchmark_molecules(shared_data: Path) -> dict[str, Atoms]:
    folder = shared_data / "hc7-isol6"
    return {path.stem: read(path) for path in sorted(folder.glob("*/*.xyz"))}


def _parse_terms(text: str) -> tuple[tuple[float, str], ...]:
    terms = []
    for sign, coefficient, name in re.findall(
        r"([+-]?)\s*(\d+\s+)?(\w+)", text.replace(" - ", " -")
    ):
        value = float(coefficient) if coefficient else 1.0
        terms.append((-value if sign == "-" else value, name))
    return tuple(terms)


@pytest.fixture(scope="session")
def benchmark_reactions(shared_data: Path) -> list[Reaction]:
    """Reactions of the HC7/ISOL6 README table (dE = products − reactants, kcal/mol)."""
    reactions = []
    for line in (shared_data / "hc7-isol6" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"(HC7|ISOL6)_\d+", cells[0]):
            terms = _parse_terms(cells[1])
            # Products come first in the table: "products - reactants".
            reactions.append(
                Reaction(
                    cells[0],
                    terms,
                    float(cells[2]),
                    {"ani-1ccx": float(cells[4]), "ani-1x": float(cells[5])},
                )
            )
    assert len(reactions) == 12
    return reactions


def water_box(n_side: int = 4) -> Atoms:
    """A 192-atom periodic water box (cell > 2 × 5.2 Å)."""
    return periodic_water_box(n_side=n_side, spacing=3.1, seed=1)


def float64_calculator(model: ANIEnsemble) -> MLPotCalculator:
    return MLPotCalculator(model, device="cpu", dtype=torch.float64)


def reaction_energy(energies: dict[str, float], reaction: Reaction) -> float:
    return float(np.sum([c * energies[name] for c, name in reaction.terms]))
