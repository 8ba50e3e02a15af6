"""Evaluate zoo models on the held-out zoo labels and on two public benchmark sets.

Usage (from the repository root)::

    .venv/bin/python zoo/evaluate_zoo.py MODEL [MODEL ...] --shared ../shared/data -o zoo/results

``MODEL`` is a zoo name or an artifact folder. Every model is evaluated in float64 on the CPU,
and ``<output>/<model-name>.json`` gets:

* ``held_out_cc`` / ``held_out_dft``: :func:`ase_mlpot.training.evaluate.evaluate_model` on the
  molecules of ``zoo/recipes/test-molecules.txt`` (held out of every zoo model's training)
  labelled in ``zoo/data/labels-ccsdt-cbs.jsonl`` / ``zoo/data/labels-wb97x-631gs.jsonl``:
  energy and force errors, relative conformer and isomerisation energies, ensemble calibration
  (kcal/mol and eV; see that module). ``null`` when the labels are missing or none of the
  held-out molecules is labelled yet.
* ``out_of_fold_cc``: :func:`ase_mlpot.training.evaluate.evaluate_out_of_fold` on every other
  CC-labelled molecule, each predicted by the member whose validation fold holds it (every stage
  of the chain uses the same folds), so the score covers ~200 molecules, unusual ones included,
  rather than the 12 held-out ones. ``null`` for a model without ``training.json``.
* ``hc7_isol6``: the 12 reaction energies ΔE = E(products) − E(reactants) of HC7/11 and ISOL6
  (CHNO part), kcal/mol: model, reference, error (model − reference); MAD and RMSD per subset
  (HC7, ISOL6), next to the same numbers of the published ANI-1ccx and ANI-1x ensembles (and the
  wB97X/6-31G* reference) from the benchmark's README.
* ``s66x10``: interaction energies E(dimer) − E(A) − E(B) (no counterpoise, unrelaxed monomers)
  of the 660 S66x10 dimers against the benchmark, kcal/mol: MAE, RMSE and MSE (model −
  benchmark; positive = underbinding) over all dimers, z = 1.0 and z ≥ 0.9, next to the ANI-1ccx
  and ANI-1x baselines of the benchmark's README; plus every dimer's values.
* ``model``: the provenance (name, version, revision, weights sha256, pinning) and
  ``ensemble_size``.

A compact summary is printed to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from ase_mlpot.api import load_artifact_by_name
from ase_mlpot.calculator import MLPotCalculator
from ase_mlpot.errors import MLPotError
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.testing.benchmarks import (
    Reaction,
    interaction_energy,
    reaction_energy,
    read_hc7_isol6,
    read_s66x10,
)
from ase_mlpot.training.evaluate import evaluate_model, evaluate_out_of_fold, out_of_fold_settings
from ase_mlpot.training.trainer import load_training_data, read_molecule_list
from ase_mlpot.units import EV_TO_KCAL_PER_MOL

ROOT = Path(__file__).resolve().parents[1]
CC_LABELS = ROOT / "zoo" / "data" / "labels-ccsdt-cbs.jsonl"
DFT_LABELS = ROOT / "zoo" / "data" / "labels-wb97x-631gs.jsonl"
TEST_MOLECULES = ROOT / "zoo" / "recipes" / "test-molecules.txt"

#: S66x10 subsets: name → which dimers (by ``info["z"]``) count.
S66_SUBSETS: dict[str, Callable[[float], bool]] = {
    "all": lambda z: True,
    "z=1.0": lambda z: math.isclose(z, 1.0),
    "z>=0.9": lambda z: z >= 0.9 - 1e-9,
}

logger = logging.getLogger("evaluate_zoo")


# ---------------------------------------------------------------------------- statistics


def _mad_rmsd(errors: Sequence[float]) -> dict[str, float]:
    """Mean absolute and root-mean-square deviation (unit of ``errors``)."""
    values = np.asarray(errors, dtype=np.float64)
    return {"mad": float(np.mean(np.abs(values))), "rmsd": float(np.sqrt(np.mean(values**2)))}


def _mae_rmse_mse(errors: Sequence[float]) -> dict[str, float]:
    """Count, mean absolute, root-mean-square and mean signed error (unit of ``errors``)."""
    values = np.asarray(errors, dtype=np.float64)
    return {
        "n": len(values),
        "mae": float(np.mean(np.abs(values))),
        "rmse": float(np.sqrt(np.mean(values**2))),
        "mse": float(np.mean(values)),
    }


# ---------------------------------------------------------------------------- held-out labels


def held_out_metrics(
    model: PotentialModel, labels: Path, test_molecules: Path
) -> dict[str, Any] | None:
    """Errors on the held-out molecules of one label store, or ``None`` when there are none.

    Args:
        model: The model (float64).
        labels: Label store (JSON lines, Hartree and Å).
        test_molecules: The held-out molecule list.

    Returns:
        The metrics of :func:`~ase_mlpot.training.evaluate.evaluate_model`, or ``None`` when the
        files are missing or no held-out molecule is labelled.
    """
    try:
        held_out = read_molecule_list(test_molecules)
        dataset = load_training_data([labels])
        return evaluate_model(model, dataset, molecules=held_out)
    except (OSError, ValueError, MLPotError) as error:
        logger.warning("no held-out evaluation on %s: %s", labels, error)
        return None


def out_of_fold_metrics(model: PotentialModel, folder: Path,
                        labels: Path) -> dict[str, Any] | None:
    """Cross-validated errors on every labelled molecule that some member validated on (not
    held out, not in every member's training set), or ``None`` for a model without a training
    record (its folds unknown) or without labels.

    Args:
        model: The model (float64).
        folder: Its artifact folder (``training.json`` gives the folds).
        labels: Label store (JSON lines, Hartree and Å).

    Returns:
        The metrics of :func:`~ase_mlpot.training.evaluate.evaluate_out_of_fold`.
    """
    try:
        split_seed, excluded = out_of_fold_settings(folder / "training.json")
        return evaluate_out_of_fold(model, load_training_data([labels]), split_seed=split_seed,
                                    exclude_molecules=excluded)
    except (OSError, ValueError, MLPotError) as error:
        logger.warning("no out-of-fold evaluation on %s: %s", labels, error)
        return None


# ---------------------------------------------------------------------------- HC7 / ISOL6


def _energies_kcal(calc: MLPotCalculator, molecules: dict[str, Atoms]) -> dict[str, float]:
    """Potential energy of every molecule, kcal/mol."""
    energies = {}
    for name, atoms in molecules.items():
        atoms = atoms.copy()
        atoms.calc = calc
        energies[name] = atoms.get_potential_energy() * EV_TO_KCAL_PER_MOL
    return energies


def _reaction_summary(reactions: Sequence[Reaction], values: dict[str, float]) -> dict[str, Any]:
    """MAD/RMSD vs reference of the model and of every published method, per subset."""
    summary: dict[str, Any] = {}
    for subset in sorted({r.subset for r in reactions}, key=["HC7", "ISOL6"].index):
        members = [r for r in reactions if r.subset == subset]
        entry: dict[str, Any] = {"n": len(members)}
        entry.update(_mad_rmsd([values[r.id] - r.reference for r in members]))
        entry["published"] = {
            method: _mad_rmsd([r.published[method] - r.reference for r in members])
            for method in members[0].published
        }
        summary[subset] = entry
    return summary


def hc7_isol6_metrics(calc: MLPotCalculator, folder: Path) -> dict[str, Any]:
    """Reaction energies of HC7/11 + ISOL6 and their errors (kcal/mol).

    Args:
        calc: Calculator of the model (eV).
        folder: The ``hc7-isol6`` benchmark folder.
    """
    molecules, reactions = read_hc7_isol6(folder)
    energies = _energies_kcal(calc, molecules)
    values = {r.id: reaction_energy(energies, r) for r in reactions}
    rows = [
        {
            "id": r.id,
            "subset": r.subset,
            "model": values[r.id],
            "reference": r.reference,
            "error": values[r.id] - r.reference,
            "published": dict(r.published),
        }
        for r in reactions
    ]
    return {
        "unit": "kcal/mol",
        "sign": "dE = products - reactants; error = model - reference",
        "reactions": rows,
        "summary": _reaction_summary(reactions, values),
    }


# ---------------------------------------------------------------------------- S66x10


def read_s66x10_baselines(readme: Path) -> dict[str, dict[str, dict[str, float]]]:
    """The ANI baseline table of the S66x10 README (kcal/mol).

    Returns:
        ``{model: {subset: {mae, rmse, mse}}}`` with the subsets of :data:`S66_SUBSETS`.

    Raises:
        ValueError: No baseline rows found.
    """
    baselines: dict[str, dict[str, dict[str, float]]] = {}
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.fullmatch(r"ANI-\w+", cells[0]):
            continue
        baselines[cells[0].lower()] = {
            subset: dict(zip(("mae", "rmse", "mse"), map(float, cell.split("/")), strict=True))
            for subset, cell in zip(S66_SUBSETS, cells[1:], strict=True)
        }
    if not baselines:
        raise ValueError(f"no ANI baseline table in {readme}")
    return baselines


def s66x10_metrics(calc: MLPotCalculator, folder: Path) -> dict[str, Any]:
    """Interaction-energy errors on S66x10 (kcal/mol).

    Args:
        calc: Calculator of the model (eV).
        folder: The ``s66x10`` benchmark folder.
    """
    dimers = read_s66x10(folder / "s66x10_dimers.extxyz")
    rows = []
    for atoms in dimers:
        value = interaction_energy(calc, atoms) * EV_TO_KCAL_PER_MOL
        benchmark = atoms.info["benchmark_IE_kcal"]
        rows.append(
            {
                "system_no": atoms.info["system_no"],
                "system": atoms.info["system"],
                "z": atoms.info["z"],
                "model": value,
                "benchmark": benchmark,
            }
        )
    subsets = {
        name: _mae_rmse_mse([r["model"] - r["benchmark"] for r in rows if keep(r["z"])])
        for name, keep in S66_SUBSETS.items()
    }
    return {
        "unit": "kcal/mol",
        "sign": "error = model - benchmark (positive MSE = underbinding)",
        "n": len(rows),
        "subsets": subsets,
        "baselines": read_s66x10_baselines(folder / "README.md"),
        "dimers": rows,
    }


# ---------------------------------------------------------------------------- driver


def evaluate(name_or_path: str, shared: Path) -> dict[str, Any]:
    """All metrics of the module docstring for one model.

    Args:
        name_or_path: Zoo name or artifact folder.
        shared: The shared data folder (holding ``hc7-isol6/`` and ``s66x10/``).
    """
    artifact, provenance = load_artifact_by_name(name_or_path, dtype=torch.float64)
    model = artifact.model
    result: dict[str, Any] = {
        "model": {"provenance": provenance, "ensemble_size": model.ensemble_size},
    }
    for key, labels in (("held_out_cc", CC_LABELS), ("held_out_dft", DFT_LABELS)):
        logger.info("%s: %s", key, labels)
        result[key] = held_out_metrics(model, labels, TEST_MOLECULES)
    logger.info("out_of_fold_cc: %s", CC_LABELS)
    result["out_of_fold_cc"] = out_of_fold_metrics(model, artifact.path, CC_LABELS)
    calc = MLPotCalculator(model, device="cpu", dtype=torch.float64, provenance=provenance)
    logger.info("HC7/ISOL6")
    result["hc7_isol6"] = hc7_isol6_metrics(calc, shared / "hc7-isol6")
    logger.info("S66x10")
    result["s66x10"] = s66x10_metrics(calc, shared / "s66x10")
    return result


def _json_default(value: Any) -> Any:
    """JSON form of numpy scalars and arrays, paths and sets."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _file_name(name: str) -> str:
    """A safe file name for a model name."""
    return re.sub(r"[^\w.+-]", "_", name) or "model"


def _held_out_line(label: str, metrics: dict[str, Any] | None) -> str:
    """One summary line of a held-out evaluation."""
    if metrics is None:
        return f"  {label}: -"
    energy = metrics["energy"]
    text = (f"  {label}: {metrics['conformations']} conf / {metrics['molecules']} mol, "
            f"E MAE {energy['mae_kcal_mol']:.2f} RMSE {energy['rmse_kcal_mol']:.2f}")
    if "relative_conformer_energy" in metrics:
        text += f", rel. conf. RMSE {metrics['relative_conformer_energy']['rmse_kcal_mol']:.2f}"
    return text + " kcal/mol"


def summary_lines(name: str, result: dict[str, Any]) -> list[str]:
    """A compact human-readable summary of one model's results."""
    lines = [f"{name} (ensemble of {result['model']['ensemble_size']})"]
    lines.append(_held_out_line("held-out CC ", result["held_out_cc"]))
    lines.append(_held_out_line("held-out DFT", result["held_out_dft"]))
    lines.append(_held_out_line("out-of-fold CC", result["out_of_fold_cc"]))
    for subset, entry in result["hc7_isol6"]["summary"].items():
        published = ", ".join(f"{m} {v['mad']:.2f}" for m, v in entry["published"].items())
        lines.append(f"  {subset:<6} MAD {entry['mad']:6.2f} RMSD {entry['rmsd']:6.2f} kcal/mol"
                     f" (n={entry['n']}; MAD {published})")
    s66 = result["s66x10"]
    for subset, entry in s66["subsets"].items():
        base = ", ".join(f"{m} {v[subset]['mae']:.2f}" for m, v in s66["baselines"].items())
        lines.append(f"  S66x10 {subset:<6} MAE {entry['mae']:5.2f} RMSE {entry['rmse']:5.2f}"
                     f" MSE {entry['mse']:+5.2f} kcal/mol (n={entry['n']}; MAE {base})")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description="Evaluate zoo models on held-out labels, HC7/ISOL6 and S66x10."
    )
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="zoo name or artifact folder")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data",
                        help="shared data folder with hc7-isol6/ and s66x10/"
                             " (default: ../shared/data beside the checkout)")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "zoo" / "results",
                        help="folder for <model-name>.json (default: zoo/results)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice; 1 avoids"
                             " oversubscription on a busy machine)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate every model, write its JSON and print the summary.

    Returns:
        The exit status (0).
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    for name_or_path in args.models:
        start = time.perf_counter()
        result = evaluate(name_or_path, args.shared)
        name = result["model"]["provenance"].get("name") or Path(name_or_path).name
        path = args.output / f"{_file_name(name)}.json"
        path.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
        logger.info("%s: %.1f s, wrote %s", name, time.perf_counter() - start, path)
        print("\n".join(summary_lines(name, result)))
        print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
