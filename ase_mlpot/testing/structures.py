"""Small test structures (H, C, N, O only), deterministic."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import molecule

__all__ = ["aspirin", "dimer", "isolated_atom", "organic_molecule", "periodic_water_box", "water"]


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


#: Aspirin (C9H8O4): a ring with carboxylic acid and acetoxy groups from standard bond lengths
#: and angles, lightly distorted (Å).
_ASPIRIN = [
    ("C", (1.3969, 0.0164, 0.0066)), ("C", (0.6689, 1.2219, 0.0089)),
    ("C", (-0.7057, 1.2154, 0.0073)), ("C", (-1.3841, 0.0006, 0.0109)),
    ("C", (-0.7097, -1.2070, -0.0096)), ("C", (0.7070, -1.2030, -0.0058)),
    ("H", (-1.2506, 2.1339, 0.0002)), ("H", (-2.4755, 0.0259, 0.0201)),
    ("H", (-1.2892, -2.1769, -0.0035)), ("H", (1.2266, -2.1348, 0.0043)),
    ("C", (2.9224, -0.0222, -0.0076)), ("O", (3.5309, 1.0695, 0.0133)),
    ("O", (3.5447, -1.2021, 0.0033)), ("H", (2.8834, -1.8914, -0.0137)),
    ("O", (1.3786, 2.3713, -0.0020)), ("C", (1.8817, 2.8396, 1.1724)),
    ("O", (2.5051, 3.8829, 1.2920)), ("C", (1.5417, 1.9030, 2.2874)),
    ("H", (1.0085, 1.0233, 1.9223)), ("H", (0.9652, 2.3775, 3.0480)),
    ("H", (2.4845, 1.5316, 2.7256)),
]


def aspirin() -> Atoms:
    """Aspirin, 21 atoms, no RDKit needed (the peer benchmarks' small molecule)."""
    return Atoms([s for s, _ in _ASPIRIN], positions=[p for _, p in _ASPIRIN])
