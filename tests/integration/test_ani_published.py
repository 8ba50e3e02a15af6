"""The published ANI-1ccx and ANI-1x weights: parity with TorchANI 2.9 and HC7/ISOL6 numbers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchani
from ase import Atoms

from ase_mlpot.units import HARTREE_TO_EV, HARTREE_TO_KCAL_PER_MOL

from .conftest import float64_calculator, reaction_energy, water_box

WATER = Atoms(
    "OHH",
    positions=[
        [-0.70219605, -0.05606026, 0.00994226],
        [-1.02219322, 0.84677578, -0.01148871],
        [0.25752106, 0.04212150, 0.00521900],
    ],
)


@pytest.fixture(scope="module")
def torchani_ani1ccx(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory, ani1ccx_model
) -> torch.nn.Module:
    """TorchANI's ANI1ccx() built offline from the state dict, float64 with float64 self energies.

    TorchANI stores self energies as float32 (rounded by up to 3e-6 Ha); both sides use the
    float64 NeuroChem values so that only the network evaluation is compared.
    """
    data_dir = tmp_path_factory.mktemp("torchani")
    (data_dir / "StateDicts").mkdir()
    (data_dir / "StateDicts" / "ani1ccx_state_dict.pt").symlink_to(
        shared_data / "torchani-statedicts" / "StateDicts" / "ani1ccx_state_dict.pt"
    )
    previous = os.environ.get("TORCHANI_DATA_DIR")
    os.environ["TORCHANI_DATA_DIR"] = str(data_dir)
    try:
        model = torchani.models.ANI1ccx(neighborlist="all_pairs").double()
    finally:
        if previous is None:
            del os.environ["TORCHANI_DATA_DIR"]
        else:
            os.environ["TORCHANI_DATA_DIR"] = previous
    with torch.no_grad():
        model.energy_shifter.self_energies.copy_(ani1ccx_model.reference_energies)
    return model


def torchani_energy_forces(model: torch.nn.Module, atoms: Atoms) -> tuple[float, np.ndarray]:
    species = torch.tensor(atoms.numbers, dtype=torch.int64).unsqueeze(0)
    coordinates = torch.tensor(atoms.positions, dtype=torch.float64).unsqueeze(0)
    coordinates.requires_grad_(True)
    kwargs = {}
    if atoms.pbc.all():
        kwargs = {
            "cell": torch.tensor(atoms.cell.array, dtype=torch.float64),
            "pbc": torch.tensor([True, True, True]),
        }
    energy = model((species, coordinates), **kwargs).energies
    (gradient,) = torch.autograd.grad(energy.sum(), coordinates)
    return float(energy.detach()) * HARTREE_TO_EV, -gradient[0].numpy() * HARTREE_TO_EV


def test_water_golden(ani1ccx_model) -> None:
    """Float64 throughout with float64 self energies: −2078.502897 eV (ani.md §10)."""
    atoms = WATER.copy()
    atoms.calc = float64_calculator(ani1ccx_model)
    assert atoms.get_potential_energy() == pytest.approx(-2078.502897, abs=1e-6)
    assert atoms.calc.results["energy_std"] == pytest.approx(0.0081, abs=5e-5)


def test_parity_with_torchani(torchani_ani1ccx, ani1ccx_model, benchmark_molecules) -> None:
    calc = float64_calculator(ani1ccx_model)
    structures = dict(benchmark_molecules)
    structures["water_box"] = water_box()
    for name, atoms in structures.items():
        atoms = atoms.copy()
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        reference_energy, reference_forces = torchani_energy_forces(torchani_ani1ccx, atoms)
        assert abs(energy - reference_energy) / len(atoms) <= 1e-6, name
        np.testing.assert_allclose(forces, reference_forces, atol=1e-5, rtol=0, err_msg=name)


def test_same_weights_from_torchani_state_dict(shared_data, ani1ccx_model) -> None:
    """The TorchANI state-dict reader yields the NeuroChem parameters (bit for bit)."""
    from ase_mlpot.models.ani.neurochem import read_torchani_state_dict

    published = read_torchani_state_dict(
        shared_data / "torchani-statedicts" / "StateDicts" / "ani1ccx_state_dict.pt"
    )
    state = ani1ccx_model.state_dict()
    assert published.state_dict.keys() == state.keys()
    for key, value in published.state_dict.items():
        assert torch.equal(value, state[key]), key
    # Its self energies are the float32-rounded ones (ani.md §5).
    rounded = published.reference_energies["O"] - ani1ccx_model.reference_energy_dict()["O"]
    assert rounded == pytest.approx(-3.16e-6, abs=5e-8)


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [("ani-1ccx", {"HC7": 2.53, "ISOL6": 1.46}), ("ani-1x", {"HC7": 19.65, "ISOL6": 4.63})],
)
def test_hc7_isol6(model_name, expected, request, benchmark_molecules, benchmark_reactions) -> None:
    model = request.getfixturevalue(model_name.replace("-", "") + "_model")
    calc = float64_calculator(model)
    energies = {}
    for name, atoms in benchmark_molecules.items():
        atoms = atoms.copy()
        atoms.calc = calc
        energies[name] = atoms.get_potential_energy() / HARTREE_TO_EV * HARTREE_TO_KCAL_PER_MOL
    errors: dict[str, list[float]] = {"HC7": [], "ISOL6": []}
    for reaction in benchmark_reactions:
        value = reaction_energy(energies, reaction)
        assert value == pytest.approx(reaction.published[model_name], abs=0.051), reaction.id
        errors[reaction.id.split("_")[0]].append(abs(value - reaction.reference))
    for subset, mad in expected.items():
        assert np.mean(errors[subset]) == pytest.approx(mad, abs=0.01), subset
