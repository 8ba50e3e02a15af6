"""Sampling: normal modes against a harmonic model, NMS statistics, MD, QBC, SMILES."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from ase_mlpot.datasets.errors import SamplingError
from ase_mlpot.datasets.sampling import (
    SamplingPlan,
    interleave,
    md_sampling,
    normal_mode_sampling,
    normal_modes,
    numerical_hessian,
    query_by_committee,
    round_robin,
)


class HarmonicBonds(Calculator):
    """E = ½ k Σ_(i<j) (r_ij − r0_ij)² over all pairs, r0 taken from a reference geometry (eV)."""

    implemented_properties: ClassVar[list[str]] = ["energy", "forces"]

    def __init__(self, reference: Atoms, k: float = 30.0) -> None:
        super().__init__()
        self.r0 = reference.get_all_distances()  # (n_atoms, n_atoms) | Å
        self.k = k

    def calculate(self, atoms: Any = None, properties: Any = None,
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.get_positions()  # (n_atoms, 3)
        diff = pos[:, None, :] - pos[None, :, :]  # (n_atoms, n_atoms, 3)
        r = np.linalg.norm(diff, axis=-1)  # (n_atoms, n_atoms)
        np.fill_diagonal(r, 1.0)
        dr = r - self.r0
        np.fill_diagonal(dr, 0.0)
        energy = 0.25 * self.k * np.sum(dr**2)  # each pair counted twice
        forces = -self.k * np.sum((dr / r)[:, :, None] * diff, axis=1)  # (n_atoms, 3)
        self.results = {"energy": energy, "forces": forces}


class Committee(Calculator):
    """A stand-in ensemble: E = 0, σ_E = ``std`` × N_atoms (eV)."""

    implemented_properties: ClassVar[list[str]] = ["energy", "forces", "energy_std"]

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def calculate(self, atoms: Any = None, properties: Any = None,
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        self.results = {"energy": 0.0, "forces": np.zeros((n, 3)), "energy_std": self.std * n}


def _h2() -> Atoms:
    return Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])


def _water() -> Atoms:
    return Atoms("OH2", positions=[[0, 0, 0.119], [0, 0.763, -0.477], [0, -0.763, -0.477]])


def test_normal_modes_of_a_harmonic_diatomic() -> None:
    """One stretch: K = 2k along the normalised mode, ν̃ = √(k/μ)/(2πc)."""
    atoms = _h2()
    k = 30.0  # eV/Å²
    modes = normal_modes(atoms, numerical_hessian(atoms, HarmonicBonds(atoms, k)))
    assert modes.modes.shape == (1, 2, 3)
    assert modes.force_constants[0] == pytest.approx(2 * k, rel=1e-5)
    m = atoms.get_masses()[0]
    mu = m * m / (2 * m)  # amu
    omega = np.sqrt(k * units._e / (mu * units._amu)) * 1e10  # rad/s
    wavenumber = omega / (2 * np.pi * units._c * 100)  # cm⁻¹
    assert modes.frequencies_cm[0] == pytest.approx(wavenumber, rel=1e-4)
    assert np.linalg.norm(modes.modes[0]) == pytest.approx(1.0)
    np.testing.assert_allclose(np.abs(modes.modes[0, :, 2]), [2**-0.5] * 2, atol=1e-8)


def test_mode_counts_nonlinear_and_linear() -> None:
    """3N−6 modes for water, 3N−5 for a linear triatomic; all positive at the minimum."""
    water = _water()
    modes = normal_modes(water, numerical_hessian(water, HarmonicBonds(water)))
    assert len(modes.force_constants) == 3 and np.all(modes.force_constants > 0)
    linear = Atoms("CO2", positions=[[0, 0, 0], [0, 0, 1.16], [0, 0, -1.16]])
    lin_modes = normal_modes(linear, numerical_hessian(linear, HarmonicBonds(linear)))
    assert len(lin_modes.force_constants) == 4
    with pytest.raises(SamplingError):
        normal_modes(Atoms("H"), np.zeros((3, 3)))


def test_normal_mode_sampling_energy_distribution() -> None:
    """Diatomic: harmonic energy ½KR² = 3 k_B T s with s ~ U(0, 1), so E ≤ 3k_BT, mean 1.5k_BT."""
    atoms = _h2()
    calc = HarmonicBonds(atoms, 30.0)
    modes = normal_modes(atoms, numerical_hessian(atoms, calc))
    temperature = 500.0
    samples = normal_mode_sampling(atoms, modes, 400, temperature, np.random.default_rng(0),
                                   min_force_constant=0.0)
    kt = units.kB * temperature
    energies = []
    for sample in samples:
        sample.calc = calc
        energies.append(sample.get_potential_energy())
    energies_kt = np.asarray(energies) / kt  # (400,)
    assert energies_kt.max() <= 3.0 + 1e-6
    assert energies_kt.mean() == pytest.approx(1.5, abs=0.12)
    assert samples[0].info["temperature"] == temperature
    again = normal_mode_sampling(atoms, modes, 3, temperature, np.random.default_rng(0),
                                 min_force_constant=0.0)
    np.testing.assert_array_equal(again[0].positions, samples[0].positions)


def test_md_sampling_returns_distinct_frames() -> None:
    """Langevin frames at T: requested count, temperature recorded, geometries differ."""
    water = _water()
    frames = md_sampling(water, HarmonicBonds(water), 300.0, 4, np.random.default_rng(1),
                         interval=5, equilibration=10)
    assert len(frames) == 4 and all(f.info["temperature"] == 300.0 for f in frames)
    assert not np.allclose(frames[0].positions, frames[1].positions)
    assert frames[0].calc is None


def test_query_by_committee() -> None:
    """ρ = σ/√N in kcal/mol/√atom; selected above the threshold, largest first."""
    small, big = _h2(), _water()
    calc = Committee(0.01)  # σ = 0.01 eV × N_atoms
    selected, rho = query_by_committee([small, big], calc, threshold=0.3)
    expected = [0.02 * 23.0605 / np.sqrt(2), 0.03 * 23.0605 / np.sqrt(3)]
    np.testing.assert_allclose(rho, expected, rtol=1e-3)
    assert selected == [1, 0]
    selected, _ = query_by_committee([small, big], calc, threshold=0.35)
    assert selected == [1]
    with pytest.raises(SamplingError, match="energy_std"):
        query_by_committee([small], HarmonicBonds(small))


def test_interleave_and_round_robin() -> None:
    """Orderings used for labelling queues."""
    assert round_robin([[1, 2, 3], [4], [5, 6]]) == [1, 4, 5, 2, 6, 3]
    assert interleave([["a", "b", "c", "d"], ["x", "y"]]) == ["a", "x", "b", "c", "y", "d"]


def test_atoms_from_smiles() -> None:
    """ETKDG embedding: hydrogens added, deterministic with a seed; bad SMILES raise."""
    from ase_mlpot.datasets.sampling import atoms_from_smiles

    first = atoms_from_smiles("CCO", seed=7)[0]
    assert first.get_chemical_formula() == "C2H6O" and first.info["smiles"] == "CCO"
    np.testing.assert_array_equal(first.positions, atoms_from_smiles("CCO", seed=7)[0].positions)
    with pytest.raises(SamplingError):
        atoms_from_smiles("C1CC")


def test_sample_molecule_with_xtb() -> None:
    """Minimum + normal-mode + MD conformations of water with GFN2-xTB, rounded positions."""
    from ase_mlpot.datasets.sampling import sample_molecule, xtb_calculator

    plan = SamplingPlan(n_conformers=1, n_normal_mode=4, n_md=2)
    entries = sample_molecule("O", "water", xtb_calculator(), plan, seed=1)
    methods = [e.source["method"] for e in entries]
    assert methods[0] == "minimum"
    assert methods.count("normal_mode") == 4 and methods.count("md") == 2
    for e in entries:
        assert e.molecule == "water" and e.smiles == "O"
        np.testing.assert_array_equal(e.positions, np.round(e.positions, 6))
    assert len({e.geometry_hash for e in entries}) == len(entries)
