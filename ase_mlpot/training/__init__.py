"""Training, transfer learning and evaluation for every architecture.

* :mod:`~ase_mlpot.training.recipe` — typed TOML recipes (:class:`TrainingRecipe`).
* :mod:`~ase_mlpot.training.data` — labelled conformations as model graphs, batching.
* :mod:`~ase_mlpot.training.trainer` — reference-energy fits, k-fold ensembles, fine-tuning with
  frozen layers, forces borrowed from another level for the same geometries, checkpoints and
  resume.
* :mod:`~ase_mlpot.training.evaluate` — absolute, relative-conformer, cross-molecule and
  isomerisation errors, force errors and ensemble calibration.
"""

from ase_mlpot.training.evaluate import evaluate_graphs, evaluate_model, evaluate_out_of_fold
from ase_mlpot.training.recipe import (
    DataSpec,
    FinetuneSpec,
    ModelSpec,
    RecipeError,
    TrainingOptions,
    TrainingRecipe,
    load_recipe,
    parse_recipe,
)
from ase_mlpot.training.trainer import (
    TrainingResult,
    attach_forces,
    fit_reference_energies,
    freeze_parameters,
    parameter_groups,
    train,
    train_member,
)

__all__ = [
    "DataSpec",
    "FinetuneSpec",
    "ModelSpec",
    "RecipeError",
    "TrainingOptions",
    "TrainingRecipe",
    "TrainingResult",
    "attach_forces",
    "evaluate_graphs",
    "evaluate_model",
    "evaluate_out_of_fold",
    "fit_reference_energies",
    "freeze_parameters",
    "load_recipe",
    "parameter_groups",
    "parse_recipe",
    "train",
    "train_member",
]
