"""Names of the entries of a batch (a plain ``dict[str, Tensor]``).

Every model, the output head and every adapter read and write batches through these keys.
Shapes use ``n_atoms`` (all atoms of all graphs), ``n_graphs``, ``n_edges`` and ``n_members``
(ensemble size).
"""

from typing import Final

__all__ = [
    "ATOMIC_ENERGIES",
    "ATOMIC_NUMBERS",
    "BATCH",
    "CELL",
    "CELL_SHIFT",
    "EDGE_INDEX",
    "EDGE_VECTORS",
    "ENERGY_STD",
    "FORCES",
    "FORCES_STD",
    "MEMBER_ENERGIES",
    "NUM_ATOMS",
    "PBC",
    "POSITIONS",
    "SPECIES",
    "STRESS",
    "TOTAL_CHARGE",
    "TOTAL_ENERGY",
]

POSITIONS: Final[str] = "positions"  # (n_atoms, 3) float | Å
ATOMIC_NUMBERS: Final[str] = "atomic_numbers"  # (n_atoms,) int64 | Z
SPECIES: Final[str] = "species"  # (n_atoms,) int64 | index into the model's element list
BATCH: Final[str] = "batch"  # (n_atoms,) int64 | graph index of each atom
NUM_ATOMS: Final[str] = "num_atoms"  # (n_graphs,) int64 | atoms per graph
CELL: Final[str] = "cell"  # (n_graphs, 3, 3) float | rows are lattice vectors, Å; zeros if open
PBC: Final[str] = "pbc"  # (n_graphs, 3) bool | periodic directions
EDGE_INDEX: Final[str] = "edge_index"  # (2, n_edges) int64 | [centre i; neighbour j]
CELL_SHIFT: Final[str] = "cell_shift"  # (n_edges, 3) int64 | lattice translation applied to j
EDGE_VECTORS: Final[str] = "edge_vectors"  # (n_edges, 3) float | r_j - r_i + shift @ cell, Å
TOTAL_CHARGE: Final[str] = "total_charge"  # (n_graphs,) float | e (optional)
ATOMIC_ENERGIES: Final[str] = "atomic_energies"  # (n_atoms,) or (n_members, n_atoms) | model units
MEMBER_ENERGIES: Final[str] = "member_energies"  # (n_members, n_graphs) float64 | model units
TOTAL_ENERGY: Final[str] = "total_energy"  # (n_graphs,) float64 | ensemble mean, model units
ENERGY_STD: Final[str] = "energy_std"  # (n_graphs,) float64 | unbiased std over members
FORCES: Final[str] = "forces"  # (n_atoms, 3) float | -dE/dr, model units
FORCES_STD: Final[str] = "forces_std"  # (n_atoms, 3) float | std of member forces
STRESS: Final[str] = "stress"  # (n_graphs, 3, 3) float | (1/V) dE/d(strain), model units
