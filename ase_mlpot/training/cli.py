"""``mlpot-zoo train | finetune | evaluate``: thin adapters over :mod:`ase_mlpot.training`."""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ase_mlpot.cli_errors import command_errors

if TYPE_CHECKING:
    from ase_mlpot.models.base import PotentialModel
    from ase_mlpot.training import TrainingRecipe, TrainingResult

__all__ = ["evaluate_command", "finetune_command", "train_command", "write_trained_model"]

TRAINING_FILE = "training.json"


def _card(name: str, description: str, summary: dict[str, Any]) -> str:
    """A short model card for a freshly trained artifact (the zoo's cards live in zoo/cards)."""
    parent = summary.get("parent") or {}
    lines = [f"# {name}", "", description or "A model trained with `mlpot-zoo train`.", "",
             f"- level of theory: {summary['level_of_theory']} (v{summary['level_version']})",
             f"- training data: {summary['conformations']} conformations of"
             f" {summary['molecules']} molecules ({summary['force_labelled']} with forces)",
             f"- held-out molecules: {len(summary['held_out_molecules'])}",
             f"- ensemble members: {len(summary['members'])}"]
    if parent:
        lines.append(f"- fine-tuned from: {parent.get('name')} ({parent.get('weights_sha256')})")
        lines.append(f"- frozen parameters: {', '.join(summary['frozen_parameters']) or 'none'}")
    lines += ["", "Validation (best epoch of each member, eV):", ""]
    for index, member in enumerate(summary["members"]):
        best = member["best"]
        forces = f", forces RMSE {best['force_rmse']:.4f} eV/Å" if "force_rmse" in best else ""
        lines.append(f"- member {index}: energy RMSE {best['energy_rmse']:.4f}{forces}"
                     f" (epoch {member['best_epoch']} of {member['epochs']}, {member['stopped']})")
    return "\n".join(lines) + "\n"


def write_trained_model(result: TrainingResult, output: Path, *, name: str, description: str,
                        version: str = "1", overwrite: bool = False) -> Path:
    """Save a :class:`~ase_mlpot.training.TrainingResult` as an artifact folder.

    The folder holds ``config.json`` + ``model.safetensors`` (float32), a ``README.md`` card and
    ``training.json`` (the full training summary, recipe included).
    """
    from ase_mlpot.files import atomic_write
    from ase_mlpot.io import save_artifact

    summary = result.summary
    parent = summary.get("parent") or {}
    metadata = {
        "description": description,
        "level_of_theory": summary["level_of_theory"],
        "parent": parent.get("name"),
        "training_data": {"conformations": summary["conformations"],
                          "molecules": summary["molecules"]},
    }
    save_artifact(copy.deepcopy(result.model).float(), output, name=name, version=version,
                  metadata=metadata,
                  card=_card(name, description, summary), overwrite=overwrite)
    atomic_write(output / TRAINING_FILE, (json.dumps(summary, indent=2, default=str)
                                          + "\n").encode())
    return output


def _work_folder(output: Path, workdir: Path | None) -> Path:
    return workdir if workdir is not None else output.parent / f".{output.name}.training"


def _run(recipe: TrainingRecipe, output: Path, workdir: Path | None, force: bool, quiet: bool,
         as_json: bool, jobs: int = 1,
         base: tuple[PotentialModel, dict[str, Any]] | None = None) -> None:
    """Train, write the artifact, clean up the default work folder, report."""
    from ase_mlpot.training import train

    if (output / "config.json").exists() and not force:
        raise click.ClickException(f"{output} already holds a model (use --force)")
    work = _work_folder(output, workdir)
    result = train(recipe, workdir=work, progress=not quiet and sys.stderr.isatty(),
                   base_model=None if base is None else base[0],
                   base_provenance=None if base is None else base[1], jobs=jobs)
    write_trained_model(result, output, name=recipe.name, description=recipe.description,
                        version=recipe.version,
                        overwrite=force)
    if workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    members = [{"best": m["best"], "epochs": m["epochs"], "stopped": m["stopped"]}
               for m in result.summary["members"]]
    if as_json:
        click.echo(json.dumps({"model": str(output), "members": members}, indent=2))
        return
    for index, member in enumerate(members):
        click.echo(f"member {index}: {member['epochs']} epochs ({member['stopped']}),"
                   f" validation energy RMSE {member['best']['energy_rmse']:.4f} eV", err=True)
    click.echo(str(output))


_common = [
    click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
                 help="Artifact folder to write."),
    click.option("--workdir", type=click.Path(path_type=Path), default=None,
                 help="Checkpoints and metrics (kept; rerun to resume). Default: a hidden"
                      " folder beside OUTPUT, removed after success."),
    click.option("-j", "--jobs", type=click.IntRange(min=1), default=1,
                 help="Train up to this many members at once, in separate processes sharing"
                      " the work folder (same result; set OMP_NUM_THREADS, e.g. to 1)."),
    click.option("--max-epochs", type=int, default=None, help="Override the recipe."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                 help="Override the recipe."),
    click.option("--force", is_flag=True, help="Overwrite an existing OUTPUT."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout."),
]


def _with_common(function: Any) -> Any:
    for option in reversed(_common):
        function = option(function)
    return function


def _override(recipe: Any, max_epochs: int | None, device: str | None) -> Any:
    changes = {k: v for k, v in (("max_epochs", max_epochs), ("device", device)) if v is not None}
    return recipe.with_training(**changes) if changes else recipe


#: Recipe, data-file and ase_mlpot errors: one ``Error:`` line and the documented exit code
#: (5 for an unknown model, 4 offline, 1 otherwise).
_recipe_errors = command_errors(FileNotFoundError, ValueError)


@click.command("train")
@click.argument("recipe_path", metavar="RECIPE",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_with_common
@_recipe_errors
def train_command(recipe_path: Path, output: Path, workdir: Path | None, jobs: int,
                  max_epochs: int | None, device: str | None, force: bool, quiet: bool,
                  as_json: bool) -> None:
    """Train (or, for a recipe with [finetune], transfer-learn) the model RECIPE describes."""
    from ase_mlpot.training import load_recipe

    recipe = _override(load_recipe(recipe_path), max_epochs, device)
    _run(recipe, output, workdir, force, quiet, as_json, jobs)


@click.command("finetune")
@click.argument("base")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--freeze", "freeze", multiple=True,
              help="Parameter-name pattern to freeze (repeatable). Default: the architecture's"
                   " recipe (ANI: hidden layers 1 and 3, as ANI-1ccx).")
@click.option("--no-freeze", is_flag=True, help="Train every parameter.")
@click.option("--recipe", "recipe_path", type=click.Path(exists=True, path_type=Path),
              default=None, help="TOML recipe supplying [training], [data] test_molecules and"
                                 " [finetune] freeze/refit settings (command-line flags win).")
@click.option("--name", default=None, help="Name of the new model (default: BASE-finetuned).")
@click.option("--test-molecules", type=click.Path(exists=True, path_type=Path), default=None,
              help="Molecules (one per line) held out of fine-tuning.")
@click.option("--ensemble-size", type=int, default=None,
              help="Members (default: as many as BASE has).")
@click.option("--force-weight", type=float, default=None,
              help="Weight of the force loss (default 0: energies only, as CC data).")
@_with_common
@_recipe_errors
def finetune_command(base: str, data: tuple[Path, ...], freeze: tuple[str, ...],
                     no_freeze: bool, recipe_path: Path | None, name: str | None,
                     test_molecules: Path | None, ensemble_size: int | None,
                     force_weight: float | None, output: Path, workdir: Path | None,
                     jobs: int, max_epochs: int | None, device: str | None, force: bool,
                     quiet: bool, as_json: bool) -> None:
    """Transfer-learn BASE (zoo name or folder) to the labels in DATA with frozen layers."""
    from ase_mlpot.api import load_artifact_by_name
    from ase_mlpot.training import DataSpec, FinetuneSpec, TrainingRecipe, load_recipe

    if no_freeze and freeze:
        raise click.UsageError("--freeze and --no-freeze exclude each other")
    template = load_recipe(recipe_path) if recipe_path else None
    if test_molecules is None and template is not None and template.data.test_molecules:
        test_molecules = template.resolve(template.data.test_molecules)
    spec = template.finetune if template is not None and template.finetune else None
    freeze_spec: str | tuple[str, ...] = (
        "none" if no_freeze else tuple(freeze) if freeze
        else spec.freeze if spec is not None else "default")
    artifact, provenance = load_artifact_by_name(base)
    recipe = TrainingRecipe(
        name=name or f"{Path(base).name}-finetuned",
        description=f"{base} fine-tuned on {', '.join(p.name for p in data)}",
        data=DataSpec(train=tuple(str(p.resolve()) for p in data),
                      test_molecules=None if test_molecules is None
                      else str(Path(test_molecules).resolve())),
        finetune=FinetuneSpec(
            base=str(base), freeze=freeze_spec,
            refit_reference_energies=spec.refit_reference_energies if spec else True),
        **({"training": template.training} if template else {}),
    )
    if force_weight is None:
        force_weight = template.training.force_weight if template is not None else 0.0
    recipe = recipe.with_training(ensemble_size=ensemble_size or artifact.model.ensemble_size,
                                  force_weight=force_weight)
    recipe = _override(recipe, max_epochs, device)
    _run(recipe, output, workdir, force, quiet, as_json, jobs,
         base=(artifact.model, provenance))


@click.command("evaluate")
@click.argument("model")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--molecules", type=click.Path(exists=True, path_type=Path), default=None,
              help="Evaluate only the molecules listed (one per line), e.g. the held-out ones.")
@click.option("--out-of-fold", is_flag=True,
              help="Cross-validated errors of a k-fold ensemble: member m predicts only the"
                   " molecules of its validation fold m (folds from the model's training.json;"
                   " its held-out and always-trained molecules are left out).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@_recipe_errors
def evaluate_command(model: str, data: tuple[Path, ...], molecules: Path | None,
                     out_of_fold: bool, device: str, as_json: bool) -> None:
    """Errors of MODEL (zoo name or folder) on the labelled DATA, in kcal/mol and eV."""
    import torch

    from ase_mlpot.api import load_artifact_by_name
    from ase_mlpot.calculator import resolve_device
    from ase_mlpot.training.evaluate import (
        evaluate_model,
        evaluate_out_of_fold,
        out_of_fold_settings,
    )
    from ase_mlpot.training.trainer import load_training_data, read_molecule_list

    if out_of_fold and molecules is not None:
        raise click.UsageError("--molecules and --out-of-fold exclude each other")
    artifact, provenance = load_artifact_by_name(model, device=resolve_device(device),
                                                 dtype=torch.float64)
    dataset = load_training_data(list(data))
    name = provenance["name"] or model
    if out_of_fold:
        split_seed, excluded = out_of_fold_settings(artifact.path / TRAINING_FILE)
        metrics = evaluate_out_of_fold(artifact.model, dataset, split_seed=split_seed,
                                       exclude_molecules=excluded, model_name=name)
    else:
        wanted = read_molecule_list(molecules) if molecules else None
        metrics = evaluate_model(artifact.model, dataset, molecules=wanted, model_name=name)
    result = {"model": provenance, **metrics}
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    click.echo(f"{name} on {result['conformations']} conformations of"
               f" {result['molecules']} molecules ({result['level_of_theory']})"
               + (f", out of fold (conformations per member: {result['folds']})"
                  if out_of_fold else ""))
    rows = [("energy", "energy"), ("energy per atom", "energy_per_atom"),
            ("relative conformer energies", "relative_conformer_energy"),
            ("  (relative to molecule mean)", "relative_conformer_energy_centred"),
            ("after one per-element offset", "energy_after_element_offset"),
            ("isomerization energies", "isomerization_energy")]
    for label, key in rows:
        if key in result:
            _echo_stats(label, result[key])
        elif key == "relative_conformer_energy":
            click.echo(f"  {label:30s} n/a (one conformation per molecule)")
    offset = result["energy_after_element_offset"]
    if offset["degrees_of_freedom"] < 2 * len(artifact.model.elements):
        click.echo(f"  note: the per-element offset leaves {offset['degrees_of_freedom']} degrees"
                   " of freedom; too few molecules for this metric to mean much")
    if "forces" in result:
        stats = result["forces"]
        click.echo(f"  {'forces':30s} MAE {stats['mae_kcal_mol_per_a']:8.3f}  RMSE"
                   f" {stats['rmse_kcal_mol_per_a']:8.3f} kcal/mol/Å (RMSE"
                   f" {stats['rmse_ev_per_a']:.4f} eV/Å)")
    if "ensemble_calibration" in result:
        calibration = result["ensemble_calibration"]
        click.echo(f"  ensemble spread: RMS(ΔE/σ) {calibration['rms_z']:.2f}, within 1σ"
                   f" {calibration['within_1_sigma']:.0%}, 2σ {calibration['within_2_sigma']:.0%},"
                   f" Spearman(σ, |ΔE|) {calibration['spearman_sigma_abs_error']:.2f}")
    per_molecule = result.get("relative_conformer_energy_per_molecule", {})
    if per_molecule:
        click.echo("  relative conformer energies per molecule (RMSE over pairs, kcal/mol):")
        for name, stats in sorted(per_molecule.items()):
            click.echo(f"    {name:28s} {stats['rmse_kcal_mol']:8.3f}  ({stats['count']} pairs)")
    for name in result.get("molecules_not_in_data", []):
        click.echo(f"not in the data: {name}", err=True)
    for message in result["skipped"]:
        click.echo(f"skipped: {message}", err=True)


def _echo_stats(label: str, stats: dict[str, Any]) -> None:
    click.echo(f"  {label:30s} MAE {stats['mae_kcal_mol']:8.3f}  RMSE"
               f" {stats['rmse_kcal_mol']:8.3f} kcal/mol   (RMSE {stats['rmse_ev']:.4f}"
               f" eV, n={stats['count']})")
