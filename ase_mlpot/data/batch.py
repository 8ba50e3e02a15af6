"""``ase.Atoms`` → validated batch (``dict[str, Tensor]``) and collation of batches.

Batches are built on the CPU in float64 and cast once, explicitly, to the model's dtype and device
(:func:`batch_to_device`). Integer tensors stay int64. See :mod:`ase_mlpot.keys` for the keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from ase_mlpot import keys
from ase_mlpot.data.neighborlist import neighbor_list
from ase_mlpot.errors import (
    InvalidStructureError,
    MixedPBCError,
    UnsupportedElementError,
    ZeroCellError,
)

__all__ = ["DEFAULT_MIN_DISTANCE", "atoms_to_batch", "batch_to_device", "collate"]

#: Pairs of atoms closer than this (Å) are rejected as overlapping.
DEFAULT_MIN_DISTANCE = 0.5
_MIN_CELL_VOLUME = 1e-6  # Å^3


def _symbols(numbers: Sequence[int]) -> str:
    return ", ".join(chemical_symbols[z] for z in numbers)


def _element_name(z: int) -> str:
    """Chemical symbol of ``z``, or ``Z=<z>`` for numbers without one (0, negative, > 118)."""
    return chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}"


def _validate(
    atoms: Atoms, elements: Sequence[int], model_name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    numbers = np.asarray(atoms.numbers, dtype=np.int64)  # (n_atoms,)
    positions = np.asarray(atoms.positions, dtype=np.float64)  # (n_atoms, 3)
    pbc = np.asarray(atoms.pbc, dtype=bool)  # (3,)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)  # (3, 3)
    if len(numbers) == 0:
        raise InvalidStructureError("the structure has no atoms")
    supported = set(int(z) for z in elements)
    unsupported = [(k, int(z)) for k, z in enumerate(numbers) if int(z) not in supported]
    if unsupported:
        index, z = unsupported[0]
        symbol = _element_name(z)
        others = sorted({_element_name(zz) for _, zz in unsupported} - {symbol})
        also = f" (also: {', '.join(others)})" if others else ""
        raise UnsupportedElementError(
            f"element {symbol} (atom {index}) is not supported by model {model_name!r}"
            f"{also};"
            f" supported elements: {_symbols(sorted(supported))}"
        )
    finite = np.isfinite(positions).all(axis=1)  # (n_atoms,)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise InvalidStructureError(
            f"positions of {int((~finite).sum())} atom(s) are NaN or infinite (first: atom {first},"
            f" {positions[first].tolist()})"
        )
    if pbc.any() and not pbc.all():
        raise MixedPBCError(
            f"mixed periodic boundary conditions pbc={pbc.tolist()} are not supported; use full"
            " PBC with enough vacuum in the non-periodic directions (or no PBC for a molecule)"
        )
    periodic = bool(pbc.all())
    if periodic:
        if not np.isfinite(cell).all():
            raise ZeroCellError(f"the structure is periodic but its cell has NaN or infinite "
                                f"entries (cell={cell.tolist()})")
        if abs(np.linalg.det(cell)) < _MIN_CELL_VOLUME:
            raise ZeroCellError(
                f"the structure is periodic but its cell has zero volume (cell={cell.tolist()});"
                " set a cell (atoms.cell = ...) or switch PBC off (atoms.pbc = False)"
            )
    else:
        cell = np.zeros((3, 3))
    return numbers, positions, cell, periodic


def _near_origin(positions: np.ndarray, cell: np.ndarray, periodic: bool) -> np.ndarray:
    """The structure translated near the origin: a molecule's centroid to the origin, a
    crystal's atoms wrapped into its cell (lattice translations).

    Energies, forces and stress are invariant under both, and the model's edge vectors, built
    from positions in the evaluation dtype, then keep float32 precision however far from the
    origin ``atoms.positions`` lie (at 3,600 Å float32 resolves only ~2e-4 Å).
    """
    if not periodic:
        return positions - positions.mean(axis=0)  # (n_atoms, 3)
    fractional = np.linalg.solve(cell.T, positions.T).T  # (n_atoms, 3)
    return positions - np.floor(fractional) @ cell  # (n_atoms, 3)


def atoms_to_batch(
    atoms: Atoms,
    *,
    elements: Sequence[int],
    cutoff: float,
    model_name: str = "model",
    neighbor_backend: str = "auto",
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> dict[str, torch.Tensor]:
    """Validate one structure and build its batch (one graph) on the CPU in float64.

    Args:
        atoms: The structure (positions in Å).
        elements: Atomic numbers the model supports, in the model's species order.
        cutoff: Neighbour-list cutoff, Å (the model's largest cutoff).
        model_name: Used in error messages.
        neighbor_backend: See :mod:`ase_mlpot.data.neighborlist`.
        min_distance: Pairs closer than this (Å) raise :class:`InvalidStructureError`.

    Returns:
        A batch with ``positions, atomic_numbers, species, batch, num_atoms, cell, pbc,
        edge_index, cell_shift``. ``positions`` are a translated copy of ``atoms.positions``: a
        molecule's centroid at the origin, a crystal's atoms wrapped into its cell (energies,
        forces and stress are unchanged; float32 keeps its precision).

    Raises:
        UnsupportedElementError: An element outside ``elements`` (named, with the supported list).
        InvalidStructureError: Empty structure, NaN/inf positions, or overlapping atoms.
        MixedPBCError: Periodic in some but not all directions.
        ZeroCellError: Periodic with a zero-volume cell.
    """
    numbers, positions, cell, periodic = _validate(atoms, elements, model_name)
    positions = _near_origin(positions, cell, periodic)  # (n_atoms, 3)
    edge_index, cell_shift = neighbor_list(
        positions, cell, periodic, cutoff, backend=neighbor_backend
    )
    if edge_index.shape[1]:
        vectors = (
            positions[edge_index[1]] - positions[edge_index[0]] + cell_shift @ cell
        )  # (n_edges, 3)
        distances = np.linalg.norm(vectors, axis=1)  # (n_edges,)
        closest = int(np.argmin(distances))
        if distances[closest] < min_distance:
            i, j = (int(x) for x in edge_index[:, closest])
            what = "its own periodic image" if i == j else f"atom {j}"
            raise InvalidStructureError(
                f"atom {i} ({chemical_symbols[numbers[i]]}) is {distances[closest]:.3f} Å from"
                f" {what} ({chemical_symbols[numbers[j]]}), closer than the minimum distance"
                f" {min_distance} Å: overlapping atoms"
            )
    lookup = np.full(max(max(elements), int(numbers.max())) + 1, -1, dtype=np.int64)
    lookup[np.asarray(elements, dtype=np.int64)] = np.arange(len(elements))
    n_atoms = len(numbers)
    return {
        keys.POSITIONS: torch.from_numpy(positions.copy()),
        keys.ATOMIC_NUMBERS: torch.from_numpy(numbers),
        keys.SPECIES: torch.from_numpy(lookup[numbers]),
        keys.BATCH: torch.zeros(n_atoms, dtype=torch.int64),
        keys.NUM_ATOMS: torch.tensor([n_atoms], dtype=torch.int64),
        keys.CELL: torch.from_numpy(cell.copy()).unsqueeze(0),
        keys.PBC: torch.tensor([[periodic] * 3], dtype=torch.bool),
        keys.EDGE_INDEX: torch.from_numpy(np.ascontiguousarray(edge_index)),
        keys.CELL_SHIFT: torch.from_numpy(np.ascontiguousarray(cell_shift)),
    }


def collate(batches: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Join single- or multi-graph batches into one, offsetting atom and graph indices.

    Args:
        batches: Batches from :func:`atoms_to_batch` (or earlier :func:`collate` calls).

    Returns:
        One batch whose graphs are the input graphs in order.
    """
    if len(batches) == 1:
        return dict(batches[0])
    atom_offsets = np.cumsum([0] + [int(b[keys.NUM_ATOMS].sum()) for b in batches[:-1]])
    graph_offsets = np.cumsum([0] + [len(b[keys.NUM_ATOMS]) for b in batches[:-1]])
    out = {
        key: torch.cat([b[key] for b in batches])
        for key in (
            keys.POSITIONS,
            keys.ATOMIC_NUMBERS,
            keys.SPECIES,
            keys.NUM_ATOMS,
            keys.CELL,
            keys.PBC,
            keys.CELL_SHIFT,
        )
    }
    out[keys.BATCH] = torch.cat(
        [b[keys.BATCH] + int(o) for b, o in zip(batches, graph_offsets, strict=True)]
    )
    out[keys.EDGE_INDEX] = torch.cat(
        [b[keys.EDGE_INDEX] + int(o) for b, o in zip(batches, atom_offsets, strict=True)], dim=1
    )
    for key in set(batches[0]) - set(out):
        out[key] = torch.cat([b[key] for b in batches])
    return out


def batch_to_device(
    batch: dict[str, torch.Tensor], *, dtype: torch.dtype, device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Cast floating tensors to ``dtype`` and move every tensor to ``device``.

    Integer and boolean tensors keep their dtype.
    """
    return {
        key: value.to(device=device, dtype=dtype)
        if value.is_floating_point()
        else value.to(device=device)
        for key, value in batch.items()
    }
