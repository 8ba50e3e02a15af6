"""Accuracy of a model on a labelled dataset, in the terms that matter for chemistry.

Errors ΔE_g = E_g^model − E_g^ref (conformation g of molecule μ(g)) are reported as:

* **absolute**: MAE and RMSE of ΔE (and per atom), forces MAE/RMSE per component;
* **relative conformer energies**: errors of the energy differences E_g − E_h between every pair
  of conformations of one molecule (RMSE over all pairs, as COMP6 and ANI-1ccx report them;
  molecules with ≥ 2 conformations), and the RMSE of ΔE_g − ⟨ΔE⟩_{μ(g)} (errors relative to the
  molecule's mean, smaller by about √2);
* **across molecules**: RMSE of ΔE_g − Σ_Z n_{gZ} δ_Z after one least-squares per-element offset
  δ_Z fitted on the evaluated set (removes what a change of reference energies would; reported
  with its degrees of freedom, molecules minus fitted offsets: with few molecules the fit
  absorbs most of the error and the number means little), and isomerisation errors
  ⟨ΔE⟩_A − ⟨ΔE⟩_B for every pair of molecules A, B with the same formula;
* **ensemble calibration** (ensembles only): on the offset-corrected errors ε_g, the RMS of ε/σ
  (1 when the spread σ is calibrated), the fractions of |ε| within σ and 2σ, and the Spearman
  rank correlation of σ with |ε| (conformations with σ = 0 are left out).

Energies are given in kcal/mol and eV, forces in kcal/mol/Å and eV/Å.

**Out of fold** (:func:`evaluate_out_of_fold`): a k-fold ensemble's cross-validated errors, each
member predicting only the molecules of its own validation fold (which no stage of a chain with
the same k and split seed trained it on), pooled and scored as above. Held-out test sets are
small; this scores every labelled molecule, and shows what a model does on chemistry it has not
seen.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ase_mlpot import keys
from ase_mlpot.data.batch import batch_to_device
from ase_mlpot.datasets.hdf5 import ConformerDataset
from ase_mlpot.datasets.splits import molecule_fold
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.outputs import compute_outputs
from ase_mlpot.training.data import LabelledGraph, iterate_batches, prepare_graphs
from ase_mlpot.units import ENERGY_UNITS_TO_EV, KCAL_PER_MOL_TO_EV

__all__ = [
    "evaluate_graphs", "evaluate_model", "evaluate_out_of_fold", "out_of_fold_settings", "predict",
]


def predict(
    model: PotentialModel, graphs: Sequence[LabelledGraph], *, batch_size: int = 64,
    forces: bool | None = None,
) -> dict[str, Any]:
    """Model energies (eV), their ensemble spread (eV) and forces (eV/Å) for ``graphs``.

    Args:
        model: Any model (its dtype and device are used).
        graphs: Prepared conformations.
        batch_size: Conformations per batch.
        forces: Compute forces (default: when any graph has reference forces).

    Returns:
        ``energy (n,)``, ``energy_std (n,)`` and ``forces``: one ``(n_atoms, 3)`` array per graph
        that has reference forces (``None`` for the others, and for all without ``forces``).
    """
    parameter = next(model.parameters())
    factor = ENERGY_UNITS_TO_EV[model.energy_unit]
    energy, spread, forces_out = [], [], []
    need_forces = any(g.forces is not None for g in graphs) if forces is None else forces
    for batch, targets in iterate_batches(graphs, batch_size):
        batch = batch_to_device(batch, dtype=parameter.dtype, device=parameter.device)
        out = compute_outputs(model, batch, forces=need_forces)
        energy.append(out[keys.TOTAL_ENERGY].detach().cpu().numpy() * factor)
        spread.append(out[keys.ENERGY_STD].detach().cpu().numpy() * factor)
        if need_forces:
            per_graph = torch.split(out[keys.FORCES].detach().cpu().double() * factor,
                                    targets.num_atoms.tolist())
            forces_out.extend(f.numpy() for f in per_graph)
        else:
            forces_out.extend([None] * len(targets.energy))
    graph_forces = [f if g.forces is not None else None
                    for f, g in zip(forces_out, graphs, strict=True)]
    return {"energy": np.concatenate(energy), "energy_std": np.concatenate(spread),
            "forces": graph_forces}


def remove_element_offset(errors: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Errors after one least-squares per-element offset: ΔE_g − Σ_Z n_{gZ} δ_Z.

    Args:
        errors: Energy errors ΔE_g, shape ``(n,)`` (any energy unit).
        counts: Atoms per element n_{gZ}, shape ``(n, n_elements)``.

    Returns:
        The corrected errors ``(n,)`` and the number of offsets the fit could determine (the
        rank; elements absent from every conformation are left out).
    """
    present = counts.sum(axis=0) > 0  # (n_elements,)
    offset, _, rank, _ = np.linalg.lstsq(counts[:, present].astype(np.float64), errors, rcond=None)
    return errors - counts[:, present] @ offset, int(rank)  # (n,)


def _stats(errors: np.ndarray) -> dict[str, float]:
    """MAE and RMSE in eV and kcal/mol."""
    mae, rmse = float(np.mean(np.abs(errors))), float(np.sqrt(np.mean(errors**2)))
    return {"mae_ev": mae, "rmse_ev": rmse, "mae_kcal_mol": mae / KCAL_PER_MOL_TO_EV,
            "rmse_kcal_mol": rmse / KCAL_PER_MOL_TO_EV, "count": int(errors.size)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (no tie correction)."""
    ranks_a = np.argsort(np.argsort(a)).astype(np.float64)
    ranks_b = np.argsort(np.argsort(b)).astype(np.float64)
    if ranks_a.std() == 0 or ranks_b.std() == 0:
        return math.nan
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def evaluate_graphs(
    model: PotentialModel, graphs: Sequence[LabelledGraph], *, batch_size: int = 64
) -> dict[str, Any]:
    """All metrics of the module docstring for prepared graphs (see :func:`evaluate_model`)."""
    if not graphs:
        raise ValueError("nothing to evaluate: no conformations")
    return _metrics(graphs, predict(model, graphs, batch_size=batch_size),
                    ensemble=model.ensemble_size > 1)


def _metrics(graphs: Sequence[LabelledGraph], prediction: dict[str, Any], *,
             ensemble: bool) -> dict[str, Any]:
    """The module docstring's metrics of ``prediction`` (see :func:`predict`) against the
    labels of ``graphs``; ensemble calibration only if ``ensemble``."""
    reference = np.array([g.energy for g in graphs])  # (n,) | eV
    n_atoms = np.array([g.n_atoms for g in graphs], dtype=np.float64)  # (n,)
    errors = prediction["energy"] - reference  # (n,) | eV
    molecules = [g.molecule for g in graphs]
    by_molecule: dict[str, list[int]] = defaultdict(list)
    for index, molecule in enumerate(molecules):
        by_molecule[molecule].append(index)
    result: dict[str, Any] = {
        "conformations": len(graphs),
        "molecules": len(by_molecule),
        "energy": _stats(errors),
        "energy_per_atom": _stats(errors / n_atoms),
    }
    # relative conformer energies
    pairwise, centred, per_molecule = [], [], {}
    for molecule, indices in by_molecule.items():
        if len(indices) < 2:
            continue
        first, second = np.triu_indices(len(indices), k=1)
        differences = errors[indices][first] - errors[indices][second]  # (n_pairs,)
        pairwise.append(differences)
        centred.append(errors[indices] - errors[indices].mean())
        per_molecule[molecule] = _stats(differences)
    if pairwise:
        result["relative_conformer_energy"] = _stats(np.concatenate(pairwise))
        result["relative_conformer_energy_centred"] = _stats(np.concatenate(centred))
        result["relative_conformer_energy_per_molecule"] = per_molecule
    # across molecules: one per-element offset, and isomerisation energies
    corrected, rank = remove_element_offset(errors, np.stack([g.counts for g in graphs]))
    result["energy_after_element_offset"] = {
        **_stats(corrected), "degrees_of_freedom": len(by_molecule) - rank}
    mean_error = {m: float(errors[i].mean()) for m, i in by_molecule.items()}
    formula = {m: tuple(graphs[i[0]].counts) for m, i in by_molecule.items()}
    pairs = [(a, b) for a, b in itertools.combinations(sorted(by_molecule), 2)
             if formula[a] == formula[b]]
    if pairs:
        isomer_errors = np.array([mean_error[a] - mean_error[b] for a, b in pairs])
        result["isomerization_energy"] = _stats(isomer_errors)
        result["isomer_pairs"] = [f"{a}/{b}" for a, b in pairs]
    # forces
    force_errors = [f - g.forces.numpy() for f, g in zip(prediction["forces"], graphs, strict=True)
                    if f is not None and g.forces is not None]
    if force_errors:
        result["forces"] = {k.replace("_ev", "_ev_per_a").replace("_kcal_mol", "_kcal_mol_per_a"): v
                            for k, v in _stats(np.concatenate(force_errors).ravel()).items()}
    # ensemble calibration
    sigma = prediction["energy_std"]
    spread = sigma > 0  # (n,)
    if ensemble and spread.sum() >= 2:
        z = corrected[spread] / sigma[spread]
        result["ensemble_calibration"] = {
            "rms_z": float(np.sqrt(np.mean(z**2))),
            "within_1_sigma": float(np.mean(np.abs(z) <= 1)),
            "within_2_sigma": float(np.mean(np.abs(z) <= 2)),
            "spearman_sigma_abs_error": _spearman(sigma[spread], np.abs(corrected[spread])),
            "mean_sigma_kcal_mol": float(sigma[spread].mean() / KCAL_PER_MOL_TO_EV),
            "count": int(spread.sum()),
        }
    return result


def evaluate_model(
    model: PotentialModel, dataset: ConformerDataset, *, molecules: Sequence[str] | None = None,
    batch_size: int = 64, model_name: str = "model",
) -> dict[str, Any]:
    """Errors of ``model`` against the labels of ``dataset``.

    Args:
        model: Any model (eval mode; its dtype and device are used).
        dataset: Labelled conformations (Hartree, Å).
        molecules: Evaluate only these molecules (e.g. the held-out ones).
        batch_size: Conformations per evaluation batch.
        model_name: The model's name in the reasons for skipped conformations.

    Raises:
        ValueError: Nothing the model can evaluate (the reasons are named), or none of
            ``molecules`` in the data.

    Returns:
        Nested metrics (see the module docstring), plus ``level_of_theory`` and ``skipped``
        (conformations the model cannot take, with the reason).
    """
    graphs, skipped = _evaluable(model, dataset, model_name)
    missing: list[str] = []
    if molecules is not None:
        wanted = set(molecules)
        graphs = [g for g in graphs if g.molecule in wanted]
        found = {g.molecule for g in graphs}
        missing = sorted(wanted - found)
        if not found:
            raise ValueError(f"none of the {len(wanted)} requested molecules occurs in the data")
    result = evaluate_graphs(model, graphs, batch_size=batch_size)
    result["level_of_theory"] = dataset.level_of_theory
    result["skipped"] = skipped
    if molecules is not None:
        result["molecules_not_in_data"] = missing
    return result


def evaluate_out_of_fold(
    model: PotentialModel, dataset: ConformerDataset, *, split_seed: int,
    exclude_molecules: Sequence[str] = (), batch_size: int = 64, model_name: str = "model",
) -> dict[str, Any]:
    """Cross-validated errors of a k-fold ensemble (see the module docstring).

    Member m predicts the conformations of the molecules whose fold
    (:func:`~ase_mlpot.datasets.splits.molecule_fold` with k = ``model.ensemble_size`` and
    ``split_seed``) is m; the pooled predictions get the metrics of :func:`evaluate_model`
    except the ensemble calibration (each prediction comes from one member). Molecules that no
    member trained on (a held-out list, labels added after training) are fair game too, but
    usually belong in :func:`evaluate_model`: pass them as ``exclude_molecules``.

    Args:
        model: A k-fold ensemble trained with ``split_seed`` (every stage of its chain).
        dataset: Labelled conformations (Hartree, Å).
        split_seed: The recipe's ``split_seed``.
        exclude_molecules: Molecules to leave out.
        batch_size: Conformations per evaluation batch.
        model_name: The model's name in the reasons for skipped conformations.

    Raises:
        ValueError: A model with one member, or nothing to evaluate.

    Returns:
        The metrics, ``level_of_theory``, ``skipped``, and ``folds``: conformations per member.
    """
    k = model.ensemble_size
    if k < 2:
        raise ValueError(f"{model_name} has one member: out-of-fold errors need a k-fold"
                         " ensemble (k >= 2)")
    graphs, skipped = _evaluable(model, dataset, model_name)
    excluded = set(exclude_molecules)
    graphs = [g for g in graphs if g.molecule not in excluded]
    if not graphs:
        raise ValueError("nothing to evaluate once the excluded molecules are left out")
    fold = np.array([molecule_fold(g.molecule, k, split_seed) for g in graphs])  # (n,)
    energy = np.empty(len(graphs))  # (n,) | eV
    forces: list[np.ndarray | None] = [None] * len(graphs)
    for member in range(k):
        indices = np.flatnonzero(fold == member)
        if indices.size == 0:
            continue
        part = predict(model.member(member), [graphs[i] for i in indices], batch_size=batch_size)
        energy[indices] = part["energy"]
        for index, member_forces in zip(indices, part["forces"], strict=True):
            forces[index] = member_forces
    prediction = {"energy": energy, "energy_std": np.zeros_like(energy), "forces": forces}
    result = _metrics(graphs, prediction, ensemble=False)
    result["level_of_theory"] = dataset.level_of_theory
    result["skipped"] = skipped
    result["folds"] = np.bincount(fold, minlength=k).tolist()
    return result


def out_of_fold_settings(record: Path) -> tuple[int, list[str]]:
    """What :func:`evaluate_out_of_fold` needs from a model's training record.

    Args:
        record: The ``training.json`` beside the model's weights.

    Raises:
        ValueError: No such file, or it names no split seed (the members' folds are unknown).

    Returns:
        The split seed, and the molecules no fold validated (``held_out_molecules`` and
        ``always_trained_molecules``), to leave out.
    """
    if not record.is_file():
        raise ValueError(f"{record} does not exist: the folds of the model's members are unknown")
    training = json.loads(record.read_text())
    try:
        split_seed = int(training["recipe"]["training"]["split_seed"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{record} names no split seed (recipe.training.split_seed): the folds"
                         " of the model's members are unknown") from None
    return split_seed, [*training.get("held_out_molecules", []),
                        *training.get("always_trained_molecules", [])]


def _evaluable(model: PotentialModel, dataset: ConformerDataset,
               model_name: str) -> tuple[list[LabelledGraph], list[str]]:
    """The conformations of ``dataset`` the model can take, and why the others are left out.

    Raises:
        ValueError: None is left.
    """
    graphs, skipped = prepare_graphs(dataset, model, model_name=model_name)
    if not graphs:
        raise ValueError("nothing to evaluate: " + ("; ".join(skipped[:3]) or "no conformations")
                         + (f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""))
    return graphs, skipped
