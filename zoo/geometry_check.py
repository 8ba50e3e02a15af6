"""Relaxed geometries and harmonic frequencies of small molecules: zoo models vs wB97X/6-31G*.

Energy metrics (``zoo/evaluate_zoo.py``) do not show whether a model puts the minimum in the right
place, yet relaxation and MD are what users run. For water, ammonia, methane, formaldehyde and
methanol this script relaxes each molecule (BFGS, fmax 1e-4 eV/Å; 0.02 for DFT, whose forces
carry grid noise) with the ``wb97x-631gs`` level of the corpus (computed once, cached in
``zoo/results/geometry-reference.json``) and with every model given, and compares bond lengths,
bond angles, the Kabsch-aligned RMSD and the harmonic frequencies (finite differences, ASE
``Vibrations``).

Usage (repository root)::

    PYTHONPATH=. python zoo/geometry_check.py ccx-general dft-general so3krates-ccx-general \
        so3krates-dft-general -o zoo/results/geometries.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.data import covalent_radii
from ase.optimize import BFGS
from ase.vibrations import Vibrations

from ase_mlpot.units import HARTREE_TO_EV

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = RESULTS / "geometry-reference.json"
MOLECULES = ("H2O", "NH3", "CH4", "H2CO", "CH3OH")
FMAX = 1e-4  # eV/Å, models
#: DFT forces carry up to ~0.01 eV/Å of integration-grid noise (grid level 3): its minima are
#: converged less tightly (bond lengths to ~1e-3 Å, angles to ~0.2°).
FMAX_REFERENCE = 2e-2  # eV/Å


class LevelCalculator(Calculator):
    """An ASE calculator for one of the corpus' levels of theory (energies and forces)."""

    implemented_properties: ClassVar[list[str]] = ["energy", "forces"]

    def __init__(self, level: str = "wb97x-631gs") -> None:
        from ase_mlpot.datasets.levels import get_level

        super().__init__()
        self.level = get_level(level)

    def calculate(self, atoms: Atoms | None = None, properties: Any = None,
                  system_changes: Any = all_changes) -> None:
        from ase_mlpot.datasets.levels import Geometry

        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        result = self.level.compute(Geometry(numbers=self.atoms.numbers.copy(),
                                             positions=self.atoms.positions.copy()))
        if not result.ok or result.forces is None:
            raise RuntimeError(f"{self.level.tag} failed: {result.error}")
        self.results = {"energy": result.energy * HARTREE_TO_EV,
                        "forces": result.forces * HARTREE_TO_EV}


def bonds(atoms: Atoms) -> list[tuple[int, int]]:
    """Bonded pairs: closer than 1.2 × the sum of covalent radii."""
    out = []
    for i, j in itertools.combinations(range(len(atoms)), 2):
        limit = 1.2 * (covalent_radii[atoms.numbers[i]] + covalent_radii[atoms.numbers[j]])
        if atoms.get_distance(i, j) < limit:
            out.append((i, j))
    return out


def angles(atoms: Atoms, bonded: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Bond angles i–j–k of every pair of bonds sharing atom j."""
    out = []
    for j in range(len(atoms)):
        partners = sorted({b for a, b in bonded if a == j} | {a for a, b in bonded if b == j})
        out += [(i, j, k) for i, k in itertools.combinations(partners, 2)]
    return out


def relax_and_vibrate(atoms: Atoms, calc: Calculator, fmax: float = FMAX) -> dict[str, Any]:
    """Relaxed positions and harmonic frequencies (cm⁻¹, the 3N − 6 largest, real parts)."""
    atoms = atoms.copy()
    atoms.calc = calc
    if not BFGS(atoms, logfile=None).run(fmax=fmax, steps=500):
        raise RuntimeError(f"{atoms.get_chemical_formula()}: no minimum within 500 BFGS steps "
                           f"(fmax {fmax} eV/Å)")
    with tempfile.TemporaryDirectory() as folder:
        vibrations = Vibrations(atoms, name=str(Path(folder) / "vib"))
        vibrations.run()
        frequencies = np.sort(vibrations.get_frequencies().real)[6:]  # (3N - 6,) | cm⁻¹
    return {"positions": atoms.positions.tolist(), "frequencies": frequencies.tolist()}


def kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD of two conformations (same atom order) after optimal rotation and translation."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)  # (n, 3) each
    u, _, vt = np.linalg.svd(a.T @ b)
    sign = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt  # (3, 3)
    return float(np.sqrt(np.mean(np.sum((a @ rotation - b) ** 2, axis=1))))


def compare(name: str, model: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Bond, angle, RMSD and frequency errors of one molecule."""
    ref_atoms = Atoms(molecule(name).numbers, positions=reference["positions"])
    atoms = Atoms(molecule(name).numbers, positions=model["positions"])
    bonded = bonds(ref_atoms)
    bond_errors = [atoms.get_distance(i, j) - ref_atoms.get_distance(i, j) for i, j in bonded]
    angle_errors = [atoms.get_angle(*triple) - ref_atoms.get_angle(*triple)
                    for triple in angles(ref_atoms, bonded)]
    frequency_errors = np.subtract(model["frequencies"], reference["frequencies"])
    return {
        "rmsd_a": kabsch_rmsd(atoms.positions, ref_atoms.positions),
        "max_bond_error_a": float(np.max(np.abs(bond_errors))),
        "max_angle_error_deg": float(np.max(np.abs(angle_errors))) if angle_errors else 0.0,
        "frequency_mae_cm": float(np.mean(np.abs(frequency_errors))),
        "frequency_max_error_cm": float(np.max(np.abs(frequency_errors))),
        "frequencies_cm": model["frequencies"],
    }


def reference_geometries() -> dict[str, Any]:
    """wB97X/6-31G* minima and frequencies (computed once, then read from the cache)."""
    cached = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
    missing = [name for name in MOLECULES if name not in cached]
    if missing:
        calc = LevelCalculator()
        for name in missing:
            cached[name] = relax_and_vibrate(molecule(name), calc, FMAX_REFERENCE)
            REFERENCE.write_text(json.dumps(cached, indent=1))
    return cached


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from ase_mlpot import load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="zoo names or artifact folders")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "geometries.json")
    args = parser.parse_args(argv)
    reference = reference_geometries()
    report: dict[str, Any] = {"reference": "wb97x-631gs", "fmax_ev_per_a": FMAX, "models": {}}
    print("| model | molecule | RMSD (Å) | max bond error (Å) | max angle error (°) "
          "| frequency MAE / max (cm⁻¹) |\n|---|---|---|---|---|---|")
    for name in args.models:
        calc = load(name, device="cpu")
        per_molecule = {}
        for formula in MOLECULES:
            result = compare(formula, relax_and_vibrate(molecule(formula), calc),
                             reference[formula])
            per_molecule[formula] = result
            print(f"| {name} | {formula} | {result['rmsd_a']:.3f} | "
                  f"{result['max_bond_error_a']:.3f} | {result['max_angle_error_deg']:.1f} | "
                  f"{result['frequency_mae_cm']:.0f} / {result['frequency_max_error_cm']:.0f} |")
        report["models"][str(name)] = per_molecule
    args.output.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
