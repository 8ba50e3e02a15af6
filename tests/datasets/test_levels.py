"""Levels of theory against COMP6 and against plain pyscf runs (extra ``label``)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from ase.build import molecule
from ase.data import atomic_numbers
from ase.units import Bohr

from ase_mlpot.datasets.errors import UnknownLevelError
from ase_mlpot.datasets.hdf5 import read_ani_h5
from ase_mlpot.datasets.levels import (
    HFSTO3G,
    CCSDTCBSComposite,
    Geometry,
    get_level,
    mp2_cbs_extrapolation,
)
from ase_mlpot.units import HARTREE_TO_KCAL_PER_MOL

#: Water dimer (S66 no. 1) at five of its eight separations, spanning the curve.
WATER_DIMER = "s66x8/mol00"
CURVE_POINTS = [0, 2, 4, 6, 7]


@pytest.fixture(scope="module")
def water_dimer_labels(comp6_path: Path) -> dict[str, np.ndarray]:
    """Our wb97x-631gs labels of five water-dimer geometries and COMP6's stored values."""
    from pyscf import lib

    threads = lib.num_threads()
    lib.num_threads(1)
    try:
        with h5py.File(comp6_path, "r") as fh:
            g = fh[WATER_DIMER]
            numbers = np.array([atomic_numbers[s.decode()] for s in g["species"][()]])
            coords = g["coordinates"][()].astype(np.float64)[CURVE_POINTS]  # (5, 6, 3) | Å
            ref_e = g["energies"][()][CURVE_POINTS]  # (5,) | Hartree
            ref_grad = g["forces"][()].astype(np.float64)[CURVE_POINTS]  # (5, 6, 3) gradients
        level = get_level("wb97x-631gs")
        results = [level.compute(Geometry(numbers, xyz)) for xyz in coords]
    finally:
        lib.num_threads(threads)
    assert all(r.ok for r in results), [r.error for r in results]
    return {
        "energy": np.array([r.energy for r in results]),  # (5,) | Hartree
        "forces": np.stack([r.forces for r in results]),  # (5, 6, 3) | Ha/Å
        "ref_energy": ref_e,
        "ref_gradient": ref_grad,
    }


def test_wb97x_reproduces_comp6_absolute(water_dimer_labels: dict[str, np.ndarray]) -> None:
    """Total energies within 1 mEh of COMP6's wB97X/6-31G* (Gaussian, Cartesian d)."""
    diff = water_dimer_labels["energy"] - water_dimer_labels["ref_energy"]  # (5,) | Hartree
    assert np.max(np.abs(diff)) <= 1e-3, diff


def test_wb97x_reproduces_comp6_relative(water_dimer_labels: dict[str, np.ndarray]) -> None:
    """Energies relative to the curve's first point within 0.3 kcal/mol of COMP6's."""
    ours = water_dimer_labels["energy"] - water_dimer_labels["energy"][0]  # (5,)
    ref = water_dimer_labels["ref_energy"] - water_dimer_labels["ref_energy"][0]  # (5,)
    assert np.max(np.abs(ours - ref)) * HARTREE_TO_KCAL_PER_MOL <= 0.3


def test_comp6_forces_key_holds_gradients(
    water_dimer_labels: dict[str, np.ndarray], comp6_path: Path
) -> None:
    """COMP6 'forces' equal +dE/dr in Ha/Å: our analytic forces match their negative, and
    the reader returns physical forces (negated) that match ours."""
    ours = water_dimer_labels["forces"]  # (5, 6, 3) | Ha/Å, −dE/dr
    stored = water_dimer_labels["ref_gradient"]  # (5, 6, 3)
    scale = np.max(np.abs(ours))
    assert np.max(np.abs(ours + stored)) < 0.05 * scale  # opposite sign: gradients
    assert np.max(np.abs(ours - stored)) > 0.5 * scale  # and clearly not forces
    # Ha/Bohr would be off by a factor 1/0.529: the units are Ha/Å
    assert np.max(np.abs(ours * Bohr + stored)) > 0.2 * scale
    dataset = read_ani_h5(comp6_path)
    read = dataset.groups[WATER_DIMER].forces[CURVE_POINTS]  # (5, 6, 3) | Ha/Å
    np.testing.assert_allclose(read, -stored, rtol=0, atol=1e-7)
    assert np.max(np.abs(read - ours)) < 0.05 * scale


def test_mp2_cbs_formula() -> None:
    """(64 E_QZ − 27 E_TZ)/37 is exact for E(X) = E_∞ + A X⁻³."""
    e_inf, a = -0.3, 0.5
    assert mp2_cbs_extrapolation(e_inf + a / 27, e_inf + a / 64) == pytest.approx(e_inf, abs=1e-14)


def test_composite_components_match_plain_pyscf() -> None:
    """Every composite component equals a separate, plainly written pyscf run for water."""
    from pyscf import cc, df, gto, lib, mp, scf
    from pyscf.mp.dfmp2 import DFMP2

    threads = lib.num_threads()
    lib.num_threads(1)
    try:
        water = molecule("H2O")
        result = CCSDTCBSComposite().compute(Geometry(water.numbers, water.positions))
        assert result.ok, result.error
        assert result.forces is None
        c = result.components
        atom = [(s, tuple(p)) for s, p in zip(water.get_chemical_symbols(), water.positions,
                                                strict=True)]
        ref: dict[str, float] = {}
        mol = gto.M(atom=atom, basis="cc-pvdz", unit="Angstrom", verbose=0)
        hf = scf.RHF(mol)
        hf.conv_tol = 1e-10
        ref["hf_dz"] = hf.kernel()
        ref["mp2_corr_dz"] = mp.MP2(hf, frozen=1).kernel()[0]
        ccsd = cc.CCSD(hf, frozen=1)
        ccsd.conv_tol = 1e-8
        ref["ccsd_corr_dz"] = ccsd.kernel()[0]
        ref["ccsd_t_corr_dz"] = ccsd.ccsd_t()
        for tag, basis in (("tz", "cc-pvtz"), ("qz", "cc-pvqz")):
            mol_x = gto.M(atom=atom, basis=basis, unit="Angstrom", verbose=0)
            hf_x = scf.RHF(mol_x).density_fit(auxbasis=f"{basis}-jkfit")
            hf_x.conv_tol = 1e-10
            ref[f"hf_{tag}"] = hf_x.kernel()
            dfmp2 = DFMP2(hf_x, frozen=1)
            dfmp2.with_df = df.DF(mol_x, auxbasis=f"{basis}-ri")
            ref[f"mp2_corr_{tag}"] = dfmp2.kernel()[0]
    finally:
        lib.num_threads(threads)
    for key, value in ref.items():
        assert c[key] == pytest.approx(value, abs=2e-7), key
    cbs = (64 * ref["mp2_corr_qz"] - 27 * ref["mp2_corr_tz"]) / 37
    delta = ref["ccsd_corr_dz"] + ref["ccsd_t_corr_dz"] - ref["mp2_corr_dz"]
    assert c["mp2_corr_cbs"] == pytest.approx(cbs, abs=3e-7)
    assert c["cc_minus_mp2_dz"] == pytest.approx(delta, abs=3e-7)
    assert result.energy == pytest.approx(ref["hf_qz"] + cbs + delta, abs=5e-7)
    # physically sensible: QZ below TZ, CBS correlation below QZ, (T) negative
    assert ref["hf_qz"] < ref["hf_tz"] < ref["hf_dz"]
    assert c["mp2_corr_cbs"] < c["mp2_corr_qz"] < c["mp2_corr_tz"] < 0
    assert c["ccsd_t_corr_dz"] < 0
    assert result.convergence["ccsd_dz"]["converged"]


def test_failed_scf_is_a_result_not_an_exception() -> None:
    """An SCF that cannot converge returns ok=False with the reason and the convergence log."""
    water = molecule("H2O")
    level = HFSTO3G(conv_tol=1e-30, max_cycle=2)
    result = level.compute(Geometry(water.numbers, water.positions))
    assert not result.ok
    assert result.energy is None and result.forces is None
    assert "did not converge" in (result.error or "")
    assert result.convergence["scf"]["converged"] is False
    assert result.timings["total"] > 0


def test_open_shell_is_recorded_as_failed() -> None:
    """Only closed shells are supported; an open shell fails cleanly."""
    result = HFSTO3G().compute(Geometry(np.array([1]), np.zeros((1, 3)), multiplicity=2))
    assert not result.ok and "closed-shell" in (result.error or "")


def test_get_level_names_and_versions() -> None:
    """Levels are looked up by name and optional version; unknown ones raise."""
    assert get_level("wb97x-631gs").tag == "wb97x-631gs@v1"
    assert get_level("ccsd(t)-cbs-composite@v1").properties == ("energy",)
    assert get_level("gfn2-xtb").tag == "gfn2-xtb@v1"
    with pytest.raises(UnknownLevelError, match="known"):
        get_level("b3lyp")
    with pytest.raises(UnknownLevelError, match="version"):
        get_level("wb97x-631gs@v9")


def test_gfn2_xtb_matches_tblite_ase_and_finite_differences() -> None:
    """The xTB level returns tblite's energy and forces (Hartree, Hartree/Å), and the forces are
    −∂E/∂r (central differences)."""
    from tblite.ase import TBLite

    from ase_mlpot.datasets.levels import GFN2XTB

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=2)
    level = GFN2XTB(accuracy=0.01)
    result = level.compute(Geometry(atoms.numbers, atoms.positions))
    assert result.ok and result.settings["method"] == "GFN2-xTB"
    atoms.calc = TBLite(method="GFN2-xTB", accuracy=0.01, verbosity=0)
    hartree = atoms.get_potential_energy() / result.energy
    assert hartree == pytest.approx(27.211386, rel=1e-6)
    np.testing.assert_allclose(result.forces * hartree, atoms.get_forces(), atol=1e-8)
    step = 1e-4
    for atom, axis in ((0, 0), (3, 2), (8, 1)):
        energies = []
        for sign in (1, -1):
            displaced = atoms.positions.copy()
            displaced[atom, axis] += sign * step
            energies.append(level.compute(Geometry(atoms.numbers, displaced)).energy)
        numeric = -(energies[0] - energies[1]) / (2 * step)
        assert result.forces[atom, axis] == pytest.approx(numeric, abs=2e-6)
