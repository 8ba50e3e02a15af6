"""Full neighbour lists with integer periodic cell shifts.

The convention of the whole package: edge e connects centre (receiver) ``i = edge_index[0, e]``
with neighbour (sender) ``j = edge_index[1, e]`` and

    r_ij = positions[j] - positions[i] + cell_shift[e] @ cell,   |r_ij| < cutoff,

listing both directions and every periodic image (a small cell gives several images of one atom,
and an atom may neighbour its own image). Shifts are integers so that the geometry is rebuilt
inside autograd from positions and cell (forces and stress by differentiation).

Backends:

* ``"auto"`` (default): ``"all_pairs"`` for molecules up to 150 atoms (a vectorised O(N²)
  search costs less than any cell list's set-up), ``"vesin"`` otherwise.
* ``"vesin"``: a C++ cell list, O(N), with a tiny wheel and only numpy as dependency. It handles
  cells smaller than the cutoff and is fast on 3,000-atom boxes, which is why it is used over
  matscipy (scipy dependency, slower set-up on small systems) and over a cell list of our own.
* ``"all_pairs"``: vectorised numpy O(N²), non-periodic only.
* ``"ase"``: :func:`ase.neighborlist.primitive_neighbor_list`, pure numpy binning, O(N), always
  available; used as a cross-check in the tests.
* ``"matscipy"``: :func:`matscipy.neighbours.neighbour_list`, when matscipy is installed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["NEIGHBOR_BACKENDS", "neighbor_list"]

_NeighborFunction = Callable[
    [np.ndarray, np.ndarray, bool, float], tuple[np.ndarray, np.ndarray, np.ndarray]
]


def _vesin(
    positions: np.ndarray, cell: np.ndarray, periodic: bool, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from vesin import NeighborList

    calculator = NeighborList(cutoff=cutoff, full_list=True)
    i, j, shifts = calculator.compute(
        points=positions,
        box=cell if periodic else np.zeros((3, 3)),
        periodic=periodic,
        quantities="ijS",
    )
    return i, j, shifts


def _all_pairs(
    positions: np.ndarray, cell: np.ndarray, periodic: bool, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if periodic:
        raise ValueError("the all-pairs backend handles non-periodic structures only")
    vectors = positions[None, :, :] - positions[:, None, :]  # (n_atoms, n_atoms, 3)
    squared = np.einsum("ijk,ijk->ij", vectors, vectors)  # (n_atoms, n_atoms)
    np.fill_diagonal(squared, np.inf)
    i, j = np.nonzero(squared < cutoff * cutoff)
    return i, j, np.zeros((len(i), 3), dtype=np.int64)


def _auto(
    positions: np.ndarray, cell: np.ndarray, periodic: bool, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not periodic and len(positions) <= _ALL_PAIRS_MAX_ATOMS:
        return _all_pairs(positions, cell, periodic, cutoff)
    return _vesin(positions, cell, periodic, cutoff)


def _enclosing_box(positions: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Shifted positions and a box holding them with a cutoff of margin (for binning backends)."""
    lowest = positions.min(axis=0)  # (3,)
    span = positions.max(axis=0) - lowest  # (3,)
    return positions - lowest + cutoff, np.diag(span + 2.0 * cutoff + 1.0)


def _ase(
    positions: np.ndarray, cell: np.ndarray, periodic: bool, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ase.neighborlist import primitive_neighbor_list

    if not periodic:
        positions, cell = _enclosing_box(positions, cutoff)
    i, j, shifts = primitive_neighbor_list(
        "ijS", (periodic,) * 3, cell, positions, cutoff, self_interaction=False
    )
    return i, j, shifts


def _matscipy(
    positions: np.ndarray, cell: np.ndarray, periodic: bool, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from matscipy.neighbours import neighbour_list

    if not periodic:
        positions, cell = _enclosing_box(positions, cutoff)
    i, j, shifts = neighbour_list(
        "ijS",
        positions=positions,
        cell=cell,
        pbc=np.array([periodic] * 3),
        cutoff=cutoff,
        numbers=np.ones(len(positions), dtype=np.int32),
    )
    return i, j, shifts


#: Below this many atoms a molecule's O(N²) all-pairs search beats a cell list's set-up cost.
_ALL_PAIRS_MAX_ATOMS = 150

#: Neighbour-list backends by name.
NEIGHBOR_BACKENDS: dict[str, _NeighborFunction] = {
    "auto": _auto,
    "vesin": _vesin,
    "all_pairs": _all_pairs,
    "ase": _ase,
    "matscipy": _matscipy,
}


def neighbor_list(
    positions: np.ndarray,
    cell: np.ndarray,
    periodic: bool,
    cutoff: float,
    *,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Full neighbour list of one structure, sorted by centre and then neighbour.

    Args:
        positions: Cartesian positions, shape ``(n_atoms, 3)``, Å.
        cell: Lattice vectors as rows, shape ``(3, 3)``, Å (ignored unless ``periodic``).
        periodic: Periodic in all three directions (mixed PBC is rejected before this call).
        cutoff: Pairs with ``|r_ij| < cutoff`` are listed, Å.
        backend: One of :data:`NEIGHBOR_BACKENDS`.

    Returns:
        ``edge_index`` of shape ``(2, n_edges)`` (int64; row 0 centre i, row 1 neighbour j) and
        ``cell_shift`` of shape ``(n_edges, 3)`` (int64).

    Raises:
        ValueError: For an unknown backend name.
    """
    try:
        function = NEIGHBOR_BACKENDS[backend]
    except KeyError:
        raise ValueError(
            f"unknown neighbour-list backend {backend!r}; choose one of {sorted(NEIGHBOR_BACKENDS)}"
        ) from None
    positions = np.ascontiguousarray(positions, dtype=np.float64)  # (n_atoms, 3)
    cell = np.ascontiguousarray(cell, dtype=np.float64)  # (3, 3)
    if len(positions) < 2 and not periodic:
        return np.zeros((2, 0), dtype=np.int64), np.zeros((0, 3), dtype=np.int64)
    i, j, shifts = function(positions, cell, periodic, float(cutoff))
    i = np.asarray(i, dtype=np.int64)  # (n_edges,)
    j = np.asarray(j, dtype=np.int64)  # (n_edges,)
    shifts = np.asarray(shifts, dtype=np.int64).reshape(-1, 3)  # (n_edges, 3)
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))  # (n_edges,)
    return np.stack([i[order], j[order]]), shifts[order]
