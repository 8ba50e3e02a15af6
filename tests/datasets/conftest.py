"""Fixtures of the dataset tests: the COMP6 S66x8 file in ../shared/data, small geometries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

from ase_mlpot.datasets.store import GeometryEntry

#: ../shared/data beside the checkout (CI has it there); read in place, never copied.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COMP6_S66X8 = SHARED_DATA / "comp6-s66x8" / "s66x8_wb97x6-31gd.h5"


@pytest.fixture(scope="session")
def comp6_path() -> Path:
    """Path of the COMP6 S66x8 HDF5 file in ../shared/data (fails if it is absent)."""
    if not COMP6_S66X8.exists():
        pytest.fail(f"reference data not found at {COMP6_S66X8} (expected beside the checkout)")
    return COMP6_S66X8


def _distorted_entries(n: int, *, seed: int = 0, scale: float = 0.03) -> list[GeometryEntry]:
    """``n`` randomly distorted water and ammonia geometries (positions rounded to 1e-6 Å)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        name = ("H2O", "NH3")[i % 2]
        atoms = molecule(name)
        positions = atoms.positions + rng.normal(0.0, scale, atoms.positions.shape)  # (n_atoms, 3)
        out.append(GeometryEntry(
            molecule=name, numbers=atoms.numbers.astype(np.int64),
            positions=np.round(positions, 6), smiles={"H2O": "O", "NH3": "N"}[name],
            source={"index": i},
        ))
    return out


@pytest.fixture(scope="session")
def make_entries() -> Callable[..., list[GeometryEntry]]:
    """Factory ``make_entries(n, seed=0, scale=0.03)`` of distorted water/ammonia geometries."""
    return _distorted_entries
