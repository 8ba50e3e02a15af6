"""Training and transfer learning for every architecture, one ensemble member at a time.

Loss (eV units, per batch of graphs g with N_g atoms; the force term runs over the atoms of
graphs that carry forces, so energy-only data such as CC labels simply contribute no force term)::

    L = w_E · ⟨(E_g^pred − E_g^ref)² / N_g⟩_g  +  w_F · ⟨(F_iα^pred − F_iα^ref)²⟩_{i,α}

The per-element reference energies e_Z are fitted once by linear least squares on the training
conformations, E_g − E_g^network ≈ Σ_Z n_{gZ} e_Z (E^network: the network part of the model being
trained; zero-mean random output from scratch, the base model for fine-tuning, so the fit absorbs
the per-element offset between levels of theory), and stay fixed while the networks train.

Ensembles of k members are trained on k folds by molecule: member m validates on fold m and
trains on the rest. Fine-tuning starts member m from member m of the base (ANI-1ccx: member k of
ANI-1x) with the parameters matching the freeze patterns excluded from the optimiser, so they stay
bit-identical. Each member uses AdamW, a learning-rate drop on a validation plateau, early
stopping, and keeps its best-validation weights. After every epoch the member's state
(weights, optimiser, scheduler, RNG, history) is checkpointed atomically, so an interrupted run
resumes where it stopped and ends with the same model as an uninterrupted one.

Members are independent, so several processes can share one work folder: each claims a member
with an exclusive ``flock`` on ``member-{m}.lock``, trains the members nobody else holds, then
waits for the others and resumes their finished checkpoints. Every process ends with the same
ensemble as a single sequential run (``train(..., jobs=N)`` starts N − 1 such helpers).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import fnmatch
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ase_mlpot import keys
from ase_mlpot.data.batch import batch_to_device
from ase_mlpot.datasets.hdf5 import ConformerDataset, ConformerGroup
from ase_mlpot.datasets.hdf5 import read_dataset as read_dataset_file
from ase_mlpot.datasets.splits import assign_molecules, molecule_fold
from ase_mlpot.files import atomic_write
from ase_mlpot.models.base import PotentialModel
from ase_mlpot.models.outputs import compute_outputs
from ase_mlpot.models.registry import get_architecture
from ase_mlpot.training.data import LabelledGraph, TargetBatch, iterate_batches, prepare_graphs
from ase_mlpot.training.evaluate import predict
from ase_mlpot.training.recipe import RecipeError, TrainingOptions, TrainingRecipe
from ase_mlpot.units import ENERGY_UNITS_TO_EV

__all__ = [
    "TrainingResult",
    "attach_forces",
    "fit_reference_energies",
    "freeze_parameters",
    "load_training_data",
    "loss_terms",
    "read_molecule_list",
    "train",
    "train_member",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"
#: Lock file of member m in a work folder (held while a process trains or resumes it).
MEMBER_LOCK_FILE = "member-{}.lock"


@dataclasses.dataclass
class TrainingResult:
    """A trained ensemble and what it was trained on.

    Attributes:
        model: The ensemble (members joined, shared reference energies).
        summary: JSON-serialisable record: data counts, folds, per-member best validation
            metrics and epochs, frozen parameters, reference energies, timings.
    """

    model: PotentialModel
    summary: dict[str, Any]


# ----------------------------------------------------------------------------- data
def read_molecule_list(path: Path) -> list[str]:
    """Molecule names, one per line; ``#`` starts a comment."""
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line.split()[0])
    return names


def _concatenate(first: ConformerGroup, second: ConformerGroup, name: str) -> ConformerGroup:
    """Stack two groups of one formula (same atom order required; forces kept only if both
    have them, with a warning otherwise).

    Raises:
        RecipeError: The groups list their atoms in different orders.
    """
    if not np.array_equal(first.atomic_numbers, second.atomic_numbers):
        raise RecipeError(f"group {name}: the training files list its atoms in different orders")
    if (first.forces is None) != (second.forces is None):
        logger.warning("group %s: forces missing in one training file; dropped for all", name)

    def join(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or b is None else np.concatenate([a, b])

    return ConformerGroup(
        atomic_numbers=first.atomic_numbers,
        coordinates=np.concatenate([first.coordinates, second.coordinates]),
        energies=join(first.energies, second.energies),
        forces=join(first.forces, second.forces),
        molecule=join(first.molecule, second.molecule),
        extra={},
    )


def load_training_data(
    paths: Sequence[Path],
    *,
    exclude_molecules: Sequence[str] = (),
    min_heavy_atoms: int = 0,
    max_heavy_atoms: int | None = None,
) -> ConformerDataset:
    """Read and join datasets of one level of theory, dropping excluded molecules.

    Args:
        paths: Dataset files (see :func:`ase_mlpot.datasets.read_dataset`).
        exclude_molecules: Molecules to leave out (e.g. the held-out test molecules).
        min_heavy_atoms: Drop molecules with fewer heavy atoms.
        max_heavy_atoms: Drop molecules with more heavy atoms.

    Raises:
        RecipeError: Files at different levels of theory, or no data left.
    """
    excluded = set(exclude_molecules)
    seen: set[str] = set()
    joined = ConformerDataset(groups={})
    for index, path in enumerate(paths):
        dataset = read_dataset_file(path)
        if index == 0:
            joined.level_of_theory = dataset.level_of_theory
            joined.level_version = dataset.level_version
        elif dataset.level_of_theory != joined.level_of_theory:
            raise RecipeError(f"{path} is at {dataset.level_of_theory}, the other data files at"
                              f" {joined.level_of_theory}: use files of one level of theory at a"
                              " time")
        for name, group in dataset.groups.items():
            heavy = int(np.sum(group.atomic_numbers > 1))
            if heavy < min_heavy_atoms or (max_heavy_atoms is not None and heavy > max_heavy_atoms):
                continue
            molecules = group.molecule if group.molecule is not None else np.full(len(group), name)
            group = dataclasses.replace(group, molecule=np.asarray(molecules, dtype=str))
            seen.update(group.molecule.tolist())
            keep = np.array([m not in excluded for m in group.molecule])  # (n_conf,)
            if not keep.any():
                continue
            group = group.select(keep)
            joined.groups[name] = (_concatenate(joined.groups[name], group, name)
                                   if name in joined.groups else group)
    if not joined.groups:
        raise RecipeError(f"no conformations in {[str(p) for p in paths]}"
                          + (" once the held-out molecules are left out" if excluded else ""))
    missing = sorted(excluded - seen)
    if excluded and len(missing) == len(excluded):
        raise RecipeError(f"none of the {len(excluded)} held-out molecules occurs in the data"
                          " (molecule names must match the data's molecule field; files without"
                          " one name molecules by formula)")
    for name in missing:
        logger.warning("held-out molecule %r does not occur in the training data", name)
    return joined


def _geometry_key(numbers: np.ndarray, positions: np.ndarray) -> bytes:
    """Identity of one geometry: atomic numbers and positions rounded to 10⁻⁶ Å (the label
    stores keep 6 decimals, so one geometry labelled at two levels has one key)."""
    rounded = np.round(np.asarray(positions, dtype=np.float64), 6) + 0.0  # (n_atoms, 3) | Å
    return np.asarray(numbers, dtype=np.int64).tobytes() + rounded.tobytes()


def attach_forces(dataset: ConformerDataset,
                  donors: Sequence[ConformerDataset]) -> tuple[int, int, set[str]]:
    """Give the conformations of ``dataset`` that have no forces the forces of the identical
    geometry in ``donors`` (in place).

    A group without forces gets a forces array whose rows stay NaN where no donor has the
    geometry (:func:`~ase_mlpot.training.data.prepare_graphs` treats those as energy-only);
    groups that carry their own forces are left as they are.

    Returns:
        The number of conformations without forces, how many of them received forces, and the
        levels of theory of the donors that gave any.
    """
    donated: dict[bytes, tuple[np.ndarray, str]] = {}
    for donor in donors:
        for group in donor.groups.values():
            if group.forces is None:
                continue
            for positions, forces in zip(group.coordinates, group.forces, strict=True):
                key = _geometry_key(group.atomic_numbers, positions)
                donated[key] = (forces, donor.level_of_theory)
    needing, attached, levels = 0, 0, set()
    for name, group in dataset.groups.items():
        if group.forces is not None:
            continue
        needing += len(group)
        forces = np.full(group.coordinates.shape, np.nan)  # (n_conf, n_atoms, 3) Hartree/Å
        for index, positions in enumerate(group.coordinates):
            match = donated.get(_geometry_key(group.atomic_numbers, positions))
            if match is not None:
                forces[index], level = match
                levels.add(level)
                attached += 1
        if np.isfinite(forces).any():
            dataset.groups[name] = dataclasses.replace(group, forces=forces)
    return needing, attached, levels


def _energy_factor(model: PotentialModel) -> float:
    """eV per model energy unit."""
    return ENERGY_UNITS_TO_EV[model.energy_unit]


@torch.no_grad()
def network_energies(model: PotentialModel, graphs: Sequence[LabelledGraph],
                     *, batch_size: int = 64) -> np.ndarray:
    """Energies of ``graphs`` without the reference energies (ensemble mean), eV, ``(n,)``."""
    reference = model.reference_energies.cpu().numpy() * _energy_factor(model)  # (n_el,) | eV
    counts = np.stack([g.counts for g in graphs])  # (n, n_elements)
    energies = predict(model, graphs, batch_size=batch_size, forces=False)["energy"]  # (n,)
    return energies - counts @ reference


def fit_reference_energies(
    graphs: Sequence[LabelledGraph], elements: Sequence[str],
    baseline: np.ndarray | None = None, fallback: dict[str, float] | None = None,
) -> dict[str, float]:
    """Least-squares per-element energies: E_g − baseline_g ≈ Σ_Z n_{gZ} e_Z (eV).

    Args:
        graphs: Training conformations.
        elements: Element symbols in the model's species order.
        baseline: Energies to subtract first (eV, ``(n,)``), e.g. a base model's network part.
        fallback: e_Z (eV) kept for elements absent from ``graphs`` (e.g. the base model's when
            fine-tuning on data with fewer elements); absent and without fallback: 0, with a
            warning (the model cannot describe that element).

    Returns:
        e_Z in eV for every element.
    """
    counts = np.stack([g.counts for g in graphs])  # (n, n_elements)
    targets = np.array([g.energy for g in graphs])  # (n,) | eV
    if baseline is not None:
        targets = targets - baseline
    present = counts.sum(axis=0) > 0  # (n_elements,)
    solution = np.zeros(len(elements))
    solution[present] = np.linalg.lstsq(counts[:, present], targets, rcond=None)[0]
    fitted = {symbol: float(value) for symbol, value in zip(elements, solution, strict=True)}
    for symbol, is_present in zip(elements, present, strict=True):
        if not is_present:
            if fallback is not None and symbol in fallback:
                fitted[symbol] = float(fallback[symbol])
            else:
                logger.warning("element %s does not occur in the training data", symbol)
    return fitted


def _check_patterns(model: PotentialModel, patterns: Sequence[str], what: str) -> None:
    """Raise RecipeError for a parameter-name pattern that matches nothing (a typo)."""
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise RecipeError(f"{what} pattern {pattern!r} matches no parameter of the"
                              f" {model.architecture} model; parameters: {names}")


def parameter_groups(model: PotentialModel, options: TrainingOptions) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters: the decay of the first matching
    ``weight_decay_groups`` pattern, else ``weight_decay``.

    Raises:
        RecipeError: A pattern that matches no parameter.
    """
    _check_patterns(model, [pattern for pattern, _ in options.weight_decay_groups],
                    "weight_decay_groups")
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            decay = next((float(d) for pattern, d in options.weight_decay_groups
                          if fnmatch.fnmatchcase(name, pattern)), options.weight_decay)
            groups.setdefault(decay, []).append(parameter)
    return [{"params": params, "weight_decay": decay} for decay, params in groups.items()]


def freeze_parameters(model: PotentialModel, patterns: Sequence[str]) -> list[str]:
    """Switch off gradients of the parameters whose names match any pattern.

    Returns:
        Names of the frozen parameters.

    Raises:
        RecipeError: A pattern that matches no parameter (a typo would silently train all).
    """
    _check_patterns(model, patterns, "freeze")
    frozen = []
    for name, parameter in model.named_parameters():
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen


# ----------------------------------------------------------------------------- loss
def loss_terms(
    model: PotentialModel,
    batch: dict[str, torch.Tensor],
    targets: TargetBatch,
    *,
    with_forces: bool,
    training: bool,
) -> dict[str, torch.Tensor]:
    """Energy and force terms of the loss (eV units) and the squared errors behind them.

    Returns:
        ``energy`` ⟨ΔE²/N⟩ over graphs (eV²), ``forces`` ⟨ΔF²⟩ over
        labelled force components (eV²/Å², zero without force labels), ``energy_se`` (ΔE² per
        graph, eV²), ``force_se`` (ΔF² summed per component, eV²/Å²) and ``n_force_components``.
    """
    factor = _energy_factor(model)
    need_forces = with_forces and targets.force_atoms.numel() > 0
    out = compute_outputs(model, batch, forces=need_forces, training=training)
    delta = out[keys.TOTAL_ENERGY] * factor - targets.energy  # (n_graphs,) float64 | eV
    energy_se = delta**2  # (n_graphs,)
    terms = {
        "energy": (energy_se / targets.num_atoms).mean(),
        "energy_se": energy_se.detach(),
    }
    if need_forces:
        predicted = out[keys.FORCES][targets.force_atoms].to(torch.float64) * factor
        squared = (predicted - targets.forces) ** 2  # (n_labelled, 3)
        terms["forces"] = squared.mean()
        terms["force_se"] = squared.detach().sum()
        terms["n_force_components"] = torch.tensor(squared.numel())
    else:
        terms["forces"] = torch.zeros((), dtype=torch.float64, device=delta.device)
        terms["force_se"] = torch.zeros((), dtype=torch.float64)
        terms["n_force_components"] = torch.tensor(0)
    return terms


def _evaluate(model: PotentialModel, graphs: Sequence[LabelledGraph], options: TrainingOptions,
              with_forces: bool) -> dict[str, float]:
    """Validation loss and RMSEs (energy eV and eV/atom, forces eV/Å)."""
    parameter = next(model.parameters())
    energy_se, per_atom, force_se, components, loss_e, loss_f, n = 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0
    for batch, targets in iterate_batches(graphs, max(options.batch_size, 64)):
        batch = batch_to_device(batch, dtype=parameter.dtype, device=parameter.device)
        targets = targets.to(parameter.device)
        terms = loss_terms(model, batch, targets, with_forces=with_forces, training=False)
        size = len(targets.energy)
        energy_se += float(terms["energy_se"].sum())
        per_atom += float((terms["energy_se"] / targets.num_atoms**2).sum())
        loss_e += float(terms["energy"].detach()) * size
        force_se += float(terms["force_se"])
        components += int(terms["n_force_components"])
        n += size
    loss_f = force_se / components if components else 0.0
    metrics = {
        "loss": options.energy_weight * loss_e / n + options.force_weight * loss_f,
        "energy_rmse": math.sqrt(energy_se / n),
        "energy_rmse_per_atom": math.sqrt(per_atom / n),
    }
    if components:
        metrics["force_rmse"] = math.sqrt(loss_f)
    return metrics


# ----------------------------------------------------------------------------- one member
def _run_fingerprint(options: TrainingOptions, train_graphs: Sequence[LabelledGraph],
                     valid_graphs: Sequence[LabelledGraph], seed: int,
                     model: PotentialModel, context: str) -> str:
    """What a checkpoint must match to be resumed: every option but ``max_epochs`` (raising it
    continues a finished run), the seed, the starting weights, which parameters train, the
    reference energies, the training and validation conformations, and ``context`` (the
    caller's description of the run, e.g. the recipe)."""
    # (no weight_decay_groups, no ema_decay: the same fingerprint as before the options existed)
    settings = {k: v for k, v in dataclasses.asdict(options).items()
                if k != "max_epochs" and not (k in ("weight_decay_groups", "ema_decay") and not v)}
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    digest = hashlib.sha256(json.dumps(
        [settings, seed, trainable, model.reference_energy_dict(), context],
        sort_keys=True, default=str).encode())
    for value in model.state_dict().values():
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    digest.update(f"{_data_digest(train_graphs)}|{_data_digest(valid_graphs)}".encode())
    return digest.hexdigest()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


@torch.no_grad()
def _update_moving_average(averaged: PotentialModel, model: PotentialModel, decay: float) -> None:
    """θ̄ ← decay · θ̄ + (1 − decay) · θ for every trained parameter (frozen ones are equal)."""
    for mean, current in zip(averaged.parameters(), model.parameters(), strict=True):
        if current.requires_grad:
            mean.lerp_(current, 1.0 - decay)


def train_member(
    model: PotentialModel,
    train_graphs: Sequence[LabelledGraph],
    valid_graphs: Sequence[LabelledGraph],
    options: TrainingOptions,
    *,
    seed: int,
    workdir: Path | None = None,
    progress: bool = False,
    label: str = "member",
    context: str = "",
) -> tuple[PotentialModel, dict[str, Any]]:
    """Train one one-member model in place and return it with its best-validation weights.

    The starting model is validated first and competes for "best" (a fine-tuning run that only
    degrades returns the refitted base unchanged). With ``options.ema_decay > 0`` the validated
    (and returned) weights are the moving average θ̄ of the optimised ones.

    Args:
        model: One-member model on the training device and dtype; parameters with
            ``requires_grad=False`` are not trained (and never touched).
        train_graphs: Training conformations.
        valid_graphs: Validation conformations (plateau detection, early stopping, best model).
        options: Optimisation settings.
        seed: Seed of the shuffling generator.
        workdir: Checkpoint and ``metrics.jsonl`` folder; an existing checkpoint of the same run
            is resumed, one of another run is an error.
        progress: Show a progress bar.
        label: Name in log messages and the progress bar.
        context: Description of the run folded into the checkpoint fingerprint (e.g. the recipe).

    Returns:
        The model (best weights loaded) and ``{epochs, best_epoch, best, stopped, history}``
        (``history``: one record per epoch, epoch 0 the starting model).

    Raises:
        RecipeError: No training or validation data, nothing trainable, or a checkpoint of
            another run in ``workdir``.
    """
    from tqdm import tqdm

    if not train_graphs or not valid_graphs:
        raise RecipeError(f"{label}: needs training and validation conformations "
                          f"(got {len(train_graphs)} and {len(valid_graphs)})")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise RecipeError(f"{label}: every parameter is frozen; nothing to train")
    with_forces = options.force_weight > 0
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(parameter_groups(model, options), lr=options.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=options.lr_factor, patience=options.lr_patience,
        threshold=0.0)
    generator = torch.Generator().manual_seed(seed)
    # the weights that are validated: the optimised ones, or their moving average
    averaged = copy.deepcopy(model) if options.ema_decay > 0 else None
    validated = averaged if averaged is not None else model
    checkpoint = workdir / CHECKPOINT_FILE if workdir is not None else None
    fingerprint = _run_fingerprint(options, train_graphs, valid_graphs, seed, model, context)
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if saved.get("fingerprint") != fingerprint:
            raise RecipeError(
                f"{checkpoint} was written by a run with other options or data; delete it (or"
                " choose another work folder) to start afresh")
        model.load_state_dict(saved["model"])
        if averaged is not None:
            averaged.load_state_dict(saved["averaged"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        state = saved["state"]
        logger.info("%s: resumed after epoch %d", label, state["epoch"])
    else:
        model.eval()
        start = _evaluate(model, valid_graphs, options, with_forces)
        state = {"epoch": 0, "best_loss": start["loss"], "best_epoch": 0, "bad_epochs": 0,
                 "best_metrics": start, "stopped": None,
                 "best_model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                 "history": [{"epoch": 0, **{f"valid_{k}": v for k, v in start.items()}}]}
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=options.max_epochs, initial=state["epoch"], desc=label, unit="epoch",
               file=sys.stderr, disable=not progress, leave=False)
    while state["stopped"] is None:
        if state["epoch"] >= options.max_epochs:
            state["stopped"] = "max_epochs"
            break
        started = time.perf_counter()
        model.train()
        total, seen = 0.0, 0
        for batch, targets in iterate_batches(train_graphs, options.batch_size,
                                              generator=generator):
            batch = batch_to_device(batch, dtype=trainable[0].dtype, device=device)
            targets = targets.to(device)
            terms = loss_terms(model, batch, targets, with_forces=with_forces, training=True)
            loss = options.energy_weight * terms["energy"] + options.force_weight * terms["forces"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if options.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(trainable, options.max_grad_norm)
            optimizer.step()
            if averaged is not None:
                _update_moving_average(averaged, model, options.ema_decay)
            total += float(loss.detach()) * len(targets.energy)
            seen += len(targets.energy)
        validated.eval()
        valid = _evaluate(validated, valid_graphs, options, with_forces)
        scheduler.step(valid["loss"])
        state["epoch"] += 1
        learning_rate = optimizer.param_groups[0]["lr"]
        if valid["loss"] < state["best_loss"]:
            state.update(best_loss=valid["loss"], best_epoch=state["epoch"], bad_epochs=0,
                         best_metrics=valid,
                         best_model={k: v.detach().clone()
                                     for k, v in validated.state_dict().items()})
        else:
            state["bad_epochs"] += 1
        if state["bad_epochs"] >= options.early_stopping_patience:
            state["stopped"] = "early_stopping"
        elif learning_rate < options.min_learning_rate * (1 - 1e-9):
            state["stopped"] = "min_learning_rate"
        state["history"].append({
            "epoch": state["epoch"], "learning_rate": learning_rate, "train_loss": total / seen,
            **{f"valid_{k}": v for k, v in valid.items()},
            "seconds": time.perf_counter() - started})
        if checkpoint is not None:
            _save_checkpoint(checkpoint, {
                "model": model.state_dict(),
                **({"averaged": averaged.state_dict()} if averaged is not None else {}),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                "state": state, "fingerprint": fingerprint})
            atomic_write(checkpoint.parent / METRICS_FILE, "".join(
                json.dumps(record) + "\n" for record in state["history"]).encode())
        bar.update(1)
        bar.set_postfix(loss=f"{valid['loss']:.3g}", lr=f"{learning_rate:.2g}")
    bar.close()
    model.load_state_dict(state["best_model"])
    model.eval()
    report = {"epochs": state["epoch"], "best_epoch": state["best_epoch"],
              "best": state["best_metrics"], "stopped": state["stopped"],
              "history": state["history"]}
    logger.info("%s: %s", label, json.dumps({k: v for k, v in report.items() if k != "history"}))
    return model, report


# ----------------------------------------------------------------------------- ensembles
def _folds(molecules: Sequence[str], options: TrainingOptions,
           always_train: set[str]) -> list[tuple[set[str], set[str]]]:
    """(training, validation) molecule sets of each member: k folds by molecule, or (k = 1)
    ``valid_fraction`` of the molecules for validation; the molecules of ``always_train`` are
    in every training set and no validation set.

    Raises:
        RecipeError: A fold without molecules, or no molecule left to train on.
    """
    names = sorted(set(molecules) - always_train)
    k = options.ensemble_size
    if k == 1:
        fractions = {"train": 1 - options.valid_fraction, "valid": options.valid_fraction}
        assignment = assign_molecules(names, fractions, seed=options.split_seed)
        valid = {m for m, s in assignment.items() if s == "valid"}
        folds = [(set(names) - valid, valid)]
    else:
        fold_of = {m: molecule_fold(m, k, options.split_seed) for m in names}
        folds = [({m for m in names if fold_of[m] != f}, {m for m in names if fold_of[m] == f})
                 for f in range(k)]
    folds = [(train | always_train, valid) for train, valid in folds]
    for index, (train, valid) in enumerate(folds):
        if not train or not valid:
            always = (f", {len(always_train)} more in every member's training set (lower"
                      " always_train_max_heavy_atoms)" if always_train else "")
            raise RecipeError(
                f"fold {index} of {k} has {len(train)} training and {len(valid)} validation"
                f" molecules ({len(names)} molecules to split{always}): use fewer members or"
                " more data")
    return folds


def _always_trained(graphs: Sequence[LabelledGraph], model: PotentialModel,
                    options: TrainingOptions) -> set[str]:
    """The molecules that train every member.

    Args:
        graphs: The training conformations.
        model: Supplies the element order of ``LabelledGraph.counts``.
        options: ``always_train_max_heavy_atoms`` (``None``: no such molecules).

    Returns:
        The names of the molecules with at most that many heavy atoms.
    """
    limit = options.always_train_max_heavy_atoms
    if limit is None:
        return set()
    heavy = np.array([symbol != "H" for symbol in model.elements])  # (n_elements,)
    return {g.molecule for g in graphs if g.counts[heavy].sum() <= limit}


def _data_digest(graphs: Sequence[LabelledGraph]) -> str:
    """sha256 over (molecule, energy, positions, forces if any) of the training conformations,
    in order: the label stores grow, and this pins which snapshot a model was trained on. The
    positions are the graphs' (each molecule centred on the origin, see
    :func:`~ase_mlpot.data.batch.atoms_to_batch`), so the digest ignores rigid translations."""
    digest = hashlib.sha256()
    for graph in graphs:
        digest.update(f"{graph.molecule}:{graph.energy!r};".encode())
        digest.update(graph.graph["positions"].numpy().tobytes())
        if graph.forces is not None:
            digest.update(graph.forces.numpy().tobytes())
    return digest.hexdigest()


def _resolve_dtype_device(options: TrainingOptions) -> tuple[torch.dtype, torch.device]:
    from ase_mlpot.calculator import resolve_device, resolve_dtype

    return resolve_dtype(options.dtype) or torch.float64, resolve_device(options.device)


def _scratch_member(recipe: TrainingRecipe, seed: int) -> PotentialModel:
    assert recipe.model is not None
    model_class, _ = get_architecture(recipe.model.architecture)
    model = model_class(recipe.model.build_config())
    model.reset_parameters(torch.Generator().manual_seed(seed))
    model.zero_output_layer()
    return model


@contextlib.contextmanager
def claim_member(workdir: Path | None, member: int, *, wait: bool) -> Iterator[bool]:
    """Hold the exclusive claim on one member of a shared work folder.

    Args:
        workdir: The run's work folder (``None``: nothing is shared, the claim always succeeds).
        member: Member index.
        wait: Block until the claim is free; otherwise give up at once if another process
            holds it.

    Yields:
        Whether this process holds the claim. It is released on exit, and by the operating
        system if the process dies.
    """
    if workdir is None:
        yield True
        return
    workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(workdir / MEMBER_LOCK_FILE.format(member), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _helper_process(recipe: TrainingRecipe, workdir: Path, base_model: PotentialModel | None,
                    base_provenance: dict[str, Any] | None) -> None:
    """Entry point of a helper of :func:`train` (a spawned process): the same run, sharing
    ``workdir``; its ensemble is discarded (the parent assembles its own)."""
    train(recipe, workdir=workdir, base_model=base_model, base_provenance=base_provenance)


def train(
    recipe: TrainingRecipe,
    *,
    workdir: Path | None = None,
    progress: bool = False,
    base_model: PotentialModel | None = None,
    base_provenance: dict[str, Any] | None = None,
    on_member: Callable[[int, dict[str, Any]], None] | None = None,
    jobs: int = 1,
) -> TrainingResult:
    """Train (``[model]``) or fine-tune (``[finetune]``) the ensemble a recipe describes.

    Args:
        recipe: The recipe.
        workdir: Folder for per-member checkpoints and metrics (``member-{m}/``); rerunning with
            the same folder resumes an interrupted run.
        progress: Progress bars on stderr.
        base_model: The base of a fine-tuning recipe, already loaded (default: resolved from
            ``recipe.finetune.base`` as zoo name or folder); it is not modified.
        base_provenance: Name and weight hash of ``base_model`` for the summary.
        on_member: Called with (member index, report) after each member finishes.
        jobs: Members trained at once: ``jobs − 1`` helper processes (spawned, torch's default
            thread settings; set ``OMP_NUM_THREADS`` for them) share ``workdir`` with this one
            (see the module docstring). The result does not depend on it.

    Returns:
        The ensemble and a summary for the model card.

    Raises:
        RecipeError: As :func:`train_member`, or ``jobs > 1`` without a work folder.
    """
    if jobs > 1 and workdir is None:
        raise RecipeError("training members in parallel (jobs > 1) needs a work folder")
    options = recipe.training
    dtype, device = _resolve_dtype_device(options)
    held_out: list[str] = []
    if recipe.data.test_molecules is not None:
        held_out = read_molecule_list(recipe.resolve(recipe.data.test_molecules))
    dataset = load_training_data(
        [recipe.resolve(p) for p in recipe.data.train], exclude_molecules=held_out,
        min_heavy_atoms=recipe.data.min_heavy_atoms, max_heavy_atoms=recipe.data.max_heavy_atoms)
    base_info = base_provenance
    if recipe.finetune is not None and base_model is None:
        from ase_mlpot.api import load_artifact_by_name

        base_path = recipe.finetune.base
        candidate = recipe.resolve(base_path)
        artifact, base_info = load_artifact_by_name(
            candidate if candidate.is_dir() else base_path, device="cpu")
        base_model = artifact.model
    # supplies elements, cutoff and energy unit; members are built from the base or afresh
    forces_level, borrowed = None, 0
    own_labels = dataset  # what validation measures: the training level's own labels
    if recipe.data.forces_from and options.force_weight == 0:
        logger.warning("forces_from %s is ignored: force_weight is 0",
                       list(recipe.data.forces_from))
    elif recipe.data.forces_from:
        own_labels = dataclasses.replace(dataset, groups=dict(dataset.groups))
        donors = [read_dataset_file(recipe.resolve(p)) for p in recipe.data.forces_from]
        needing, borrowed, levels = attach_forces(dataset, donors)
        if needing == 0:
            logger.warning("forces_from %s has nothing to do: every training conformation has"
                           " its own forces", list(recipe.data.forces_from))
        elif borrowed == 0:
            raise RecipeError(f"forces_from {list(recipe.data.forces_from)}: none of the"
                              f" {needing} training geometries without forces occurs there")
        else:
            forces_level = ", ".join(sorted(levels))
            logger.info("forces of %d of %d conformations without forces from %s", borrowed,
                        needing, forces_level)
    template = base_model if base_model is not None else _scratch_member(recipe, options.seed)
    graphs, skipped = prepare_graphs(dataset, template, with_forces=options.force_weight > 0)
    if skipped:
        logger.warning("left out %d conformations the model cannot take, e.g. %s",
                       len(skipped), skipped[0])
    if not graphs:
        raise RecipeError("none of the training conformations fits the model")
    # borrowed forces regularise training; validation (learning-rate schedule, early stopping,
    # best epoch) scores only the training level's own labels
    valid_graphs = (graphs if own_labels is dataset else
                    prepare_graphs(own_labels, template, with_forces=True)[0])
    factor = _energy_factor(template)
    if recipe.finetune is not None and not recipe.finetune.refit_reference_energies:
        assert base_model is not None
        reference = base_model.reference_energy_dict()  # model units
        reference_ev = {s: v * factor for s, v in reference.items()}
    else:
        baseline, fallback = None, None
        if base_model is not None:
            evaluated = copy.deepcopy(base_model).to(dtype=dtype, device=device)
            baseline = network_energies(evaluated, graphs)  # ensemble mean, eV
            fallback = {s: v * factor for s, v in base_model.reference_energy_dict().items()}
        reference_ev = fit_reference_energies(graphs, template.elements, baseline, fallback)
        reference = {s: v / factor for s, v in reference_ev.items()}  # model units
    always_train = _always_trained(graphs, template, options)
    folds = _folds([g.molecule for g in graphs], options, always_train)
    context = json.dumps({"model": recipe.model, "finetune": recipe.finetune,
                          "parent": (base_info or {}).get("weights_sha256")},
                         sort_keys=True, default=str)
    frozen: list[str] = []

    def train_fold(m: int) -> tuple[PotentialModel, dict[str, Any]]:
        """Member m: built from the base or afresh, trained (or resumed) on fold m."""
        nonlocal frozen
        train_molecules, valid_molecules = folds[m]
        if base_model is not None:
            assert recipe.finetune is not None
            model = base_model.member(m % base_model.ensemble_size)
            model.set_reference_energies(reference)
            freeze = recipe.finetune.freeze
            patterns = (model.transfer_learning_frozen() if freeze == "default"
                        else () if freeze == "none" else tuple(freeze))
            frozen = freeze_parameters(model, patterns)
        else:
            model = _scratch_member(recipe, options.seed + m)
            model.set_reference_energies(reference)
        model = model.to(dtype=dtype, device=device)
        member, report = train_member(
            model,
            [g for g in graphs if g.molecule in train_molecules],
            [g for g in valid_graphs if g.molecule in valid_molecules],
            options, seed=options.seed + m,
            workdir=None if workdir is None else workdir / f"member-{m}",
            progress=progress, label=f"{recipe.name} member {m}", context=context)
        report["train_molecules"] = len(train_molecules)
        report["valid_molecules"] = len(valid_molecules)
        if base_model is not None:
            report["parent_member"] = m % base_model.ensemble_size
        return member, report

    context_spawn = multiprocessing.get_context("spawn")
    helpers = [context_spawn.Process(target=_helper_process,
                                     args=(recipe, workdir, base_model, base_provenance))
               for _ in range(jobs - 1)]
    for helper in helpers:
        helper.start()
    trained: dict[int, tuple[PotentialModel, dict[str, Any]]] = {}
    try:
        # first the members nobody else holds, then the others once their holders let go
        for wait in (False, True):
            for m in range(len(folds)):
                if m in trained:
                    continue
                with claim_member(workdir, m, wait=wait) as claimed:
                    if claimed:
                        trained[m] = train_fold(m)
                if m in trained and on_member is not None:
                    on_member(m, trained[m][1])
    finally:
        for helper in helpers:
            helper.join()
            if helper.exitcode != 0:  # its members were finished (or resumed) by this process
                logger.warning("training helper process %s exited with code %s", helper.pid,
                               helper.exitcode)
    members = [trained[m][0] for m in range(len(folds))]
    reports = [trained[m][1] for m in range(len(folds))]
    ensemble = type(members[0]).from_members(members, reference_energies=reference)
    summary = {
        "recipe": recipe.to_dict(),
        "level_of_theory": dataset.level_of_theory,
        "level_version": dataset.level_version,
        "conformations": len(graphs),
        "molecules": len({g.molecule for g in graphs}),
        "force_labelled": sum(g.forces is not None for g in graphs),
        "forces_level_of_theory": forces_level,
        "forces_borrowed": borrowed,
        "data_sha256": _data_digest(graphs),
        "held_out_molecules": sorted(held_out),
        "always_trained_molecules": sorted(always_train),
        "skipped": skipped,
        "reference_energies_ev": reference_ev,
        "frozen_parameters": frozen,
        "parent": base_info,
        "members": reports,
    }
    return TrainingResult(model=ensemble, summary=summary)
