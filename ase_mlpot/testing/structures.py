"""Small test structures (H, C, N, O only), deterministic."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import molecule

__all__ = ["dimer", "isolated_atom", "organic_molecule", "periodic_water_box", "water"]


def water() -> Atoms:
    """A slightly distorted water molecule (no symmetry that could hide errors)."""
    return Atoms(
        "OHH",
        positions=[
            [-0.70219605, -0.05606026, 0.00994226],
            [-1.02219322, 0.84677578, -0.01148871],
            [0.25752106, 0.04212150, 0.00521900],
        ],
    )


def organic_molecule() -> Atoms:
    """Acetaldehyde (CH3CHO) with a small deterministic distortion."""
    atoms = molecule("CH3CHO")
    rng = np.random.default_rng(7)
    atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
    return atoms


def dimer(symbols: str = "CN", distance: float = 1.3) -> Atoms:
    """Two atoms along a skew axis."""
    axis = np.array([1.0, 0.4, -0.3]) / np.linalg.norm([1.0, 0.4, -0.3])
    return Atoms(symbols, positions=[np.zeros(3), distance * axis])


def isolated_atom(symbol: str = "C") -> Atoms:
    """A single atom far from everything."""
    return Atoms(symbol, positions=[[0.1, -0.2, 0.3]])


def periodic_water_box(n_side: int = 2, spacing: float = 3.1, seed: int = 3) -> Atoms:
    """``n_side**3`` randomly oriented waters on a slightly sheared cubic lattice, full PBC."""
    rng = np.random.default_rng(seed)
    template = water().positions - water().positions[0]
    positions, symbols = [], ""
    for index in np.ndindex(n_side, n_side, n_side):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        centre = spacing * np.array(index, dtype=float) + rng.normal(scale=0.1, size=3)
        positions.extend(centre + template @ q.T)
        symbols += "OHH"
    length = spacing * n_side
    cell = np.array([[length, 0.0, 0.0], [0.15, length, 0.0], [-0.1, 0.2, length]])
    atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
    atoms.wrap()
    return atoms
