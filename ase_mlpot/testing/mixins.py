"""Physics tests every architecture passes (architecture.md §7).

Subclass :class:`ModelTests` and implement :meth:`ModelTests.make_model` returning a tiny
random-weight model (weights in any dtype; the tests cast). Every test runs in float32 and float64
(and on CUDA when available) with the tolerances of :data:`TOLERANCES`.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from ase_mlpot import keys
from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.data.batch import atoms_to_batch, batch_to_device, collate
from ase_mlpot.errors import (
    InvalidStructureError,
    MixedPBCError,
    UnsupportedElementError,
    ZeroCellError,
)
from ase_mlpot.io import load_artifact, save_artifact
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.outputs import compute_outputs
from ase_mlpot.testing.global_state import global_torch_state
from ase_mlpot.testing.structures import (
    dimer,
    isolated_atom,
    organic_molecule,
    periodic_water_box,
    water,
)

__all__ = ["DEVICES", "DTYPES", "TOLERANCES", "ModelTests"]

DTYPES = (torch.float32, torch.float64)
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)

#: Absolute tolerances per dtype: energy (eV), energy per atom (eV), forces (eV/Å),
#: stress (eV/Å³), finite-difference forces (eV/Å), finite-difference stress (eV/Å³).
TOLERANCES: dict[torch.dtype, dict[str, float]] = {
    torch.float32: {
        "energy": 2e-3,
        "forces": 2e-3,
        "stress": 2e-5,
        "fd_forces": 5e-2,
        "fd_stress": 5e-4,
    },
    torch.float64: {
        "energy": 1e-9,
        "forces": 1e-9,
        "stress": 1e-11,
        "fd_forces": 1e-5,
        "fd_stress": 1e-7,
    },
}


def _random_rotation(seed: int, reflect: bool) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    if reflect:
        q = q @ np.diag([1.0, 1.0, -1.0])
    return q


class ModelTests:
    """Architecture-independent physics and contract tests.

    Subclasses implement :meth:`make_model`; they may override :attr:`unsupported_element`
    (a symbol the model lacks) and :attr:`nve_steps`.
    """

    unsupported_element: str = "Si"
    nve_steps: int = 200
    nve_timestep_fs: float = 0.25
    nve_max_drift_ev: float = 1e-4

    def make_model(self) -> PotentialModel:
        """A tiny, deterministic, random-weight model."""
        raise NotImplementedError

    # ----------------------------------------------------------------- fixtures
    @pytest.fixture(params=DTYPES, ids=lambda d: str(d).removeprefix("torch."))
    def dtype(self, request: pytest.FixtureRequest) -> torch.dtype:
        return request.param

    @pytest.fixture(params=DEVICES)
    def device(self, request: pytest.FixtureRequest) -> str:
        return request.param

    @pytest.fixture
    def tol(self, dtype: torch.dtype) -> dict[str, float]:
        return TOLERANCES[dtype]

    def calculator(
        self, dtype: torch.dtype = torch.float64, device: str = "cpu", **kwargs: Any
    ) -> MLPotCalculator:
        return MLPotCalculator(self.make_model(), device=device, dtype=dtype, **kwargs)

    @staticmethod
    def results(atoms: Atoms, calc: MLPotCalculator, stress: bool = False) -> dict[str, Any]:
        atoms = atoms.copy()
        atoms.calc = calc
        out = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if stress:
            out["stress"] = atoms.get_stress()
        return out

    # ----------------------------------------------------------------- derivatives
    def test_forces_and_stress_exceed_the_tolerances(self) -> None:
        """The tiny model's forces and stress are far above the float32 tolerances, so that the
        invariance and finite-difference tests of this class can fail."""
        calc = self.calculator()
        forces = self.results(organic_molecule(), calc)["forces"]
        stress = self.results(periodic_water_box(), calc, stress=True)["stress"]
        # 50 × the float32 tolerance of equal results, 2 × that of finite differences
        assert np.abs(forces).max() > 50 * TOLERANCES[torch.float32]["forces"]  # 0.1 eV/Å
        assert np.abs(stress).max() > 50 * TOLERANCES[torch.float32]["stress"]  # 1e-3 eV/Å³

    @pytest.mark.parametrize("structure", [water, organic_molecule, periodic_water_box])
    def test_forces_match_finite_differences(self, structure, dtype, device, tol) -> None:
        atoms = structure()
        atoms.calc = self.calculator(dtype, device)
        eps = 1e-4 if dtype == torch.float64 else 1e-2
        indices = range(min(len(atoms), 6))
        numeric = calculate_numerical_forces(atoms, eps=eps, iatoms=indices)
        analytic = atoms.get_forces()[list(indices)]
        np.testing.assert_allclose(analytic, numeric, atol=tol["fd_forces"], rtol=0)

    def test_stress_matches_finite_differences(self, dtype, device, tol) -> None:
        atoms = periodic_water_box()
        atoms.calc = self.calculator(dtype, device)
        eps = 1e-5 if dtype == torch.float64 else 1e-3
        numeric = calculate_numerical_stress(atoms, eps=eps)
        np.testing.assert_allclose(atoms.get_stress(), numeric, atol=tol["fd_stress"], rtol=0)

    def test_gradcheck(self) -> None:
        model = self.make_model().double()
        batch = atoms_to_batch(
            organic_molecule(), elements=model.atomic_numbers, cutoff=model.cutoff
        )

        def energy(positions: torch.Tensor) -> torch.Tensor:
            out = compute_outputs(
                model, {**batch, keys.POSITIONS: positions}, forces=False, training=True
            )
            return out[keys.TOTAL_ENERGY]

        positions = batch[keys.POSITIONS].clone().requires_grad_(True)
        assert torch.autograd.gradcheck(energy, (positions,), eps=1e-6, atol=1e-6)

    # ----------------------------------------------------------------- symmetries
    @pytest.mark.parametrize("reflect", [False, True], ids=["rotation", "reflection"])
    def test_rotation_and_reflection(self, reflect, dtype, device, tol) -> None:
        atoms = organic_molecule()
        calc = self.calculator(dtype, device)
        reference = self.results(atoms, calc)
        q = _random_rotation(11, reflect)
        rotated = atoms.copy()
        rotated.positions = atoms.positions @ q.T
        moved = self.results(rotated, calc)
        assert moved["energy"] == pytest.approx(reference["energy"], abs=tol["energy"])
        np.testing.assert_allclose(moved["forces"], reference["forces"] @ q.T, atol=tol["forces"])

    def test_rotation_of_periodic_structure(self, dtype, device, tol) -> None:
        atoms = periodic_water_box()
        calc = self.calculator(dtype, device)
        reference = self.results(atoms, calc, stress=True)
        q = _random_rotation(5, reflect=False)
        rotated = atoms.copy()
        rotated.set_cell(atoms.cell.array @ q.T, scale_atoms=False)
        rotated.positions = atoms.positions @ q.T
        moved = self.results(rotated, calc, stress=True)
        assert moved["energy"] == pytest.approx(reference["energy"], abs=tol["energy"])
        np.testing.assert_allclose(moved["forces"], reference["forces"] @ q.T, atol=tol["forces"])
        from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

        expected = q @ voigt_6_to_full_3x3_stress(reference["stress"]) @ q.T
        np.testing.assert_allclose(
            moved["stress"], full_3x3_to_voigt_6_stress(expected), atol=tol["stress"]
        )

    def test_translation(self, dtype, device, tol) -> None:
        atoms = organic_molecule()
        calc = self.calculator(dtype, device)
        reference = self.results(atoms, calc)
        atoms.positions += np.array([3.7, -12.1, 0.4])
        moved = self.results(atoms, calc)
        assert moved["energy"] == pytest.approx(reference["energy"], abs=tol["energy"])
        np.testing.assert_allclose(moved["forces"], reference["forces"], atol=tol["forces"])

    def model_outputs(self, batch: dict[str, torch.Tensor], dtype: torch.dtype, device: str,
                      stress: bool = False) -> dict[str, np.ndarray]:
        """Energy, forces (and stress) of the model itself on ``batch``, bypassing
        :func:`~ase_mlpot.data.batch.atoms_to_batch` (which centres and wraps structures)."""
        model = self.make_model().to(device=device, dtype=dtype)
        out = compute_outputs(model, batch_to_device(batch, dtype=dtype, device=device),
                              stress=stress)
        return {key: value.detach().cpu().double().numpy() for key, value in out.items()
                if key in (keys.TOTAL_ENERGY, keys.FORCES, keys.STRESS)}

    def test_translation_of_the_model_input(self, dtype, device, tol) -> None:
        """The model itself (not only the calculator, which centres molecules) is invariant
        under translations of its input positions."""
        model = self.make_model()
        batch = atoms_to_batch(organic_molecule(), elements=model.atomic_numbers,
                               cutoff=model.cutoff)
        moved = dict(batch)
        moved[keys.POSITIONS] = batch[keys.POSITIONS] + torch.tensor([13.7, -42.1, 5.4],
                                                                      dtype=torch.float64)
        reference, result = (self.model_outputs(b, dtype, device) for b in (batch, moved))
        np.testing.assert_allclose(result[keys.TOTAL_ENERGY], reference[keys.TOTAL_ENERGY],
                                   atol=tol["energy"])
        np.testing.assert_allclose(result[keys.FORCES], reference[keys.FORCES],
                                   atol=tol["forces"])

    def test_lattice_jumps_in_the_model_input(self, dtype, device, tol) -> None:
        """The model itself (not only the calculator, which wraps crystals into their cell)
        handles atoms many cells away, with the matching cell shifts of every edge, and any
        translation of the crystal."""
        model = self.make_model()
        atoms = periodic_water_box()
        batch = atoms_to_batch(atoms, elements=model.atomic_numbers, cutoff=model.cutoff)
        jumps = torch.from_numpy(np.random.default_rng(4).integers(-3, 4, size=(len(atoms), 3)))
        cell = torch.from_numpy(atoms.cell.array)  # (3, 3)
        receivers, senders = batch[keys.EDGE_INDEX]  # (n_edges,) each
        moved = dict(batch)
        moved[keys.POSITIONS] = (batch[keys.POSITIONS] + jumps.double() @ cell
                                 + torch.tensor([0.37, -1.21, 2.04], dtype=torch.float64))
        # r_j − r_i + S·h stays the same vector: S' = S − J_j + J_i
        moved[keys.CELL_SHIFT] = batch[keys.CELL_SHIFT] - jumps[senders] + jumps[receivers]
        reference, result = (self.model_outputs(b, dtype, device, stress=True)
                             for b in (batch, moved))
        np.testing.assert_allclose(result[keys.TOTAL_ENERGY], reference[keys.TOTAL_ENERGY],
                                   atol=tol["energy"])
        np.testing.assert_allclose(result[keys.FORCES], reference[keys.FORCES],
                                   atol=tol["forces"])
        np.testing.assert_allclose(result[keys.STRESS], reference[keys.STRESS],
                                   atol=tol["stress"])

    def test_float32_far_from_the_origin(self, device) -> None:
        """Positions thousands of Å (or hundreds of cells) away lose no float32 precision:
        results agree with those near the origin to ~1e-5 of the force scale (at 1e4 Å float32
        coordinates alone would resolve only ~1e-3 Å, errors ~1e-3 of the force scale)."""
        calc = self.calculator(torch.float32, device)
        molecule, crystal = organic_molecule(), periodic_water_box()
        near = [self.results(molecule, calc), self.results(crystal, calc, stress=True)]
        molecule.positions += np.array([3.6e3, -2.5e3, 1.0e4])
        crystal.positions += np.array([150, -90, 200]) @ crystal.cell.array
        far = [self.results(molecule, calc), self.results(crystal, calc, stress=True)]
        for moved, reference in zip(far, near, strict=True):
            scale = float(np.abs(reference["forces"]).max())
            np.testing.assert_allclose(moved["forces"], reference["forces"], atol=1e-5 * scale)
            assert moved["energy"] == pytest.approx(reference["energy"], abs=1e-5)
        scale = float(np.abs(near[1]["stress"]).max())
        np.testing.assert_allclose(far[1]["stress"], near[1]["stress"], atol=1e-5 * scale)

    def test_permutation(self, dtype, device, tol) -> None:
        atoms = organic_molecule()
        calc = self.calculator(dtype, device)
        reference = self.results(atoms, calc)
        order = np.random.default_rng(2).permutation(len(atoms))
        moved = self.results(atoms[order], calc)
        assert moved["energy"] == pytest.approx(reference["energy"], abs=tol["energy"])
        np.testing.assert_allclose(moved["forces"], reference["forces"][order], atol=tol["forces"])

    # ----------------------------------------------------------------- periodic systems
    def test_wrapping_into_other_images(self, dtype, device, tol) -> None:
        atoms = periodic_water_box()
        calc = self.calculator(dtype, device)
        reference = self.results(atoms, calc, stress=True)
        shifted = atoms.copy()
        jumps = np.random.default_rng(4).integers(-2, 3, size=(len(atoms), 3))
        shifted.positions += jumps @ atoms.cell.array
        moved = self.results(shifted, calc, stress=True)
        assert moved["energy"] == pytest.approx(reference["energy"], abs=tol["energy"])
        np.testing.assert_allclose(moved["forces"], reference["forces"], atol=tol["forces"])
        np.testing.assert_allclose(moved["stress"], reference["stress"], atol=tol["stress"])

    def test_supercell_extensivity(self, dtype, device, tol) -> None:
        atoms = periodic_water_box()
        calc = self.calculator(dtype, device)
        reference = self.results(atoms, calc, stress=True)
        supercell = self.results(atoms.repeat((2, 1, 1)), calc, stress=True)
        assert supercell["energy"] == pytest.approx(2 * reference["energy"], abs=2 * tol["energy"])
        np.testing.assert_allclose(
            supercell["forces"], np.tile(reference["forces"], (2, 1)), atol=tol["forces"]
        )
        np.testing.assert_allclose(supercell["stress"], reference["stress"], atol=tol["stress"])

    def test_small_cell_sees_its_own_images(self, dtype, device, tol) -> None:
        """A cell shorter than the cutoff: the atom's periodic images are neighbours."""
        atoms = Atoms("C", positions=[[0.2, 0.1, 0.0]], cell=np.diag([2.3, 2.5, 2.7]), pbc=True)
        calc = self.calculator(dtype, device)
        single = self.results(atoms, calc, stress=True)
        doubled = self.results(atoms.repeat((1, 2, 1)), calc, stress=True)
        assert doubled["energy"] == pytest.approx(2 * single["energy"], abs=2 * tol["energy"])
        np.testing.assert_allclose(doubled["stress"], single["stress"], atol=tol["stress"])

    # ----------------------------------------------------------------- locality
    def test_copies_far_apart_are_additive(self, dtype, device, tol) -> None:
        molecule = organic_molecule()
        pair = molecule.copy()
        far = molecule.copy()
        far.positions += np.array([45.0, 10.0, -5.0])
        pair += far
        calc = self.calculator(dtype, device)
        single = self.results(molecule, calc)
        double = self.results(pair, calc)
        assert double["energy"] == pytest.approx(2 * single["energy"], abs=2 * tol["energy"])
        np.testing.assert_allclose(
            double["forces"][: len(molecule)], single["forces"], atol=tol["forces"]
        )

    def test_smooth_at_cutoff(self) -> None:
        """Energy and force vary continuously as a neighbour crosses the cutoff."""
        calc = self.calculator(torch.float64)
        cutoff = calc.model.cutoff
        energies, forces = [], []
        for distance in (cutoff - 1e-4, cutoff - 1e-7, cutoff + 1e-7, cutoff + 1e-4):
            atoms = dimer("CO", distance)
            atoms.calc = calc
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        assert abs(energies[1] - energies[2]) < 1e-8
        assert np.abs(forces[1] - forces[2]).max() < 1e-5
        assert abs(energies[0] - energies[3]) < 1e-5
        np.testing.assert_allclose(forces[3], 0.0, atol=1e-12)

    # ----------------------------------------------------------------- batching
    def test_batched_equals_single(self, dtype, device, tol) -> None:
        structures = [water(), organic_molecule(), dimer("NO", 1.2), isolated_atom("H")]
        calc = self.calculator(dtype, device)
        batched = calc.calculate_batch(structures)
        for atoms, result in zip(structures, batched, strict=True):
            single = self.results(atoms, calc)
            assert result["energy"] == pytest.approx(single["energy"], abs=tol["energy"])
            np.testing.assert_allclose(result["forces"], single["forces"], atol=tol["forces"])

    def test_no_gradient_across_graphs(self) -> None:
        model = self.make_model().double()
        batches = [
            atoms_to_batch(a, elements=model.atomic_numbers, cutoff=model.cutoff)
            for a in (water(), organic_molecule())
        ]
        batch = batch_to_device(collate(batches), dtype=torch.float64, device="cpu")
        positions = batch[keys.POSITIONS].clone().requires_grad_(True)
        out = compute_outputs(
            model, {**batch, keys.POSITIONS: positions}, forces=False, training=True
        )
        (gradient,) = torch.autograd.grad(out[keys.TOTAL_ENERGY][0], positions)
        assert torch.count_nonzero(gradient[3:]) == 0
        assert torch.count_nonzero(gradient[:3]) > 0

    # ----------------------------------------------------------------- isolated atoms, errors
    def test_isolated_atom(self, dtype, device, tol) -> None:
        """An atom without neighbours feels no force, and its energy (reference energy plus the
        network's constant for an empty environment) is the same in vacuum and in a periodic cell
        too large for any image to be within the cutoff, where the stress vanishes."""
        calc = self.calculator(dtype, device)
        side = 2.0 * calc.model.cutoff + 1.0
        for symbol in calc.model.elements:
            free = self.results(isolated_atom(symbol), calc)
            np.testing.assert_allclose(free["forces"], 0.0, atol=1e-12)
            boxed = isolated_atom(symbol)
            boxed.cell, boxed.pbc = np.diag([side, side + 0.3, side + 0.6]), True
            periodic = self.results(boxed, calc, stress=True)
            assert periodic["energy"] == pytest.approx(free["energy"], abs=tol["energy"])
            np.testing.assert_allclose(periodic["forces"], 0.0, atol=1e-12)
            np.testing.assert_allclose(periodic["stress"], 0.0, atol=1e-12)

    def test_unsupported_element(self) -> None:
        atoms = water()
        atoms[1].symbol = self.unsupported_element
        atoms.calc = self.calculator()
        with pytest.raises(UnsupportedElementError, match=self.unsupported_element) as error:
            atoms.get_potential_energy()
        for symbol in self.make_model().elements:
            assert symbol in str(error.value)

    def test_ghost_atom_is_named_once(self) -> None:
        atoms = water()
        atoms.numbers[0] = 0
        atoms.calc = self.calculator()
        with pytest.raises(UnsupportedElementError, match=r"element Z=0 \(atom 0\)") as error:
            atoms.get_potential_energy()
        assert str(error.value).count("Z=0") == 1 and "also" not in str(error.value)

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_positions(self, bad) -> None:
        atoms = water()
        atoms.positions[2, 1] = bad
        atoms.calc = self.calculator()
        with pytest.raises(InvalidStructureError, match="NaN or infinite"):
            atoms.get_potential_energy()

    def test_overlapping_atoms(self) -> None:
        atoms = water()
        atoms.positions[2] = atoms.positions[0] + 0.05
        atoms.calc = self.calculator()
        with pytest.raises(InvalidStructureError, match="overlapping"):
            atoms.get_potential_energy()

    def test_zero_cell_with_pbc(self) -> None:
        atoms = water()
        atoms.pbc = True
        atoms.calc = self.calculator()
        with pytest.raises(ZeroCellError, match="zero volume"):
            atoms.get_potential_energy()

    def test_non_finite_cell_with_pbc(self) -> None:
        atoms = periodic_water_box()
        atoms.cell[1, 1] = np.nan
        atoms.calc = self.calculator()
        with pytest.raises(ZeroCellError, match="NaN or infinite"):
            atoms.get_potential_energy()

    def test_mixed_pbc(self) -> None:
        atoms = water()
        atoms.cell = np.diag([10.0, 10.0, 10.0])
        atoms.pbc = [True, True, False]
        atoms.calc = self.calculator()
        with pytest.raises(MixedPBCError):
            atoms.get_potential_energy()

    def test_stress_needs_pbc(self) -> None:
        from ase.calculators.calculator import PropertyNotImplementedError

        atoms = water()
        atoms.calc = self.calculator()
        with pytest.raises(PropertyNotImplementedError):
            atoms.get_stress()

    # ----------------------------------------------------------------- global state, ASE contract
    def test_no_global_side_effects(self) -> None:
        before = global_torch_state()
        for dtype in DTYPES:
            atoms = periodic_water_box()
            atoms.calc = self.calculator(dtype)
            atoms.get_stress()
        assert global_torch_state() == before

    def test_calculator_leaves_the_model_unchanged(self) -> None:
        """The calculator evaluates its own copy: the caller's model keeps its dtype, its
        trainable parameters and its training mode."""
        model = self.make_model().train()
        trainable = [name for name, p in model.named_parameters() if p.requires_grad]
        state = {name: value.clone() for name, value in model.state_dict().items()}
        atoms = organic_molecule()
        atoms.calc = MLPotCalculator(model, device="cpu", dtype=torch.float64)
        atoms.get_forces()
        assert model.training
        assert [name for name, p in model.named_parameters() if p.requires_grad] == trainable
        for name, value in model.state_dict().items():
            assert value.dtype == state[name].dtype and torch.equal(value, state[name]), name

    def test_results_are_cached(self) -> None:
        atoms = organic_molecule()
        calc = self.calculator()
        atoms.calc = calc
        calls = {"n": 0}
        original = calc._evaluate

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            return original(*args, **kwargs)

        calc._evaluate = counting  # type: ignore[method-assign]
        energy = atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_potential_energies()
        assert calls["n"] == 1
        atoms.positions[0, 0] += 0.01
        assert atoms.get_potential_energy() != energy
        assert calls["n"] == 2
        assert calc.results["free_energy"] == calc.results["energy"]
        assert sum(calc.results["energies"]) == pytest.approx(calc.results["energy"], abs=1e-9)

    def test_ensemble_statistics(self) -> None:
        model = self.make_model().double()
        atoms = organic_molecule()
        calc = MLPotCalculator(model, device="cpu", dtype=torch.float64)
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        forces_std = calc.get_property("forces_std", atoms)
        batch = batch_to_device(
            atoms_to_batch(atoms, elements=model.atomic_numbers, cutoff=model.cutoff),
            dtype=torch.float64,
            device="cpu",
        )
        out = compute_outputs(model, batch, forces_std=True)
        members = out[keys.MEMBER_ENERGIES][:, 0].detach() * calc.energy_to_eV
        assert energy == pytest.approx(float(members.mean()), abs=1e-9)
        if model.ensemble_size > 1:
            assert calc.results["energy_std"] == pytest.approx(float(members.std()), abs=1e-9)
            assert calc.results["energy_std"] > 0
            assert forces_std.shape == (len(atoms), 3) and forces_std.max() > 0
        else:
            assert calc.results["energy_std"] == 0.0

    def test_float32_matches_float64(self) -> None:
        atoms = organic_molecule()
        single = self.results(atoms, self.calculator(torch.float32))
        double = self.results(atoms, self.calculator(torch.float64))
        assert single["energy"] == pytest.approx(
            double["energy"], abs=TOLERANCES[torch.float32]["energy"]
        )
        np.testing.assert_allclose(
            single["forces"], double["forces"], atol=TOLERANCES[torch.float32]["forces"]
        )

    # ----------------------------------------------------------------- persistence
    def test_save_load_bit_identical(self) -> None:
        model = self.make_model()
        with tempfile.TemporaryDirectory() as folder:
            save_artifact(model, Path(folder) / "artifact", name="tiny", version="0")
            loaded = load_artifact(Path(folder) / "artifact").model
        original_state, loaded_state = model.state_dict(), loaded.state_dict()
        assert original_state.keys() == loaded_state.keys()
        for key, value in original_state.items():
            assert torch.equal(value, loaded_state[key]), key
        assert loaded.reference_energy_dict() == model.reference_energy_dict()
        atoms = organic_molecule()
        first = self.results(atoms, MLPotCalculator(copy.deepcopy(model), device="cpu"))
        second = self.results(atoms, MLPotCalculator(loaded, device="cpu"))
        assert first["energy"] == second["energy"]
        assert np.array_equal(first["forces"], second["forces"])

    # ----------------------------------------------------------------- dynamics
    @pytest.mark.slow
    def test_nve_energy_conservation(self) -> None:
        atoms = organic_molecule()
        # Random weights bind nothing and repel nothing: let atoms pass closer than usual.
        atoms.calc = self.calculator(torch.float64, min_distance=0.01)
        thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
        Stationary(atoms)
        ZeroRotation(atoms)
        dynamics = VelocityVerlet(atoms, timestep=self.nve_timestep_fs * units.fs)
        totals = []
        dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=10)
        dynamics.run(self.nve_steps)
        drift = max(totals) - min(totals)
        assert drift < self.nve_max_drift_ev, f"NVE energy drift {drift:.2e} eV"
