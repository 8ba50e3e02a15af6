"""What limits the zoo's cross-molecule CC metric: the DFT stage, or the CC correction?

The metric (issue 7): on the held-out CC conformations, the RMSE of the energy errors after one
least-squares per-element offset. Every CC geometry also has a wB97X/6-31G* label, so a CC-level
model's error splits into (model − wB97X) + (wB97X − CC). On the held-out set this script
measures, all after the offset, in kcal/mol:

* ``wb97x``: wB97X/6-31G* itself against CC;
* ``wb97x_plus_correction``: wB97X plus an additive atom-type correction against CC. The
  correction writes E_CC − E_wB97X as Σ_t n_t c_t over atom types t (a heavy atom's element, its
  number of bonded neighbours and of bonded hydrogens; one type for all hydrogens; bonds from
  ASE's natural cutoffs), c_t fitted by least squares to the CC conformations of the training
  molecules. It shows how much of the CC − DFT difference a simple additive model of the
  training data carries over to new molecules;
* per model: against CC and against wB97X; a wB97X-level model also with the same correction
  added (``plus_correction_vs_cc``).

Usage (repository root)::

    python zoo/cross_molecule_floor.py dft-general ccx-general zoo/work/cc-only \
        -o zoo/results/cross-molecule-floor-ani.json

(``zoo/train_zoo.py`` runs it on each family's models.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import NeighborList, natural_cutoffs

from ase_mlpot.api import load_artifact_by_name
from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.datasets.store import LabelStore
from ase_mlpot.training.evaluate import remove_element_offset
from ase_mlpot.training.trainer import read_molecule_list
from ase_mlpot.units import EV_TO_KCAL_PER_MOL, HARTREE_TO_KCAL_PER_MOL

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "zoo" / "data"
ELEMENTS = (1, 6, 7, 8)
DFT_LEVEL = "wb97x-631gs"
#: An atom type: element symbol, bonded neighbours, bonded hydrogens (hydrogen: ("H", 0, 0)).
AtomType = tuple[str, int, int]


def atom_types(numbers: Sequence[int], positions: np.ndarray) -> list[AtomType]:
    """The atom type of every atom of one molecule (bonds from ASE's natural cutoffs)."""
    atoms = Atoms(numbers=numbers, positions=positions)
    neighbours = NeighborList(natural_cutoffs(atoms), self_interaction=False, bothways=True)
    neighbours.update(atoms)
    types: list[AtomType] = []
    for index, number in enumerate(numbers):
        if number == 1:
            types.append(("H", 0, 0))
            continue
        bonded, _ = neighbours.get_neighbors(index)
        hydrogens = sum(1 for j in bonded if numbers[j] == 1)
        types.append((chemical_symbols[number], len(bonded), hydrogens))
    return types


def record_types(records: Sequence[dict[str, Any]]) -> list[list[AtomType]]:
    """The atom types of every record (``numbers``, ``positions``)."""
    return [atom_types(r["numbers"], np.asarray(r["positions"])) for r in records]


def type_counts(per_record: Sequence[Sequence[AtomType]], types: Sequence[AtomType]) -> np.ndarray:
    """How often each of ``types`` occurs in each record's atom types (see :func:`record_types`):
    shape ``(n_records, n_types)``; types not in ``types`` are not counted."""
    column = {t: i for i, t in enumerate(types)}
    counts = np.zeros((len(per_record), len(types)))
    for row, atoms in enumerate(per_record):
        for t in atoms:
            if t in column:
                counts[row, column[t]] += 1
    return counts


def fit_atom_type_correction(
    records: Sequence[dict[str, Any]], differences: np.ndarray
) -> tuple[list[AtomType], np.ndarray, float]:
    """Least-squares increments c_t with differences ≈ Σ_t n_t c_t.

    Args:
        records: Training conformations (``numbers``, ``positions``).
        differences: The quantity to fit per record, shape ``(n,)`` (kcal/mol).

    Returns:
        The types seen in training, their increments (minimum-norm solution) and the RMSE of the
        fit on the training records.
    """
    per_record = record_types(records)
    types = sorted({t for atoms in per_record for t in atoms})
    counts = type_counts(per_record, types)  # (n, n_types)
    increments = np.linalg.lstsq(counts, differences, rcond=None)[0]  # (n_types,)
    return types, increments, float(np.sqrt(np.mean((counts @ increments - differences) ** 2)))


def element_counts(records: Sequence[dict[str, Any]]) -> np.ndarray:
    """Atoms of H, C, N, O per record: shape ``(n, 4)``."""
    return np.array([[r["numbers"].count(z) for z in ELEMENTS] for r in records], dtype=float)


def offset_rmse(errors: np.ndarray, records: Sequence[dict[str, Any]]) -> float:
    """RMSE of ``errors`` (kcal/mol) after one per-element offset."""
    corrected, _ = remove_element_offset(errors, element_counts(records))
    return float(np.sqrt(np.mean(corrected**2)))


def model_energies(name_or_path: str,
                   records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, str, str | None]:
    """Energies (kcal/mol) of a zoo model or artifact folder, float64 on the CPU; the model's
    name and the level of theory it was trained on."""
    artifact, _ = load_artifact_by_name(name_or_path, dtype=torch.float64)
    calc = MLPotCalculator(artifact.model, device="cpu", dtype=torch.float64)
    energies = []
    for record in records:
        atoms = Atoms(numbers=record["numbers"], positions=record["positions"])
        atoms.calc = calc
        energies.append(atoms.get_potential_energy() * EV_TO_KCAL_PER_MOL)
    model = artifact.metadata.get("model", {})
    return np.array(energies), artifact.name or str(name_or_path), model.get("level_of_theory")


def labelled(path: Path) -> list[dict[str, Any]]:
    """The successful records of a label store."""
    return [r for r in LabelStore(path).latest().values() if r.get("status") == "ok"]


def analyse(models: Sequence[str], cc_store: Path, dft_store: Path,
            test_molecules: Path) -> dict[str, Any]:
    """Every number of the module docstring, as a JSON-serialisable dict."""
    held_out = set(read_molecule_list(test_molecules))
    dft = {r["geometry_hash"]: r for r in labelled(dft_store)}
    cc = [r for r in labelled(cc_store) if r["geometry_hash"] in dft]
    test = [r for r in cc if r["molecule"] in held_out]
    train = [r for r in cc if r["molecule"] not in held_out]
    if not test or not train:
        raise ValueError("need CC labels of held-out and of training molecules")

    def energies(records: Sequence[dict[str, Any]], source: dict[str, Any] | None) -> np.ndarray:
        return np.array([(source[r["geometry_hash"]] if source else r)["energy"]
                         for r in records]) * HARTREE_TO_KCAL_PER_MOL  # (n,)

    types, increments, train_rmse = fit_atom_type_correction(
        train, energies(train, None) - energies(train, dft))
    correction = type_counts(record_types(test), types) @ increments  # (n_test,) | kcal/mol
    e_cc, e_dft = energies(test, None), energies(test, dft)
    result: dict[str, Any] = {
        "unit": "kcal/mol, RMSE after one per-element offset fitted on the held-out set",
        "held_out": {"conformations": len(test), "molecules": len({r["molecule"] for r in test})},
        "correction": {"training_conformations": len(train),
                       "training_molecules": len({r["molecule"] for r in train}),
                       "atom_types": len(types), "training_rmse": train_rmse},
        "wb97x": offset_rmse(e_dft - e_cc, test),
        "wb97x_plus_correction": offset_rmse(e_dft + correction - e_cc, test),
        "models": {},
    }
    for name_or_path in models:
        e_model, name, level = model_energies(name_or_path, test)
        row = {"level_of_theory": level, "vs_cc": offset_rmse(e_model - e_cc, test),
               "vs_wb97x": offset_rmse(e_model - e_dft, test)}
        if level == DFT_LEVEL:  # a DFT model plus the CC correction
            row["plus_correction_vs_cc"] = offset_rmse(e_model + correction - e_cc, test)
        result["models"][name] = row
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: print the table, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help="zoo name or artifact folder")
    parser.add_argument("--cc", type=Path, default=DATA / "labels-ccsdt-cbs.jsonl")
    parser.add_argument("--dft", type=Path, default=DATA / "labels-wb97x-631gs.jsonl")
    parser.add_argument("--test-molecules", type=Path,
                        default=ROOT / "zoo" / "recipes" / "test-molecules.txt")
    parser.add_argument("-o", "--output", type=Path, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    result = analyse(args.models, args.cc, args.dft, args.test_molecules)
    held = result["held_out"]
    print(f"held-out CC: {held['conformations']} conformations of {held['molecules']} molecules;"
          f" {result['unit']}")
    print(f"  wB97X/6-31G* vs CC                      {result['wb97x']:5.2f}")
    print(f"  wB97X + atom-type correction vs CC      {result['wb97x_plus_correction']:5.2f}")
    for name, row in result["models"].items():
        corrected = row.get("plus_correction_vs_cc")
        print(f"  {name:28s} vs CC {row['vs_cc']:5.2f}  vs wB97X {row['vs_wb97x']:5.2f}"
              + ("" if corrected is None else f"  + correction vs CC {corrected:5.2f}"))
    if args.output is not None:
        args.output.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
