"""Parity with so3krates-torch: same hyperparameters, its weights mapped into ours, float64.

The reference is the PyPI package ``so3krates-torch`` (test extra). Its constructor sets torch's
global default dtype, so every reference model is built inside :func:`_keep_default_dtype`.
Tolerance: 1e-6 eV (energy), 1e-6 eV/Å (forces), 1e-8 eV/Å³ (stress).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import so3krates_torch.modules.models as so3krates_torch_models
import torch
from ase import Atoms

from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.models.so3krates.convert import (
    from_so3krates_torch,
    so3krates_torch_inputs,
)
from ase_mlpot.testing import aspirin, periodic_water_box


def water_box() -> Atoms:
    """64 randomly oriented waters (192 atoms) in a sheared 12.4 Å box, ~1 g/cm³, full PBC."""
    return periodic_water_box(n_side=4, spacing=3.1, seed=11)


#: Hyperparameter sets: so3krates-torch README defaults, an SO3LR-like trunk, a JAX-era variant.
SETTINGS: dict[str, dict[str, Any]] = {
    "torch-defaults": dict(
        r_max=4.5, num_radial_basis_fn=32, degrees=[1, 2, 3, 4], num_features=128, num_heads=4,
        num_layers=3, energy_regression_dim=128, radial_basis_fn="bernstein",
        avg_num_neighbors=13.17,
    ),
    "so3lr-trunk": dict(
        r_max=4.5, num_radial_basis_fn=32, degrees=[1, 2, 3, 4], num_features=128, num_heads=4,
        num_layers=3, energy_regression_dim=128, radial_basis_fn="bernstein",
        avg_num_neighbors=13.17, cutoff_fn="phys", residual_mlp_1=True,
        layer_normalization_1=True, layer_normalization_2=True,
        energy_learn_atomic_type_scales=True, energy_learn_atomic_type_shifts=True,
    ),
    "jax-variant": dict(
        r_max=5.0, num_radial_basis_fn=16, degrees=[1, 2, 3], num_features=48, num_heads=2,
        num_layers=2, energy_regression_dim=32, radial_basis_fn="gaussian",
        message_normalization="sqrt_num_features", qk_non_linearity="silu",
        cutoff_fn="exponential", initialize_ev_to_zeros=False, avg_num_neighbors=9.0,
        residual_mlp_2=True,
    ),
}


@contextlib.contextmanager
def _keep_default_dtype() -> Iterator[None]:
    default = torch.get_default_dtype()
    try:
        yield
    finally:
        torch.set_default_dtype(default)


def reference_model(seed: int, **settings: Any) -> torch.nn.Module:
    """A float64 so3krates-torch model with random weights and random per-element scale/shift."""
    torch.manual_seed(seed)
    with _keep_default_dtype():
        model = so3krates_torch_models.So3krates(dtype=torch.float64, **settings)
    generator = torch.Generator().manual_seed(seed)
    head = model.atomic_energy_output_block
    with torch.no_grad():
        # JAX-style N(0, 1/fan_in) weights (torch's default init gives forces of only ~1e-5 eV/Å).
        for name, parameter in model.named_parameters():
            if parameter.dim() >= 2 and "energy_scales" not in name:
                fan_in = parameter.shape[-1] if parameter.dim() == 2 else parameter.shape[-2]
                parameter.copy_(torch.randn(parameter.shape, generator=generator,
                                            dtype=torch.float64) * fan_in**-0.5)
        head.energy_shifts.copy_(torch.randn(head.energy_shifts.shape, generator=generator,
                                             dtype=torch.float64))
        head.energy_scales.weight.copy_(0.5 + torch.rand(head.energy_scales.weight.shape,
                                                         generator=generator, dtype=torch.float64))
    return model.eval()


def reference_results(models: list[torch.nn.Module], atoms: Atoms, cutoff: float
                      ) -> dict[str, np.ndarray]:
    stress = bool(atoms.pbc.all())
    outputs = [model(so3krates_torch_inputs(atoms, cutoff, dtype=torch.float64),
                     compute_stress=stress) for model in models]
    results = {
        "energy": np.mean([float(o["energy"].detach()) for o in outputs]),
        "forces": np.mean([o["forces"].detach().numpy() for o in outputs], axis=0),
    }
    if stress:
        results["stress"] = np.mean([o["stress"].detach().numpy()[0] for o in outputs], axis=0)
    return results


@pytest.mark.parametrize("structure", [aspirin, water_box], ids=["aspirin", "water-box"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_energy_forces_stress_match_so3krates_torch(name: str, structure: Any) -> None:
    settings = SETTINGS[name]
    reference = reference_model(0, **settings)
    ours = from_so3krates_torch(reference, ("H", "C", "N", "O"))
    atoms = structure()
    expected = reference_results([reference], atoms, settings["r_max"])
    atoms.calc = MLPotCalculator(ours, device="cpu", dtype=torch.float64)
    energy = atoms.get_potential_energy()
    print(f"{name} {len(atoms)} atoms: |dE| = {abs(energy - expected['energy']):.1e} eV,"
          f" max |dF| = {np.abs(atoms.get_forces() - expected['forces']).max():.1e} eV/Å")
    assert abs(expected["energy"]) > 1.0  # a non-trivial random-weight energy
    assert energy == pytest.approx(expected["energy"], abs=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), expected["forces"], atol=1e-6, rtol=0)
    assert np.abs(expected["forces"]).max() > 1e-3  # non-trivial forces
    if "stress" in expected:
        np.testing.assert_allclose(atoms.get_stress(voigt=False), expected["stress"], atol=1e-8,
                                   rtol=0)


def test_committee_matches_so3krates_torch_members() -> None:
    """A committee of imported networks: mean energy/forces and the member spread."""
    settings = SETTINGS["jax-variant"]
    references = [reference_model(seed, **settings) for seed in (1, 2, 3)]
    ours = from_so3krates_torch(references, ("H", "C", "N", "O"))
    atoms = aspirin()
    expected = reference_results(references, atoms, settings["r_max"])
    members = [reference_results([r], atoms, settings["r_max"])["energy"] for r in references]
    atoms.calc = MLPotCalculator(ours, device="cpu", dtype=torch.float64)
    assert atoms.get_potential_energy() == pytest.approx(expected["energy"], abs=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), expected["forces"], atol=1e-6, rtol=0)
    assert atoms.calc.results["energy_std"] == pytest.approx(np.std(members, ddof=1), abs=1e-6)


def test_reference_models_leave_default_dtype_alone() -> None:
    before = torch.get_default_dtype()
    reference_model(0, **SETTINGS["jax-variant"])
    assert torch.get_default_dtype() == before
