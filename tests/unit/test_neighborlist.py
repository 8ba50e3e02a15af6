"""Neighbour-list backends agree, list both directions and reproduce the edge vectors."""

from __future__ import annotations

import numpy as np
import pytest
from ase.neighborlist import neighbor_list as ase_neighbor_list

from ase_mlpot.data.neighborlist import NEIGHBOR_BACKENDS, neighbor_list
from ase_mlpot.testing import organic_molecule, periodic_water_box


@pytest.mark.parametrize("structure", [organic_molecule, periodic_water_box])
@pytest.mark.parametrize("backend", sorted(set(NEIGHBOR_BACKENDS) - {"all_pairs"}))
def test_backends_agree_with_ase(structure, backend) -> None:
    atoms = structure()
    periodic = bool(atoms.pbc.all())
    edges, shifts = neighbor_list(atoms.positions, atoms.cell.array, periodic, 5.2,
                                  backend=backend)
    i, j, reference_shifts = ase_neighbor_list("ijS", atoms, 5.2)
    expected = sorted(zip(i.tolist(), j.tolist(), map(tuple, reference_shifts.tolist()),
                          strict=True))
    found = sorted(zip(edges[0].tolist(), edges[1].tolist(), map(tuple, shifts.tolist()),
                       strict=True))
    assert found == expected
    vectors = atoms.positions[edges[1]] - atoms.positions[edges[0]] + shifts @ atoms.cell.array
    assert np.linalg.norm(vectors, axis=1).max() < 5.2


def test_all_pairs_refuses_periodic_structures() -> None:
    atoms = periodic_water_box()
    with pytest.raises(ValueError, match="non-periodic"):
        neighbor_list(atoms.positions, atoms.cell.array, True, 5.2, backend="all_pairs")


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown neighbour-list backend"):
        neighbor_list(np.zeros((2, 3)), np.zeros((3, 3)), False, 5.0, backend="magic")
