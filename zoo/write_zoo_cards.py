"""Write the model cards of the zoo's own bundled models from what was actually trained.

For each model it reads ``ase_mlpot/weights/<name>/training.json`` (recipe, data counts, held-out
molecules, parent, frozen layers, validation metrics) and, when present,
``zoo/results/<name>.json`` (``zoo/evaluate_zoo.py``: held-out CC/DFT errors, HC7/ISOL6,
S66x10), and writes ``zoo/cards/<name>.md`` (registry front matter + Markdown). Then run
``python zoo/make_registry.py``. Usage::

    python zoo/write_zoo_cards.py dft-general ccx-general
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "ase_mlpot" / "weights"
RESULTS = ROOT / "zoo" / "results"
CARDS = ROOT / "zoo" / "cards"

LEVELS = {
    "wb97x-631gs": "wB97X/6-31G* (Cartesian d, density fitting; pyscf)",
    "ccsd(t)-cbs-composite": "CCSD(T)/CBS composite (HF/QZ + MP2/CBS[TZ,QZ] + "
                             "(CCSD(T)-MP2)/DZ; pyscf)",
}
ZOO_CITATION = {"text": "ase_mlpot: a zoo of machine-learned interatomic potentials for ASE and"
                        " pyiron (see CITATION.cff)", "doi": None}
ARCHITECTURE_CITATIONS = {
    "ani": {"text": "J. S. Smith et al., \"Approaching coupled cluster accuracy with a"
                    " general-purpose neural network potential through transfer learning\","
                    " Nat. Commun. 10, 2903 (2019)", "doi": "10.1038/s41467-019-10827-4"},
    "so3krates": {"text": "J. T. Frank, O. T. Unke, K.-R. Müller, S. Chmiela, \"A Euclidean"
                          " transformer for fast and stable machine learned force fields\","
                          " Nat. Commun. 15, 6539 (2024)", "doi": "10.1038/s41467-024-50620-6"},
}

logger = logging.getLogger("write_zoo_cards")


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def metrics_from_results(results: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers (kcal/mol) for the registry's ``metrics`` field."""
    out: dict[str, Any] = {}
    for split in ("held_out_cc", "held_out_dft", "out_of_fold_cc"):
        block = results.get(split)
        if not block:
            continue
        prefix = split + "_"
        for key, name in (("relative_conformer_energy", "relative_conformer_rmse_kcal_mol"),
                          ("energy_after_element_offset", "after_element_offset_rmse_kcal_mol"),
                          ("isomerization_energy", "isomerization_rmse_kcal_mol")):
            if key in block:
                out[prefix + name] = _round(block[key]["rmse_kcal_mol"])
        if "forces" in block:
            out[prefix + "force_mae_kcal_mol_per_a"] = _round(block["forces"]["mae_kcal_mol_per_a"])
        out[prefix + "molecules"] = block["molecules"]
        out[prefix + "conformations"] = block["conformations"]
    hc = results.get("hc7_isol6") or {}
    for subset, stats in hc.get("summary", {}).items():
        out[f"{subset.lower()}_mad_kcal_mol"] = _round(stats["mad"])
    s66 = (results.get("s66x10") or {}).get("subsets", {})
    if "all" in s66:
        out["s66x10_mae_kcal_mol"] = _round(s66["all"]["mae"])
    return out


def front_matter(name: str, training: dict[str, Any], config: dict[str, Any],
                 metrics: dict[str, Any]) -> dict[str, Any]:
    """The registry entry of a bundled zoo model (``config``: its artifact ``config.json``)."""
    recipe = training["recipe"]
    parent = (training.get("parent") or {}).get("name")
    level = LEVELS.get(training["level_of_theory"], training["level_of_theory"])
    forces_level = training.get("forces_level_of_theory")
    if forces_level and forces_level != training["level_of_theory"]:
        level = (f"{level} energies, with the {LEVELS.get(forces_level, forces_level)} forces of"
                 " the same geometries")
    fine_tuned_from_dft = parent is not None and training["level_of_theory"] != "wb97x-631gs"
    level_of_theory = ({"pretraining": LEVELS["wb97x-631gs"], "fine_tuning": level}
                       if fine_tuned_from_dft else {"pretraining": level})
    if parent is not None and not (CARDS / f"{parent}.md").is_file():
        parent = None  # an unpublished intermediate (xtb-pretrain): named in the card body
    return {
        "name": name,
        "version": recipe.get("version", "1"),
        "description": recipe["description"],
        "aliases": [],
        "architecture": config["architecture"],
        "format": "artifact",
        "third_party": False,
        "elements": config["elements"],
        "level_of_theory": level_of_theory,
        "units": config["units"],
        "training_data": (f"{training['conformations']} conformations of"
                          f" {training['molecules']} CHNO molecules of the ase_mlpot corpus"
                          f" (zoo/data), {training['level_of_theory']}"
                          + (f", starting from {(training.get('parent') or {}).get('name')}"
                             if training.get("parent") else "")
                          + f"; {len(training['held_out_molecules'])} molecules held out"),
        "metrics": metrics,
        "license": "MIT",
        "citations": [ZOO_CITATION, ARCHITECTURE_CITATIONS[config["architecture"]]],
        "parent": parent,
        "gated": False,
        "bundled": {"package": "ase_mlpot", "path": f"weights/{name}"},
        "hub": None,
        "reference_energies": None,
        "min_version": None,
        "max_version": None,
        "deprecated": False,
        "successor": None,
    }


def body(name: str, training: dict[str, Any], results: dict[str, Any] | None) -> str:
    """The Markdown part of the card."""
    recipe = training["recipe"]
    lines = [f"# {name}", "", recipe["description"] + ".", "",
             f"**Status: preliminary (v{recipe.get('version', '1')}).** Trained on an early"
             " snapshot of the project's own corpus, which is still being labelled; the accuracy"
             " targets of the zoo are not met yet (numbers below). Chemical scope: neutral"
             " closed-shell H, C, N, O molecules with up to 7 heavy atoms, near thermal"
             " equilibrium geometries.", "",
             "Reproduce: `python zoo/train_zoo.py` (every stage of the chain, from the committed"
             f" corpus), or this stage alone: `mlpot-zoo train zoo/recipes/{name}.toml -o"
             f" ase_mlpot/weights/{name}` once its base exists. Training data digest"
             f" `{training.get('data_sha256', '?')[:16]}…` (sha256 over the conformations used).",
             "", "## Training", "",
             f"- data: {training['conformations']} conformations of {training['molecules']}"
             f" molecules ({training['force_labelled']} with forces), level"
             f" `{training['level_of_theory']}` v{training['level_version']}",
             *([f"- forces: `{training['forces_level_of_theory']}` forces of the same"
                f" geometries (recipe `forces_from`),"
                f" {training.get('forces_borrowed', training['force_labelled'])} conformations"]
               if training.get("forces_level_of_theory") else []),
             f"- held out of training and validation: {', '.join(training['held_out_molecules'])}",
             f"- ensemble: {len(training['members'])} members on"
             f" {len(training['members'])} folds by molecule"]
    if training.get("parent"):
        frozen = ", ".join(f"`{p}`" for p in training["frozen_parameters"]) or "nothing"
        starts = [member.get("parent_member", index)
                  for index, member in enumerate(training["members"])]
        start = ("member k from member k" if starts == list(range(len(starts)))
                 else "members " + ", ".join(f"{k} ← {s}" for k, s in enumerate(starts)))
        lines.append(f"- fine-tuned from `{training['parent']['name']}` (weights sha256"
                     f" `{training['parent']['weights_sha256'][:16]}…`), {start};"
                     f" frozen (bit-identical to the parent): {frozen}")
    for index, member in enumerate(training["members"]):
        best = member["best"]
        forces = (f", forces RMSE {best['force_rmse']:.3f} eV/Å" if "force_rmse" in best else "")
        lines.append(f"- member {index}: validation energy RMSE {best['energy_rmse']:.3f} eV"
                     f"{forces} (best epoch {member['best_epoch']} of {member['epochs']})")
    lines += ["", "## Accuracy", ""]
    if results:
        lines += ["Measured by `zoo/evaluate_zoo.py` (kcal/mol); `zoo/results/" + name + ".json`"
                  " has every number.", "", "| metric | value |", "|---|---|"]
        for key, value in metrics_from_results(results).items():
            lines.append(f"| {key} | {value} |")
    else:
        lines.append("Not evaluated yet.")
    return "\n".join(lines) + "\n"


def write_card(name: str) -> Path:
    """Write ``zoo/cards/<name>.md``."""
    training = json.loads((WEIGHTS / name / "training.json").read_text())
    config = json.loads((WEIGHTS / name / "config.json").read_text())
    result_path = RESULTS / f"{name}.json"
    results = json.loads(result_path.read_text()) if result_path.is_file() else None
    metrics = metrics_from_results(results) if results else {}
    front = yaml.safe_dump(front_matter(name, training, config, metrics), sort_keys=False,
                           allow_unicode=True, width=100)
    path = CARDS / f"{name}.md"
    path.write_text(f"---\n{front}---\n{body(name, training, results)}", encoding="utf-8")
    logger.info("wrote %s", path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.names:
        write_card(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
